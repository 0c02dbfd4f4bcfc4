"""``vsr eval images|faces|video``: score a model against bicubic and Lanczos with the published protocol."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vsr.cli.options import BatchSize, option, scale_or_model_scale


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every ``vsr eval`` subcommand takes."""
    decorators = [
        option(
            "--scale", type=click.IntRange(2, 8), default=2, show_default=True, help="Upscaling factor S."
        ),
        option(
            "--model",
            default=None,
            help="Registry name (see 'vsr models'), a .safetensors / trainer .ckpt file or a third-party "
            ".pth / .safetensors (zoo extra). [default: the model for the scale]",
        ),
        option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of a table."),
        option(
            "--limit", type=click.IntRange(min=1), default=None, help="Evaluate at most N images (frames)."
        ),
        option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        option(
            "--precision",
            type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
            default="auto",
            show_default=True,
            help="auto = fp16 on CUDA, fp32 on CPU (baselines always run in fp32).",
        ),
        option(
            "--batch-size", type=BatchSize(), default="auto", show_default=True, help="Images per model call."
        ),
        option(
            "--grid",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="Write a PNG of a few examples: LR (nearest) | bicubic | lanczos | model | HR.",
        ),
        option("--quiet", "-q", is_flag=True, help="No progress output on stderr."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


@click.group("eval", context_settings={"max_content_width": 100})
def evaluate() -> None:
    """Measure a model's PSNR/SSIM on images, faces or a video, side by side with bicubic and Lanczos.

    \b
    Protocol (as published SR tables): HR cropped to a multiple of S, LR = MATLAB bicubic
    downsampling with antialiasing (rounded to 8 bits), PSNR/SSIM on Y (BT.601) and RGB with
    S pixels shaved at the border.  PSNR of identical images is infinite: null in --json.
    """


@evaluate.command("images")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@_common
def images(directory: Path, **opts: Any) -> None:
    """Score every image in DIRECTORY (Set5, Set14, ...); unreadable files are skipped and counted."""
    from vsr.pipelines.evaluate import evaluate_images

    _emit(evaluate_images(directory, kind="images", **_library_args(opts)), opts)


@evaluate.command("faces")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@_common
@option(
    "--degrade",
    type=click.Choice(["bicubic", "real"]),
    default="bicubic",
    show_default=True,
    help="LR protocol: bicubic, or real (seeded blur + noise + H.264).",
)
@option("--seed", type=int, default=0, show_default=True, help="Seed of the real-world degradation.")
def faces(directory: Path, degrade: str, seed: int, **opts: Any) -> None:
    """Score face crops in DIRECTORY (UTKFace chips, ...) on Y and RGB, optionally real-world degraded."""
    from vsr.pipelines.evaluate import evaluate_images

    report = evaluate_images(
        directory,
        kind="faces",
        degrade=None if degrade == "bicubic" else degrade,
        seed=seed,
        **_library_args(opts),
    )
    _emit(report, opts)


@evaluate.command("video")
@click.argument("clip", type=click.Path(path_type=Path, dir_okay=False))
@_common
def video(clip: Path, **opts: Any) -> None:
    """Downscale CLIP, upscale it back, score every frame and the flicker of the error."""
    from vsr.pipelines.evaluate import evaluate_video

    _emit(evaluate_video(clip, **_library_args(opts)), opts)


@evaluate.command("restore")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@option(
    "--occlusion",
    type=click.Choice(["eyes", "half", "mouth", "random"]),
    required=True,
    help="Synthetic occlusion: eye band, half face, mouth band, or random rectangles/strokes.",
)
@option("--model", default="restore-face", show_default=True, help="Inpainting model (name or .safetensors).")
@option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of a table.")
@option(
    "--grid",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write a PNG: occluded | Telea | NS | ours | original.",
)
@option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate at most N images.")
@option("--seed", type=int, default=0, show_default=True, help="Seed of the occlusions.")
@option(
    "--size",
    type=click.IntRange(min=16),
    default=None,
    help="Side the chips are resized to [default: the model's].",
)
@option(
    "--radius",
    type=click.IntRange(min=1),
    default=None,
    help="OpenCV inpainting radius [default: max(3, size/20)].",
)
@option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def restore(directory: Path, occlusion: str, as_json: bool, **opts: Any) -> None:
    """Score face inpainting on aligned chips in DIRECTORY against OpenCV Telea and Navier-Stokes.

    PSNR/SSIM (RGB) inside the mask and over the image; the occlusions are seeded, so every run
    and every method sees the same masks.
    """
    from vsr.pipelines.restore.evaluate import evaluate_restore

    data = evaluate_restore(directory, occlusion, **opts).to_dict()
    if as_json:
        click.echo(json.dumps(data, allow_nan=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"vsr eval restore --occlusion {occlusion}: {data['source']} ({data['images']} images, {data['size']} px)",
        caption=f"RGB; mask covers {100 * data['mask_fraction']:.1f} % on average; {data['seconds']:.1f}s",
    )
    for column in ("method", "PSNR mask dB", "SSIM mask", "PSNR dB", "SSIM"):
        table.add_column(column, justify="left" if column == "method" else "right")
    rows = [(f"{Path(data['model']).name} (model)", data)]
    rows += [(f"OpenCV {name} (radius {data['radius']})", s) for name, s in data["baselines"].items()]
    for name, s in rows:
        table.add_row(
            name, _fmt(s["psnr_masked"], 2), _fmt(s["ssim_masked"], 4), _fmt(s["psnr"], 2), _fmt(s["ssim"], 4)
        )
    Console(highlight=False).print(table)


def _library_args(opts: dict[str, Any]) -> dict[str, Any]:
    keys = ("model", "device", "precision", "batch_size", "limit", "grid")
    scale = scale_or_model_scale(opts["scale"], opts["model"])
    return {k: opts[k] for k in keys} | {"scale": scale, "quiet": opts["quiet"]}


def _fmt(value: float | None, digits: int, missing: str = "inf") -> str:
    # In the JSON form a score is null only when it is infinite (identical images).
    if value is None:
        return missing
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def _emit(report: Any, opts: dict[str, Any]) -> None:
    """The report as one JSON object (``--json``) or as a table, on stdout."""
    data = report.to_dict()
    if opts["as_json"]:
        click.echo(json.dumps(data, allow_nan=False))
        return
    from rich.console import Console
    from rich.table import Table

    video = data["kind"] == "video"
    unit = "frames" if video else "images"
    skipped = f", {data['skipped']} unreadable skipped" if data["skipped"] else ""
    table = Table(
        title=f"vsr eval {data['kind']} x{data['scale']}: {data['source']} ({data['n']} {unit}{skipped})",
        caption=f"Y/RGB with {data['scale']} px shaved; {data['device']}, {data['seconds']:.1f}s",
    )
    for column in (
        "method",
        "PSNR-Y dB",
        "SSIM-Y",
        "PSNR-RGB dB",
        "SSIM-RGB",
        "sharpness",
        *(["flicker"] if video else []),
    ):
        table.add_column(column, justify="left" if column == "method" else "right")
    rows = [(f"{Path(data['model']).name} (model)", data), *data["baselines"].items()]
    for name, scores in rows:
        cells = [_fmt(scores["psnr_y"], 2), _fmt(scores["ssim_y"], 4)]
        cells += [_fmt(scores["psnr_rgb"], 2), _fmt(scores["ssim_rgb"], 4), _fmt(scores["sharpness"], 3)]
        if video:
            cells.append(_fmt(scores["flicker"], 3, missing="-"))
        table.add_row(name, *cells)
    Console(highlight=False).print(table)
