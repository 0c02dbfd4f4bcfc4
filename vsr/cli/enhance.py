"""``vsr enhance INPUT OUTPUT``: parse options into an ``EnhanceConfig`` and run the pipeline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from vsr.cli.options import enhance_config, enhance_options


@click.command(context_settings={"max_content_width": 100})
@click.argument("input", type=click.Path(path_type=Path, dir_okay=True))
@click.argument("output", type=click.Path(path_type=Path, dir_okay=True))
@enhance_options
def enhance(input: Path, output: Path, **params: Any) -> None:
    """Super-resolve INPUT into OUTPUT (container from OUTPUT's extension: .mp4 .mkv .mov .webm).

    Every frame keeps its timestamp; audio and subtitles are copied; rotation and colour tags are kept.
    OUTPUT is written to a temporary file and renamed only when everything succeeded.
    """
    from vsr.pipelines.enhance import enhance as run
    from vsr.pipelines.enhance_report import failure_report

    config = enhance_config(input, output, params)
    try:
        result = run(config)
    except KeyboardInterrupt as exc:  # a segmented run's message says which segments it kept for --resume
        exc.args = (str(exc) or f"nothing was written; {output} was not created",)
        failure_report(config, exc)
        raise
    except Exception as exc:
        failure_report(config, exc)
        raise
    if not config.quiet:
        print_summary(result, output)
    sys.stdout.flush()


def print_summary(result, output: Path) -> None:
    """The closing lines on stderr: what ran (mode and every model), the speed, each warning, licence notes."""
    if result.items is not None:  # images
        what, unit = f"{result.frames_out} image(s)", "images/s"
    else:
        unit = "fps"
        what = (
            f"{result.frames_out} frames {result.input['width']}x{result.input['height']} -> "
            f"{result.output['width']}x{result.output['height']}"
        )
        if result.deinterlaced:
            what += f", deinterlaced by {result.deinterlaced},"
    click.echo(
        f"vsr: {what} in {result.model_summary()} on {result.device}, "
        f"{result.seconds:.1f}s ({result.fps or 0:.2f} {unit}) -> {output}",
        err=True,
    )
    for w in result.warnings:
        click.echo(f"vsr: warning: {w}", err=True)
    if result.non_commercial:
        names = ", ".join(m.name for m in result.models if m.non_commercial)
        click.echo(
            f"vsr: note: the weights used ({names}) are licensed for non-commercial use only; see 'vsr models'",
            err=True,
        )
    if result.generative:
        click.echo(
            "vsr: note: a generative face restorer was used: it invents facial detail, so the output "
            "must not be used to identify people",
            err=True,
        )
