"""``vsr compare INPUT OUTPUT RESULT``: a before/after video (and snapshots) of an enhanced clip."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vsr.cli.options import option


@click.command(context_settings={"max_content_width": 100})
@click.argument("input", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("result", type=click.Path(path_type=Path, dir_okay=False))
@option(
    "--layout",
    type=click.Choice(["side", "split"]),
    default="side",
    show_default=True,
    help="side: Lanczos | enhanced next to each other; split: left half Lanczos, right half enhanced.",
)
@option(
    "--snapshots",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Write N before/after PNG pairs.",
)
@option(
    "--snapshot-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the PNGs go. [default: RESULT's name + _snapshots]",
)
@option(
    "--max-width",
    type=int,
    default=3840,
    show_default=True,
    help="Scale the comparison down to at most this width (0 = never).",
)
@option(
    "--crf", type=int, default=None, help="Encoder quality of RESULT (lower = better). [default: 18 for x264]"
)
@option("--overwrite", is_flag=True, help="Replace RESULT if it exists.")
@option("--json", "as_json", is_flag=True, help="Print what was written as one JSON object on stdout.")
@option("--quiet", "-q", is_flag=True, help="No summary line on stderr.")
def compare(
    input: Path,
    output: Path,
    result: Path,
    layout: str,
    snapshots: int,
    snapshot_dir: Path | None,
    max_width: int,
    crf: int | None,
    overwrite: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Compare INPUT with its enhanced OUTPUT: write RESULT, a side-by-side or split-screen video.

    The left ("Lanczos") side is INPUT upscaled to OUTPUT's size with Lanczos; the right side is OUTPUT.
    RESULT keeps OUTPUT's timing and audio.
    """
    from vsr.config import CompareConfig
    from vsr.pipelines.compare import compare as run

    config = CompareConfig(
        input=input,
        output=output,
        result=result,
        layout=layout,
        snapshots=snapshots,
        snapshot_dir=snapshot_dir,
        max_width=max_width,
        crf=crf,
        overwrite=overwrite,
    )
    report = run(config)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    if not quiet:
        w, h = report.size
        pngs = f", {len(report.snapshots)} snapshot PNGs" if report.snapshots else ""
        click.echo(f"vsr: compared {report.frames} frames ({layout}, {w}x{h}) -> {result}{pngs}", err=True)
        for warning in report.warnings:
            click.echo(f"vsr: warning: {warning}", err=True)
