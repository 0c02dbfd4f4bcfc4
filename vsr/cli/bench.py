"""``vsr bench INPUT | --synthetic WxH[:FRAMES]``: stage-by-stage throughput on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vsr.cli.options import compute_options, encoders_option, option
from vsr.config import FaceOptions


@click.command(context_settings={"max_content_width": 100})
@click.argument("input", type=click.Path(path_type=Path), required=False)
@option("--synthetic", default=None, metavar="WxH[:FRAMES]", help="Time a generated clip instead of INPUT.")
@option("--scale", type=click.Choice(["2", "4"]), default="4", show_default=True, help="Upscaling factor.")
@option("--model", default=None, help="Registry name or weights file. [default: the model for the scale]")
@option(
    "--mode",
    type=click.Choice(["frame", "face"]),
    default="frame",
    show_default=True,
    help="face: also time face detection and the face-mode pipeline.",
)
@compute_options
@option(
    "--frames", type=int, default=None, help="Frames held in memory for the stage timings. [default: all]"
)
@option(
    "--batch-sweep",
    default="",
    help="Also time the model alone at each of these batch sizes, e.g. 4,8,16,32 (to choose --batch-size).",
)
@option(
    "--peak-tflops", type=float, default=None, help="Matrix rate for the roofline instead of measuring it."
)
@option(
    "--random-srresnet",
    default=None,
    metavar="BLOCKS,CHANNELS",
    help="Time an untrained SRResNet of this size (throughput only: its output is never kept).",
)
@option("--detector", default="auto", show_default=True, help="Face mode: auto, yuface, haar or yunet:PATH.")
@option(
    "--det-every",
    type=int,
    default=FaceOptions.det_every,
    show_default=True,
    help="Face mode: detect every N frames (the vsr enhance default).",
)
@option("--codec", default=None, help="Encoder for the encode and end-to-end stages. [default: libx264]")
@option("--preset", default=None, help="Encoder preset.")
@option(
    "--encoders",
    default="auto",
    show_default=True,
    callback=encoders_option,
    help="Encoders at once for the encode and end-to-end stages (as vsr enhance --encoders).",
)
@option("--no-end-to-end", is_flag=True, help="Skip the end-to-end stage.")
@option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of the table.")
def bench(
    input: Path | None,
    synthetic,
    scale,
    model,
    mode,
    device,
    precision,
    batch_size,
    compile,
    frames,
    batch_sweep,
    peak_tflops,
    random_srresnet,
    detector,
    det_every,
    codec,
    preset,
    encoders,
    no_end_to_end,
    as_json,
) -> None:
    """Time decode, model, face detection, encode, end-to-end and a reference loop, side by side.

    With --compile (auto: on CUDA), the model and device-path stages also run compiled, beside eager.

    INPUT is a video; or --synthetic WxH[:FRAMES] generates one.  Nothing is written but temporary files.
    """
    from vsr.pipelines.bench import (
        BenchConfig,
        parse_batch_sweep,
        parse_random_srresnet,
        parse_synthetic,
        run_bench,
    )

    config = BenchConfig(
        input=input,
        synthetic=parse_synthetic(synthetic) if synthetic else None,
        scale=int(scale),
        model=model,
        mode=mode,
        device=device,
        precision=precision,
        batch_size=batch_size,
        compile=compile,
        frames=frames,
        batch_sweep=parse_batch_sweep(batch_sweep),
        peak_tflops=peak_tflops,
        random_srresnet=parse_random_srresnet(random_srresnet) if random_srresnet else None,
        detector=detector,
        det_every=det_every,
        codec=codec,
        preset=preset,
        encoders=encoders,
        end_to_end=not no_end_to_end,
    )
    result = run_bench(config)
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.table())
