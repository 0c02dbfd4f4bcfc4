"""``vsr sample OUTPUT``: write a synthetic clip to try the pipeline on (no download needed)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--size", default="320x240", show_default=True, help="WIDTHxHEIGHT.")
@click.option("--frames", type=int, default=48, show_default=True)
@click.option("--fps", type=int, default=24, show_default=True)
@click.option("--audio-tracks", type=int, default=1, show_default=True)
@click.option("--vfr", is_flag=True, help="Variable frame rate (alternating frame durations).")
@click.option("--rotation", type=int, default=0, help="Display rotation in degrees (e.g. 90).")
@click.option("--pix-fmt", default="yuv420p", show_default=True)
@click.option(
    "--interlaced",
    type=click.Choice(["tff", "bff"]),
    default=None,
    help="Interlaced H.264: each frame woven from two fields half a frame apart, top or bottom first.",
)
def sample(
    output: Path,
    size: str,
    frames: int,
    fps: int,
    audio_tracks: int,
    vfr: bool,
    rotation: int,
    pix_fmt: str,
    interlaced: str | None,
) -> None:
    """Write a synthetic test clip with moving detail, a simple face and a tone on each audio track."""
    from vsr.errors import UsageError
    from vsr.media.sample import SampleSpec, write_sample

    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {size!r}: expected WIDTHxHEIGHT, e.g. 320x240") from None
    spec = SampleSpec(
        width=width,
        height=height,
        frames=frames,
        fps=fps,
        audio_tracks=audio_tracks,
        vfr=vfr,
        rotation=rotation,
        pix_fmt=pix_fmt,
        interlaced=interlaced or "",
    )
    write_sample(output, spec)
    click.echo(
        f"vsr: wrote {output} ({width}x{height}, {frames} frames, {fps} fps, {audio_tracks} audio track(s))",
        err=True,
    )
