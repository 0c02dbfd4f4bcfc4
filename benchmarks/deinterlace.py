"""What deinterlacing costs the reader: decode-to-RGB fps of an interlaced clip with ``--deinterlace off``
against ``auto`` (bwdif), at the sizes interlaced archives come in.

Each size gets a generated interlaced H.264 sample (``vsr sample --interlaced tff``: two fields half a
frame apart, so the picture moves between them); the reader decodes it to RGB frames in alternating
repetitions, and the median fps of each setting and their ratio are printed (JSON with ``--json``).
Decode, bwdif and the RGB conversion all run on the CPU; the model is not involved.

    python benchmarks/deinterlace.py [--sizes 720x576,1920x1080] [--frames 100] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from vsr.config import usable_cores
from vsr.media.reader import VideoReader
from vsr.media.sample import SampleSpec, write_sample


def decode_fps(path: Path, deinterlace: str) -> float:
    started = time.perf_counter()
    with VideoReader(path, deinterlace=deinterlace) as reader:
        frames = sum(1 for _ in reader.frames())
    return frames / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="720x576,1920x1080")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.split("x"))
            clip = write_sample(
                Path(tmp) / f"i{size}.mkv",
                SampleSpec(
                    width=width, height=height, frames=args.frames, fps=25, audio_tracks=0, interlaced="tff"
                ),
            )
            runs: dict[str, list[float]] = {"off": [], "auto": []}
            for _ in range(args.repeat):
                for mode in runs:  # alternating: drift in the machine's load falls on both
                    runs[mode].append(decode_fps(clip, mode))
            off, auto = (statistics.median(runs[m]) for m in ("off", "auto"))
            results.append(
                {
                    "size": size,
                    "frames": args.frames,
                    "fps_woven": round(off, 1),
                    "fps_deinterlaced": round(auto, 1),
                    "ratio": round(auto / off, 3),
                    "runs": {m: [round(v, 1) for v in r] for m, r in runs.items()},
                }
            )
    summary = {"machine": f"{platform.machine()}, {usable_cores()} usable cores", "results": results}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(summary["machine"])
    for r in results:
        print(
            f"{r['size']:>10}: woven {r['fps_woven']:7.1f} fps, deinterlaced {r['fps_deinterlaced']:7.1f} fps "
            f"({r['ratio']:.3f}x)"
        )


if __name__ == "__main__":
    main()
