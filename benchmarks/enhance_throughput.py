"""How well do decoding and encoding hide behind compute?

    python benchmarks/enhance_throughput.py INPUT --scale 2 [--model M] [--repeat 3] --json

Runs ``vsr bench`` (``vsr.pipelines.bench.run_bench``) ``--repeat`` times and prints one JSON line with
the medians of its ``model`` stage (the ``Upscaler`` on frames decoded beforehand, batches as the
pipeline uses them) and its ``end_to_end`` stage (``vsr enhance`` in frame mode: frames / pipeline
seconds from its report, model loading, decode and encode included), and their ratio.  ``vsr bench``
itself reports every stage; this script keeps the two-number summary the CPU target is stated in.

``--model`` takes a registry name or weights file.  ``--random-srresnet BLOCKS,CHANNELS`` instead
times an untrained SRResNet of that size: a throughput figure for the architecture, never user output.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", type=Path)
    ap.add_argument("--scale", type=int, default=2, choices=(2, 4))
    ap.add_argument("--model", default="lanczos")
    ap.add_argument("--random-srresnet", metavar="BLOCKS,CHANNELS", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print one JSON line (default: a readable line)")
    args = ap.parse_args()

    from vsr.pipelines.bench import BenchConfig, parse_random_srresnet, run_bench

    config = BenchConfig(
        input=args.input,
        scale=args.scale,
        model=None if args.random_srresnet else args.model,
        random_srresnet=parse_random_srresnet(args.random_srresnet) if args.random_srresnet else None,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
    )
    runs = [run_bench(config) for _ in range(args.repeat)]
    first = runs[0]
    result = {
        "input": str(args.input),
        "frames": first.frames,
        "scale": args.scale,
        "model": first.model,
        "device": first.device,
        "torch_threads": first.torch_threads,
        "model_fps": round(statistics.median(r.stages["model"].fps for r in runs), 3),
        "end_to_end_fps": round(statistics.median(r.stages["end_to_end"].fps for r in runs), 3),
        "repeat": args.repeat,
    }
    result["ratio"] = round(result["end_to_end_fps"] / result["model_fps"], 3)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"model {result['model_fps']:.2f} fps, end-to-end {result['end_to_end_fps']:.2f} fps, "
            f"ratio {result['ratio']:.2f} ({result['frames']} frames, x{args.scale}, {result['device']})"
        )


if __name__ == "__main__":
    main()
