"""``vsr restore``: regenerate the masked (occluded) parts of faces in an image or a folder of images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vsr.cli.options import option


class Colour(click.ParamType):
    """``R,G,B`` with each value 0..255."""

    name = "R,G,B"

    def convert(self, value: Any, param, ctx) -> tuple[int, int, int]:
        if isinstance(value, tuple):
            return value
        parts = str(value).split(",")
        try:
            rgb = tuple(int(p) for p in parts)
        except ValueError:
            rgb = ()
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            self.fail(f"{value!r} is not R,G,B with values 0..255 (e.g. 255,0,255)", param, ctx)
        return rgb  # type: ignore[return-value]


@click.command("restore", context_settings={"max_content_width": 100})
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@option(
    "--mask",
    type=click.Path(path_type=Path),
    default=None,
    help="Mask image (white = missing), or a folder of masks named like the images.",
)
@option("--mask-color", type=Colour(), default=None, help="Derive the mask from pixels painted this colour.")
@option(
    "--tolerance", type=click.IntRange(0, 255), default=0, show_default=True, help="--mask-color tolerance."
)
@option("--model", default="restore-face", show_default=True, help="Inpainting model (name or .safetensors).")
@option("--no-detect", is_flag=True, help="Take the whole image as the (aligned) face; no face detection.")
@option("--detector", default="auto", show_default=True, help="auto, yuface, haar or yunet:PATH.")
@option(
    "--scale",
    type=click.Choice(["1", "2", "4"]),
    default="1",
    show_default=True,
    help="Super-resolve after restoring, with the face SR model.",
)
@option("--sr-model", default=None, help="SR model for --scale [default: the face model of the scale].")
@option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@option(
    "--report", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write a JSON report."
)
def restore(
    input_path: Path,
    output: Path,
    mask: Path | None,
    mask_color: tuple[int, int, int] | None,
    tolerance: int,
    model: str,
    no_detect: bool,
    detector: str,
    scale: str,
    sr_model: str | None,
    device: str,
    report: Path | None,
) -> int:
    """Restore the occluded parts of faces in INPUT (an image or a folder) and write OUTPUT.

    Pixels outside the mask are kept bit for bit (at --scale 1); the face is found and aligned
    (or the whole image is the face with --no-detect), inpainted at the model's size, and blended
    back.  A folder run continues past images that fail and exits 3 (1 when every image failed).

    \b
    Examples:
      vsr restore face.png restored.png --mask mask.png
      vsr restore face.png restored.png --mask-color 255,0,255 --tolerance 10
      vsr restore faces/ restored/ --mask masks/ --report report.json
      vsr restore face.png restored_x4.png --mask mask.png --scale 4
    """
    from vsr.errors import EXIT_FAILURE, EXIT_PARTIAL
    from vsr.pipelines.restore.run import RestoreOptions, run_restore

    options = RestoreOptions(
        model=model,
        detect=not no_detect,
        detector=detector,
        scale=int(scale),
        sr_model=sr_model,
        device=device,
        tolerance=tolerance,
    )
    rep = run_restore(input_path, output, options, mask=mask, mask_color=mask_color, report=report)
    for r in rep.images:
        if r.status == "failed":
            click.echo(f"vsr restore: failed: {r.input}: {r.error}", err=True)
    for note in rep.notes:
        click.echo(f"vsr restore: note: {note}", err=True)
    click.echo(f"vsr restore: {rep.ok} restored, {rep.failed} failed -> {output}", err=True)
    if rep.failed:
        return EXIT_PARTIAL if rep.ok else EXIT_FAILURE
    return 0
