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
    from vsr.pipelines.enhance import failure_report

    config = enhance_config(input, output, params)
    try:
        result = run(config)
    except KeyboardInterrupt:
        failure_report(config, KeyboardInterrupt())
        raise KeyboardInterrupt(f"nothing was written; {output} was not created") from None
    except Exception as exc:
        failure_report(config, exc)
        raise
    if not config.quiet:
        warn = f", {len(result['warnings'])} warning(s)" if result["warnings"] else ""
        click.echo(
            f"vsr: {result['frames_out']} frames {result['input']['width']}x{result['input']['height']} -> "
            f"{result['output']['width']}x{result['output']['height']} ({result['model']}, {result['device']}) "
            f"in {result['seconds']:.1f}s, {result['fps']:.2f} fps -> {output}{warn}",
            err=True,
        )
        if config.verbose:
            for w in result["warnings"]:
                click.echo(f"vsr: warning: {w}", err=True)
    sys.stdout.flush()
