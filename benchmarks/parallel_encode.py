"""Encode throughput and size with one encoder against several on keyframe-aligned chunks (``--encoders``).

Frames: a real clip (default ``../shared/data/videos/stage_hamilton.mp4``, 640x360, 275 frames) upscaled
beforehand with bilinear to the target size and held in memory, so only encoding is timed.  Each
configuration writes the same frames with ``VideoWriter`` (libx264, the default crf and preset) in
alternating repetitions; the median fps, the file size and the ratios to one encoder are printed (JSON
with ``--json``).  One encoder uses all cores; ``K`` encoders get ``cores / K`` threads each, as
``plan_encoders`` gives them.

    python benchmarks/parallel_encode.py [CLIP] [--size 1920x1080] [--encoders 1,2,4] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from vsr.config import usable_cores
from vsr.media.encoders import CHUNK_SECONDS, EncoderPlan
from vsr.media.reader import Frame, VideoReader
from vsr.media.writer import EncodeSettings, VideoWriter

DEFAULT_CLIP = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos" / "stage_hamilton.mp4"
)


def encode(frames, info, time_base, out: Path, plan: EncoderPlan, preset: str | None) -> float:
    settings = EncodeSettings.for_output(out, preset=preset, audio=False)
    h, w = frames[0].shape[:2]
    started = time.perf_counter()
    writer = VideoWriter(out, "mp4", info, w, h, settings, time_base, 0, None, False, plan)
    for i, image in enumerate(frames):
        writer.write(Frame(image, pts=i, index=i))
    writer.close()
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", nargs="?", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--encoders", default="1,2")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--preset", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with VideoReader(args.clip) as reader:
        info, time_base = reader.info, reader.time_base
        frames = [cv2.resize(f.image, (width, height)) for f in reader.frames()]
    cores = usable_cores()
    chunk = round(info.fps * CHUNK_SECONDS)
    plans = {
        k: EncoderPlan() if k == 1 else EncoderPlan(k, chunk, max(1, cores // k))
        for k in (int(v) for v in args.encoders.split(","))
    }
    seconds: dict[int, list[float]] = {k: [] for k in plans}
    sizes: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):  # alternating, so drift in machine load hits every configuration
            for k, plan in plans.items():
                out = Path(tmp) / f"k{k}.mp4"
                seconds[k].append(encode(frames, info, time_base, out, plan, args.preset))
                sizes[k] = out.stat().st_size
    fps = {k: len(frames) / statistics.median(s) for k, s in seconds.items()}
    result = {
        "machine": f"{platform.machine()}, {cores} CPU cores",
        "clip": args.clip.name,
        "frames": len(frames),
        "size": args.size,
        "chunk_frames": chunk,
        "repeat": args.repeat,
        "plans": {k: p.describe() for k, p in plans.items()},
        "fps_median": {k: round(v, 2) for k, v in fps.items()},
        "bytes": sizes,
        "fps_over_one": {k: round(v / fps[1], 3) for k, v in fps.items()} if 1 in fps else None,
        "bytes_over_one": {k: round(v / sizes[1], 4) for k, v in sizes.items()} if 1 in sizes else None,
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for k in plans:
        print(f"{k} encoder(s): {fps[k]:7.2f} fps, {sizes[k] / 1e6:6.2f} MB  {plans[k].describe()}")
    print("fps over one:", result["fps_over_one"], " bytes over one:", result["bytes_over_one"])


if __name__ == "__main__":
    main()
