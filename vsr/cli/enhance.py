"""``vsr enhance INPUT OUTPUT``: parse options into an ``EnhanceConfig`` and run the pipeline."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vsr.cli.options import BatchSize, option
from vsr.config import BACKGROUNDS, CODECS, MODES, EnhanceConfig, FaceOptions


@click.command(context_settings={"max_content_width": 100})
@click.argument("input", type=click.Path(path_type=Path, dir_okay=True))
@click.argument("output", type=click.Path(path_type=Path, dir_okay=True))
@option("--scale", type=click.Choice(["2", "4"]), default="2", show_default=True, help="Upscaling factor.")
@option(
    "--model",
    default=None,
    help="Registry name (see 'vsr models') or a .safetensors / trainer .ckpt file. [default: the model for the scale]",
)
@option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@option(
    "--precision",
    type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
    default="auto",
    show_default=True,
    help="auto = fp16 on CUDA, fp32 on CPU.",
)
@option("--batch-size", type=BatchSize(), default="auto", show_default=True, help="Frames per model call.")
@option(
    "--tile",
    type=int,
    default=0,
    show_default=True,
    help="Tile size in input pixels (0 = off; tiles automatically when a frame does not fit).",
)
@option(
    "--codec",
    type=click.Choice(CODECS),
    default=None,
    help="Video encoder. [default: libx264; libvpx-vp9 for .webm]",
)
@option("--crf", type=int, default=None, help="Constant quality (lower = better). [default: 18 for x264]")
@option("--preset", default=None, help="Encoder preset (x264/x265: ultrafast..veryslow; svt-av1: 0-13).")
@option(
    "--pix-fmt", default=None, help="Output pixel format. [default: keep the input's bit depth and chroma]"
)
@option(
    "--encoder-opt",
    "encoder_opt",
    multiple=True,
    metavar="KEY=VALUE",
    help="Raw encoder option for experts, repeatable (e.g. tune=grain); checked against the encoder's options.",
)
@option("--no-audio", is_flag=True, help="Drop audio instead of copying it.")
@option("--start", type=float, default=0.0, help="Start this many seconds into INPUT (output starts at 0).")
@option(
    "--duration", type=float, default=None, help="Enhance only this many seconds (audio is cut to match)."
)
@option(
    "--mode",
    type=click.Choice(MODES),
    default="auto",
    show_default=True,
    help="face: enhance faces with the face model; frame: whole frames; auto: face when a detector is installed.",
)
@option(
    "--background",
    type=click.Choice(BACKGROUNDS),
    default="model",
    show_default=True,
    help="Face mode: how the rest of the frame is upscaled.",
)
@option(
    "--face-model",
    default=None,
    help="Face mode: the model for faces. [default: the face model for the scale, see vsr models]",
)
@option("--detector", default="auto", show_default=True, help="Face mode: auto, yuface, haar or yunet:PATH.")
@option(
    "--min-face", type=int, default=12, show_default=True, help="Face mode: smallest face box (input pixels)."
)
@option(
    "--det-threshold", type=float, default=0.5, show_default=True, help="Face mode: detection confidence."
)
@option(
    "--det-every",
    type=int,
    default=1,
    show_default=True,
    help="Face mode: detect every N frames, track in between.",
)
@option(
    "--det-upsample",
    type=float,
    default=0.0,
    show_default=True,
    help="Face mode: enlarge frames by this factor for detection (0 = auto: 2x for frames up to 1024 px, finds ~8 px-eye faces; 1 = off, 4x cheaper).",
)
@option("--draw-boxes", is_flag=True, help="Face mode: draw face boxes (debugging).")
@option("--ffmpeg-bin", default=None, help="Encode with this ffmpeg binary instead of the built-in encoders.")
@option(
    "--report",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write a JSON report here.",
)
@option(
    "--altered-mask",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write a grey video, frame-aligned with OUTPUT: white where the face model made the pixels, "
    "mid-grey where the frame/background network did, black where interpolation did.",
)
@option(
    "--segment-seconds",
    type=float,
    default=60.0,
    show_default=True,
    help="Commit a longer video in segments of this many seconds, so --resume can continue it (0 = one pass).",
)
@option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run of the same command from its first unfinished segment.",
)
@option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@option("--quiet", "-q", is_flag=True, help="No progress output.")
@option("-v", "--verbose", count=True, help="More detail (repeat for more).")
def enhance(
    input: Path,
    output: Path,
    scale: str,
    model,
    device,
    precision,
    batch_size,
    tile,
    codec,
    crf,
    preset,
    pix_fmt,
    encoder_opt,
    no_audio,
    start,
    duration,
    mode,
    background,
    face_model,
    detector,
    min_face,
    det_threshold,
    det_every,
    det_upsample,
    draw_boxes,
    ffmpeg_bin,
    report,
    altered_mask,
    segment_seconds,
    resume,
    overwrite,
    quiet,
    verbose,
) -> None:
    """Super-resolve INPUT into OUTPUT (container from OUTPUT's extension: .mp4 .mkv .mov .webm).

    Every frame keeps its timestamp; audio and subtitles are copied; rotation and colour tags are kept.
    OUTPUT is written to a temporary file and renamed only when everything succeeded.
    """
    from vsr.media.writer import parse_encoder_options
    from vsr.pipelines.enhance import enhance as run
    from vsr.pipelines.enhance_report import failure_report

    config = EnhanceConfig(
        input=input,
        output=output,
        scale=int(scale),
        model=model,
        device=device,
        precision=precision,
        batch_size=batch_size,
        tile=tile,
        codec=codec,
        crf=crf,
        preset=preset,
        pix_fmt=pix_fmt,
        encoder_options=parse_encoder_options(encoder_opt),
        audio=not no_audio,
        start=start,
        duration=duration,
        report=report,
        altered_mask=altered_mask,
        segment_seconds=segment_seconds,
        resume=resume,
        overwrite=overwrite,
        quiet=quiet,
        verbose=verbose,
        ffmpeg_bin=ffmpeg_bin,
        mode=mode,
        face=FaceOptions(
            detector=detector,
            background=background,
            face_model=face_model,
            min_face=min_face,
            det_threshold=det_threshold,
            det_every=det_every,
            det_upsample=det_upsample,
            draw_boxes=draw_boxes,
        ),
    )
    try:
        result = run(config)
    except KeyboardInterrupt as exc:  # a segmented run's message says which segments it kept for --resume
        exc.args = (str(exc) or f"nothing was written; {output} was not created",)
        failure_report(config, exc)
        raise
    except Exception as exc:
        failure_report(config, exc)
        raise
    if not quiet:
        print_summary(result, output)
    sys.stdout.flush()


def print_summary(result, output: Path) -> None:
    """The closing lines on stderr: what ran (mode and every model), the speed, each warning, licence notes."""
    click.echo(
        f"vsr: {result.frames_out} frames {result.input['width']}x{result.input['height']} -> "
        f"{result.output['width']}x{result.output['height']} in {result.model_summary()} on {result.device}, "
        f"{result.seconds:.1f}s ({result.fps or 0:.2f} fps) -> {output}",
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
