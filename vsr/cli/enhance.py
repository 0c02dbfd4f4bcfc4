"""``vsr enhance INPUT OUTPUT``: parse options into an ``EnhanceConfig`` and run the pipeline."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vsr.cli.options import BatchSize, option, scale_or_model_scale
from vsr.config import BACKGROUNDS, CODECS, MODES, EnhanceConfig, FaceOptions


@click.command(context_settings={"max_content_width": 100})
@click.argument("input", type=click.Path(path_type=Path, dir_okay=True))
@click.argument("output", type=click.Path(path_type=Path, dir_okay=True))
@option("--scale", type=click.Choice(["2", "4"]), default="2", show_default=True, help="Upscaling factor.")
@option(
    "--model",
    default=None,
    help="Registry name (see 'vsr models'), a .safetensors / trainer .ckpt file, or a third-party .pth / "
    ".safetensors (zoo extra; its scale is used when --scale is not given). [default: the model for the scale]",
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
@option("--no-audio", is_flag=True, help="Drop audio instead of copying it.")
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
    no_audio,
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
    overwrite,
    quiet,
    verbose,
) -> None:
    """Super-resolve INPUT into OUTPUT (container from OUTPUT's extension: .mp4 .mkv .mov .webm).

    Every frame keeps its timestamp; audio and subtitles are copied; rotation and colour tags are kept.
    OUTPUT is written to a temporary file and renamed only when everything succeeded.
    """
    from vsr.pipelines.enhance import enhance as run
    from vsr.pipelines.enhance import failure_report

    config = EnhanceConfig(
        input=input,
        output=output,
        scale=scale_or_model_scale(scale, model, face_model),
        model=model,
        device=device,
        precision=precision,
        batch_size=batch_size,
        tile=tile,
        codec=codec,
        crf=crf,
        preset=preset,
        pix_fmt=pix_fmt,
        audio=not no_audio,
        report=report,
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
    except KeyboardInterrupt:
        failure_report(config, KeyboardInterrupt())
        raise KeyboardInterrupt(f"nothing was written; {output} was not created") from None
    except Exception as exc:
        failure_report(config, exc)
        raise
    if not quiet:
        warn = f", {len(result['warnings'])} warning(s)" if result["warnings"] else ""
        if restorer := result.get("face_restorer"):
            warn += f"; faces by {restorer['arch']}, a generative face restorer (it invents detail)"
        click.echo(
            f"vsr: {result['frames_out']} frames {result['input']['width']}x{result['input']['height']} -> "
            f"{result['output']['width']}x{result['output']['height']} ({result['model']}, {result['device']}) "
            f"in {result['seconds']:.1f}s, {result['fps']:.2f} fps -> {output}{warn}",
            err=True,
        )
        if verbose:
            for w in result["warnings"]:
                click.echo(f"vsr: warning: {w}", err=True)
    sys.stdout.flush()
