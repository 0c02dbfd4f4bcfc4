"""Shared click option helpers: every option can also come from ``VSR_<OPTION>``.

A value that came from the environment is named by its variable in errors (``VSR_SCALE=3`` must not
send the user looking for a ``--scale 3`` they never typed): click's own errors through ``EnvOption``,
the config's ``ConfigError``s (which name the flag) through ``with_env_hints``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from vsr.config import (
    BACKGROUNDS,
    CODECS,
    COMPILES,
    DEINTERLACE,
    FRAME_PATHS,
    MODES,
    PRECISIONS,
    EnhanceConfig,
    FaceOptions,
)
from vsr.errors import UsageError


def encoders_option(_ctx, _param, value):
    """``--encoders auto|N`` -> None or N."""
    from vsr.errors import ConfigError
    from vsr.media.encoders import parse_encoders

    try:
        return parse_encoders(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("--encoders ")) from None


def _from_env(param: click.Parameter, ctx: click.Context | None) -> bool:
    return (
        ctx is not None
        and isinstance(param, click.Option)
        and bool(param.envvar)
        and param.name is not None
        and ctx.get_parameter_source(param.name) == ParameterSource.ENVIRONMENT
    )


class EnvOption(click.Option):
    """An option whose error messages name its environment variable when the value came from there."""

    def get_error_hint(self, ctx: click.Context | None) -> str:
        hint = super().get_error_hint(ctx)
        return f"'{self.envvar}' (the environment variable for {hint})" if _from_env(self, ctx) else hint


def option(*decls: str, **kwargs: Any):
    """``click.option`` whose environment variable is ``VSR_`` + the long name (``--batch-size`` -> ``VSR_BATCH_SIZE``)."""
    long = next(d for d in decls if d.startswith("--"))
    kwargs.setdefault("envvar", "VSR_" + long[2:].split("/")[0].replace("-", "_").upper())
    kwargs.setdefault("show_envvar", False)
    kwargs.setdefault("cls", EnvOption)
    return click.option(*decls, **kwargs)


def choice(name: str, values: tuple[str, ...], help: str):
    """An ``option`` taking one of ``values`` (a ``vsr.config`` tuple), whose first value is the default."""
    return option(name, type=click.Choice(values), default=values[0], show_default=True, help=help)


def name_env_sources(message: str, ctx: click.Context) -> str:
    """Add ``(from VSR_X)`` after the first mention of each flag in ``message`` whose value came from VSR_X."""
    for param in ctx.command.params:
        if _from_env(param, ctx):
            for opt in param.opts:
                pattern = rf"(?<![\w-]){re.escape(opt)}(?![\w-])"
                message = re.sub(pattern, lambda m, p=param: f"{m[0]} (from {p.envvar})", message, count=1)
    return message


def with_env_hints(command: click.Command) -> click.Command:
    """Make a command's (and its subcommands') usage errors name the VSR_ variables their values came from."""
    if getattr(command, "_vsr_env_hints", False):
        return command
    callback = command.callback
    if callback is not None:

        @functools.wraps(callback)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except UsageError as exc:
                named = name_env_sources(str(exc), click.get_current_context())
                if named == str(exc):
                    raise
                raise type(exc)(named) from exc

        command.callback = wrapped
    command._vsr_env_hints = True  # type: ignore[attr-defined]
    for sub in getattr(command, "commands", {}).values():
        with_env_hints(sub)
    return command


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


def scale_or_model_scale(flag: Any, *models: str | None) -> int:
    """``--scale`` when given, else the scale of the first weights file among ``models``, else the default.

    A third-party model knows its own scale; only a ``--scale`` the user typed (or set in ``VSR_SCALE``)
    is checked against it, later, as a usage error naming both.
    """
    from click.core import ParameterSource

    source = click.get_current_context().get_parameter_source("scale")
    if source not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
        return int(flag)
    from vsr.models.loading import is_weights_path
    from vsr.models.registry import native_scale

    for name in models:
        if name and is_weights_path(name) and (own := native_scale(name)) is not None:
            return own
    return int(flag)


def compute_options(func):
    """``--device``, ``--precision``, ``--batch-size`` and ``--compile``: how a command runs its model."""
    func = choice(
        "--compile",
        COMPILES,
        help="torch.compile the model for whole-frame batches (a one-off compile per resolution; falls back "
        "to eager on any failure); auto = on CUDA for models with weights.",
    )(func)
    func = option(
        "--batch-size", type=BatchSize(), default="auto", show_default=True, help="Frames per model call."
    )(func)
    func = choice(
        "--precision",
        PRECISIONS,
        help="auto = fp16 on CUDA, fp32 on CPU.",
    )(func)
    return option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")(func)


def _enhance_option_list(report: bool) -> list:
    return [
        option(
            "--scale", type=click.Choice(["2", "4"]), default="2", show_default=True, help="Upscaling factor."
        ),
        option(
            "--model",
            default=None,
            help="Registry name (see 'vsr models'), a .safetensors / trainer .ckpt file, or a third-party .pth / "
            ".safetensors (zoo extra; its scale is used when --scale is not given). [default: the model for the scale]",
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
        option(
            "--encoder-opt",
            "encoder_opt",
            multiple=True,
            metavar="KEY=VALUE",
            help="Raw encoder option for experts, repeatable (e.g. tune=grain); checked against the encoder's options.",
        ),
        option("--no-audio", is_flag=True, help="Drop audio instead of copying it."),
        option(
            "--start",
            type=float,
            default=0.0,
            help="Start this many seconds into INPUT (output starts at 0).",
        ),
        option(
            "--duration",
            type=float,
            default=None,
            help="Enhance only this many seconds (audio is cut to match).",
        ),
        choice(
            "--mode",
            MODES,
            help="face: enhance faces with the face model; frame: whole frames; auto: face when a detector is installed.",
        ),
        choice(
            "--background",
            BACKGROUNDS,
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
            default=2,
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
                ),
                option(
                    "--altered-mask",
                    type=click.Path(path_type=Path, dir_okay=False),
                    default=None,
                    help="Also write a grey video, frame-aligned with OUTPUT: white where the face model made the pixels, "
                    "mid-grey where the frame/background network did, black where interpolation did.",
                ),
            ]
            if report
            else []
        ),  # one file each: not for vsr batch
        option(
            "--segment-seconds",
            type=float,
            default=60.0,
            show_default=True,
            help="Commit a longer video in segments of this many seconds, so --resume can continue it (0 = one pass).",
        ),
        *(
            [
                option(
                    "--resume",
                    is_flag=True,
                    help="Continue an interrupted run of the same command from its first unfinished segment.",
                )
            ]
            if report
            else []
        ),
        choice(
            "--frame-path",
            FRAME_PATHS,
            help="Frame mode: yuv = decoder planes converted to RGB and back on the device (no per-pixel host "
            "work); rgb = converted on the host; auto = yuv on CUDA.",
        ),
        option(
            "--encoders",
            default="auto",
            show_default=True,
            callback=encoders_option,
            help="Encoders at once, each on keyframe-aligned chunks joined losslessly (1-8); auto = one, or "
            "cores/4 when a GPU makes frames faster than one encoder takes them.",
        ),
        choice(
            "--deinterlace",
            DEINTERLACE,
            help="Deinterlace (bwdif, one frame per frame, in the tagged field order) before upscaling; "
            "auto = when the input is interlaced.",
        ),
        option(
            "--salvage",
            is_flag=True,
            help="Damaged input: enhance every frame that decodes at its own time (gaps stay gaps) and list the "
            "damaged ranges, instead of refusing the file.",
        ),
        *_limit_option_list(),
        option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists."),
        option("--quiet", "-q", is_flag=True, help="No progress output."),
        option("-v", "--verbose", count=True, help="More detail (repeat for more)."),
    ]


def _limit_option_list() -> list:
    """The input limits (``vsr.media.limits.InputLimits``): each message that refuses a file names its flag."""
    from vsr.media.limits import InputLimits

    d = InputLimits()
    return [
        option("--max-pixels", type=int, default=d.max_pixels, show_default=True,
               help="Largest input frame (pixels) to decode."),
        option("--max-output-pixels", type=int, default=d.max_output_pixels, show_default=True,
               help="Largest output frame (pixels) to make."),
        option("--max-frames", type=int, default=d.max_frames, show_default=True, help="Most input frames."),
        option("--max-duration", type=float, default=d.max_seconds, show_default=True,
               help="Longest input (seconds)."),
        option("--max-streams", type=int, default=d.max_streams, show_default=True, help="Most streams in the input."),
        option("--max-input-size", default="1T", show_default=True, help="Largest input file (e.g. 200G)."),
        option("--probe-timeout", type=float, default=0.0, show_default=True,
               help="Seconds the contained pre-flight may take to open and scan the input (0 = 30 s + 1 s per 50 MB)."),
    ]  # fmt: skip


def limit_options(f):
    """The input-limit flags alone (``vsr probe``)."""
    for decorator in reversed(_limit_option_list()):
        f = decorator(f)
    return f


def input_limits(params: dict[str, Any]):
    """The ``InputLimits`` of parsed limit flags."""
    from vsr.media.limits import InputLimits, parse_bytes

    return InputLimits(
        max_pixels=params["max_pixels"],
        max_output_pixels=params.get("max_output_pixels", InputLimits.max_output_pixels),
        max_frames=params["max_frames"],
        max_seconds=params["max_duration"],
        max_streams=params["max_streams"],
        max_bytes=parse_bytes(params["max_input_size"]),
        probe_seconds=params["probe_timeout"],
    ).validate()


def enhance_options(func=None, *, report: bool = True):
    """Every ``vsr enhance`` option, for ``vsr enhance`` and as ``vsr batch``'s defaults for all files.

    ``report=False`` leaves out ``--report`` (``vsr batch`` has its own, for the whole batch).
    """

    def apply(f):
        for decorator in reversed(_enhance_option_list(report)):
            f = decorator(f)
        return compute_options(f)

    return apply(func) if func is not None else apply


def enhance_config(input: Path, output: Path, params: dict[str, Any]) -> EnhanceConfig:
    """The ``EnhanceConfig`` for the parsed ``vsr enhance`` options ``params``."""
    from vsr.media.writer import parse_encoder_options

    return EnhanceConfig(
        input=input,
        output=output,
        scale=scale_or_model_scale(params["scale"], params["model"], params["face_model"]),
        model=params["model"],
        device=params["device"],
        precision=params["precision"],
        batch_size=params["batch_size"],
        compile=params["compile"],
        tile=params["tile"],
        codec=params["codec"],
        crf=params["crf"],
        preset=params["preset"],
        pix_fmt=params["pix_fmt"],
        encoder_options=parse_encoder_options(params["encoder_opt"]),
        encoders=params["encoders"],
        audio=not params["no_audio"],
        start=params["start"],
        duration=params["duration"],
        report=params.get("report"),
        altered_mask=params.get("altered_mask"),
        segment_seconds=params.get("segment_seconds", 60.0),
        resume=params.get("resume", False),
        salvage=params["salvage"],
        deinterlace=params["deinterlace"],
        frame_path=params["frame_path"],
        limits=input_limits(params),
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
