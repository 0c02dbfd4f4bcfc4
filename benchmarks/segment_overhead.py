"""What do segment commits cost?  End-to-end fps of ``vsr enhance`` with and without them, in one run.

    OMP_NUM_THREADS=1 python benchmarks/segment_overhead.py [INPUT] [--segment-seconds 2] [--repeat 3]

Runs the library's ``enhance`` in this process on the same clip, alternating one-pass
(``--segment-seconds 0``) and segmented runs, and prints one JSON line with the median fps of each
(frames / the report's pipeline seconds: model loading, decode, compute, encode, segment fsyncs and
manifests, the join, the read-back check), their ratio, and the median seconds spent joining.
Without INPUT a sample clip is generated (``--width``/``--height``/``--seconds``).  Short segments
make the cost visible; the default (60 s) commits 30 times less often than ``--segment-seconds 2``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", type=Path)
    parser.add_argument("--segment-seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default="bicubic")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--seconds", type=int, default=12)
    args = parser.parse_args()

    import torch

    from vsr.config import EnhanceConfig
    from vsr.media.sample import SampleSpec, write_sample
    from vsr.pipelines.enhance import enhance

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        src = args.input or write_sample(
            Path(tmp) / "in.mp4", SampleSpec(width=args.width, height=args.height, frames=24 * args.seconds)
        )
        runs: dict[str, list] = {"one_pass": [], "segmented": []}
        for i in range(args.repeat):
            for name, seconds in (("one_pass", 0.0), ("segmented", args.segment_seconds)):
                out = Path(tmp) / f"{name}-{i}.mp4"
                config = EnhanceConfig(
                    src,
                    out,
                    scale=args.scale,
                    model=args.model,
                    mode="frame",
                    quiet=True,
                    segment_seconds=seconds,
                )
                runs[name].append(enhance(config))
                out.unlink()
        fps = {name: statistics.median(r.fps for r in reports) for name, reports in runs.items()}
        segments = runs["segmented"][0].segments
        print(
            json.dumps(
                {
                    "input": str(args.input or f"sample {args.width}x{args.height} {args.seconds}s 24fps"),
                    "frames": runs["one_pass"][0].frames_out,
                    "model": args.model,
                    "scale": args.scale,
                    "segment_seconds": args.segment_seconds,
                    "segments": segments.count if segments else 0,
                    "one_pass_fps": round(fps["one_pass"], 2),
                    "segmented_fps": round(fps["segmented"], 2),
                    "segmented_over_one_pass": round(fps["segmented"] / fps["one_pass"], 3),
                    "join_seconds": statistics.median(r.segments.join_seconds for r in runs["segmented"]),
                    "repeat": args.repeat,
                    "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                    "torch_threads": torch.get_num_threads(),
                }
            )
        )


if __name__ == "__main__":
    main()
