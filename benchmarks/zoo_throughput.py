"""A full-size third-party model against ours on the CPU: throughput, tiling error, peak memory.

Builds a full-size RRDBNet (ESRGAN / Real-ESRGAN x4: 23 blocks, 64 channels) with random weights through
spandrel's own class, saves it as a ``.pth`` and loads it back through vsr's loading policy, then runs it
and the shipped ``general-x4`` (SRResNet 6x32) over the same small clip in one process:

- per-frame time, median over the frames (after one warm-up frame), and the ratio;
- the largest difference between tiled and untiled output (``--tile``, overlap = the model's
  ``receptive_radius``, capped at ``vsr.models.zoo.MAX_OVERLAP``) on one clip frame;
- with ``--rss``: the peak resident memory of a tiled run on one frame whose output is 1920x1080
  (input 480x270), each model in a fresh subprocess (peak RSS of the process, and its RSS before the run).

Needs the zoo extra (``make zoo-install``); run with ``OMP_NUM_THREADS=1``::

    OMP_NUM_THREADS=1 .venv-zoo/bin/python benchmarks/zoo_throughput.py --frames 4 --size 96x64 --rss
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build_rrdbnet(path: Path) -> None:
    import torch
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    torch.save({"params_ema": ESRGAN(num_filters=64, num_blocks=23, scale=4).state_dict()}, path)


def upscaler(model: str, tile: int = 0):
    import torch

    from vsr.models.registry import load_model_from
    from vsr.pipelines.upscale import Upscaler

    loaded = load_model_from(model, 4)
    return loaded, Upscaler(loaded.module, 4, torch.device("cpu"), "fp32", batch_size=1, tile=tile)


def interleaved_seconds(runs: dict, frames) -> dict[str, dict[str, list[float]]]:
    """Per model and frame: wall and CPU seconds, models alternating frame by frame (same load for both)."""
    for run in runs.values():
        run(frames[:1])  # warm-up
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in runs}
    for frame in frames:
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run([frame])
            times[name]["wall"].append(time.perf_counter() - wall)
            times[name]["cpu"].append(time.process_time() - cpu)
    return times


def child_rss(model: str, tile: int) -> None:
    """Subprocess mode: one tiled 480x270 -> 1920x1080 frame; prints RSS before and peak (MiB)."""
    from vsr.media.sample import sample_frame

    frame = sample_frame(0, 480, 270)
    _, up = upscaler(model, tile)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    out = up([frame])[0]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"out": list(out.shape), "rss_before_mib": round(before), "peak_rss_mib": round(peak),
                      "seconds": round(seconds, 1), "tiled_frames": up.stats.tiled_frames}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--size", default="96x64", help="clip size WxH (input pixels)")
    parser.add_argument("--tile", type=int, default=48, help="tile size for the tiled-vs-untiled check")
    parser.add_argument("--rss", action="store_true", help="also the peak RSS of a tiled 1080p-output frame")
    parser.add_argument("--rss-tile", type=int, default=128)
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "TILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.child:
        child_rss(args.child[0], int(args.child[1]))
        return
    import numpy as np

    from vsr.media.sample import sample_frame

    w, h = (int(v) for v in args.size.split("x"))
    frames = [sample_frame(i, w, h) for i in range(args.frames)]
    with tempfile.TemporaryDirectory() as tmp:
        rrdb = Path(tmp) / "RRDBNet_x4_23x64_random.pth"
        build_rrdbnet(rrdb)
        results: dict = {"clip": f"{w}x{h} x{args.frames} frames", "threads": 1, "models": {}}
        names = {"rrdbnet-23x64": str(rrdb), "general-x4": "general-x4"}
        built = {label: upscaler(name) for label, name in names.items()}
        times = interleaved_seconds({label: up for label, (_, up) in built.items()}, frames)
        for label, (loaded, up) in built.items():
            wall, cpu = statistics.median(times[label]["wall"]), statistics.median(times[label]["cpu"])
            _, tiled = upscaler(names[label], args.tile)
            a, b = up(frames[:1])[0], tiled(frames[:1])[0]
            results["models"][label] = {
                "arch": loaded.arch,
                "params": loaded.params,
                "median_wall_s_per_frame": round(wall, 4),
                "median_cpu_s_per_frame": round(cpu, 4),
                "fps_wall": round(1 / wall, 3),
                "overlap": tiled.overlap,
                f"max_abs_diff_tiled_{args.tile}_vs_untiled": int(np.abs(a.astype(int) - b).max()),
            }
        r, s = results["models"]["rrdbnet-23x64"], results["models"]["general-x4"]
        for kind in ("wall", "cpu"):
            key = f"median_{kind}_s_per_frame"
            results[f"rrdbnet_over_srresnet_{kind}_time"] = round(r[key] / s[key], 1)
        if args.rss:
            results["rss_tiled_1080p_output"] = {}
            for label, name in (("rrdbnet-23x64", str(rrdb)), ("general-x4", "general-x4")):
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", name, str(args.rss_tile)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                results["rss_tiled_1080p_output"][label] = {"tile": args.rss_tile, **json.loads(proc.stdout)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
