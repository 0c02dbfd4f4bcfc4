"""Shared click option helpers: every option can also come from ``VSR_<OPTION>``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vsr.config import BACKGROUNDS, CODECS, MODES, EnhanceConfig, FaceOptions


def option(*decls: str, **kwargs: Any):
    """``click.option`` whose environment variable is ``VSR_`` + the long name (``--batch-size`` -> ``VSR_BATCH_SIZE``)."""
    long = next(d for d in decls if d.startswith("--"))
    kwargs.setdefault("envvar", "VSR_" + long[2:].split("/")[0].replace("-", "_").upper())
    kwargs.setdefault("show_envvar", False)
    return click.option(*decls, **kwargs)


class BatchSize(click.ParamType):
    """A positive integer or ``auto`` (-> None)."""

    name = "N|auto"

    def convert(self, value: Any, param, ctx) -> int | None:
        if value is None or value == "auto":
            return None
        try:
            n = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a positive integer or 'auto'", param, ctx)
        if n < 1:
            self.fail(f"{n} is not a positive integer", param, ctx)
        return n


def _enhance_option_list(report: bool) -> list:
    return [
        option(
            "--scale", type=click.Choice(["2", "4"]), default="2", show_default=True, help="Upscaling factor."
        ),
        option(
            "--model",
            default=None,
            help="Registry name (see 'vsr models') or a .safetensors / trainer .ckpt file. [default: the model for the scale]",
        ),
        option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        option(
            "--precision",
            type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
            default="auto",
            show_default=True,
            help="auto = fp16 on CUDA, fp32 on CPU.",
        ),
        option(
            "--batch-size", type=BatchSize(), default="auto", show_default=True, help="Frames per model call."
        ),
        option(
            "--tile",
            type=int,
            default=0,
            show_default=True,
            help="Tile size in input pixels (0 = off; tiles automatically when a frame does not fit).",
        ),
        option(
            "--codec",
            type=click.Choice(CODECS),
            default=None,
            help="Video encoder. [default: libx264; libvpx-vp9 for .webm]",
        ),
        option(
            "--crf", type=int, default=None, help="Constant quality (lower = better). [default: 18 for x264]"
        ),
        option(
            "--preset", default=None, help="Encoder preset (x264/x265: ultrafast..veryslow; svt-av1: 0-13)."
        ),
        option(
            "--pix-fmt",
            default=None,
            help="Output pixel format. [default: keep the input's bit depth and chroma]",
        ),
        option("--no-audio", is_flag=True, help="Drop audio instead of copying it."),
        option(
            "--mode",
            type=click.Choice(MODES),
            default="auto",
            show_default=True,
            help="face: enhance faces with the face model; frame: whole frames; auto: face when a detector is installed.",
        ),
        option(
            "--background",
            type=click.Choice(BACKGROUNDS),
            default="model",
            show_default=True,
            help="Face mode: how the rest of the frame is upscaled.",
        ),
        option(
            "--face-model",
            default=None,
            help="Face mode: the model for faces. [default: the face model for the scale, see vsr models]",
        ),
        option(
            "--detector",
            default="auto",
            show_default=True,
            help="Face mode: auto, yuface, haar or yunet:PATH.",
        ),
        option(
            "--min-face",
            type=int,
            default=12,
            show_default=True,
            help="Face mode: smallest face box (input pixels).",
        ),
        option(
            "--det-threshold",
            type=float,
            default=0.5,
            show_default=True,
            help="Face mode: detection confidence.",
        ),
        option(
            "--det-every",
            type=int,
            default=1,
            show_default=True,
            help="Face mode: detect every N frames, track in between.",
        ),
        option(
            "--det-upsample",
            type=float,
            default=0.0,
            show_default=True,
            help="Face mode: enlarge frames by this factor for detection (0 = auto: 2x for frames up to 1024 px, finds ~8 px-eye faces; 1 = off, 4x cheaper).",
        ),
        option("--draw-boxes", is_flag=True, help="Face mode: draw face boxes (debugging)."),
        option(
            "--ffmpeg-bin",
            default=None,
            help="Encode with this ffmpeg binary instead of the built-in encoders.",
        ),
        *(
            [
                option(
                    "--report",
                    type=click.Path(path_type=Path, dir_okay=False),
                    default=None,
                    help="Write a JSON report here.",
                )
            ]
            if report
            else []
        ),
        option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists."),
        option("--quiet", "-q", is_flag=True, help="No progress output."),
        option("-v", "--verbose", count=True, help="More detail (repeat for more)."),
    ]


def enhance_options(func=None, *, report: bool = True):
    """Every ``vsr enhance`` option, for ``vsr enhance`` and as ``vsr batch``'s defaults for all files.

    ``report=False`` leaves out ``--report`` (``vsr batch`` has its own, for the whole batch).
    """

    def apply(f):
        for decorator in reversed(_enhance_option_list(report)):
            f = decorator(f)
        return f

    return apply(func) if func is not None else apply


def enhance_config(input: Path, output: Path, params: dict[str, Any]) -> EnhanceConfig:
    """The ``EnhanceConfig`` for the parsed ``vsr enhance`` options ``params``."""
    return EnhanceConfig(
        input=input,
        output=output,
        scale=int(params["scale"]),
        model=params["model"],
        device=params["device"],
        precision=params["precision"],
        batch_size=params["batch_size"],
        tile=params["tile"],
        codec=params["codec"],
        crf=params["crf"],
        preset=params["preset"],
        pix_fmt=params["pix_fmt"],
        audio=not params["no_audio"],
        report=params.get("report"),
        overwrite=params["overwrite"],
        quiet=params["quiet"],
        verbose=params["verbose"],
        ffmpeg_bin=params["ffmpeg_bin"],
        mode=params["mode"],
        face=FaceOptions(
            detector=params["detector"],
            background=params["background"],
            face_model=params["face_model"],
            min_face=params["min_face"],
            det_threshold=params["det_threshold"],
            det_every=params["det_every"],
            det_upsample=params["det_upsample"],
            draw_boxes=params["draw_boxes"],
        ),
    )
