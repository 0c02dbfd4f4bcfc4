"""How well do decoding and encoding hide behind compute?

    python benchmarks/enhance_throughput.py INPUT --scale 2 [--model M] [--repeat 3] --json

Measures, in one run:
- ``model_fps``: inference alone (``Upscaler`` on frames decoded beforehand, batches as the pipeline uses);
- ``end_to_end_fps``: the real command, ``vsr enhance INPUT OUT --mode frame`` in a subprocess, frames / pipeline
  seconds from its report (interpreter start-up excluded; model loading, decode, encode included);
and prints one JSON line with the medians over ``--repeat`` runs and their ratio.

``--model`` takes a registry name or weights file.  ``--random-srresnet BLOCKS,CHANNELS`` instead
times an untrained SRResNet of that size (written to a temporary .safetensors): a throughput figure
for the architecture, never user output.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def decode_frames(path: Path, limit: int):
    from vsr.media.reader import VideoReader

    frames = []
    with VideoReader(path) as reader:
        for frame in reader.frames():
            frames.append(frame.image)
            if len(frames) >= limit:
                break
    return frames


def model_fps(model: str, scale: int, frames, device: str, precision: str, batch_size: int | None) -> float:
    import torch

    from vsr.models.registry import load_model_from
    from vsr.pipelines.device import resolve_device, resolve_precision
    from vsr.pipelines.upscale import Upscaler

    dev = resolve_device(device)
    loaded = load_model_from(model, scale)
    up = Upscaler(loaded.module, scale, dev, resolve_precision(precision, dev), batch_size)
    up(frames[: up.batch_size])  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    done = 0
    for i in range(0, len(frames), up.batch_size):
        done += len(up(frames[i : i + up.batch_size]))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def end_to_end_fps(
    inp: Path, model: str, scale: int, device: str, precision: str, batch_size: int | None, tmp: Path
) -> dict:
    out, report = tmp / f"out{inp.suffix}", tmp / "report.json"
    cmd = [
        sys.executable,
        "-m",
        "vsr",
        "enhance",
        str(inp),
        str(out),
        "--scale",
        str(scale),
        "--model",
        model,
        "--device",
        device,
        "--mode",
        "frame",
        "--precision",
        precision,
        "--overwrite",
        "--quiet",
        "--report",
        str(report),
    ]
    if batch_size:
        cmd += ["--batch-size", str(batch_size)]
    wall = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    if proc.returncode != 0:
        raise SystemExit(f"vsr enhance failed: {proc.stderr.strip()}")
    data = json.loads(report.read_text())
    return {"fps": data["frames_out"] / data["seconds"], "frames": data["frames_out"], "wall_s": wall}


def random_srresnet(spec: str, scale: int, folder: Path) -> str:
    import torch

    from vsr.models.srresnet import SRResNet
    from vsr.models.weights import write_safetensors

    blocks, channels = (int(v) for v in spec.split(","))
    torch.manual_seed(0)
    net = SRResNet(scale, blocks, channels)
    path = folder / f"random-srresnet-{blocks}x{channels}-x{scale}.safetensors"
    arch = {"arch": "srresnet", "scale": scale, "blocks": blocks, "channels": channels, "batch_norm": True}
    write_safetensors(net.state_dict(), arch, path, half=False)
    return str(path)


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

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        model = random_srresnet(args.random_srresnet, args.scale, tmp) if args.random_srresnet else args.model
        e2e_runs = [
            end_to_end_fps(args.input, model, args.scale, args.device, args.precision, args.batch_size, tmp)
            for _ in range(args.repeat)
        ]
        frames = decode_frames(args.input, e2e_runs[0]["frames"])
        model_runs = [
            model_fps(model, args.scale, frames, args.device, args.precision, args.batch_size)
            for _ in range(args.repeat)
        ]
    import torch

    result = {
        "input": str(args.input),
        "frames": e2e_runs[0]["frames"],
        "scale": args.scale,
        "model": args.random_srresnet and f"random-srresnet:{args.random_srresnet}" or args.model,
        "device": args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"),
        "torch_threads": torch.get_num_threads(),
        "model_fps": round(statistics.median(model_runs), 3),
        "end_to_end_fps": round(statistics.median(r["fps"] for r in e2e_runs), 3),
        "end_to_end_wall_s": round(statistics.median(r["wall_s"] for r in e2e_runs), 3),
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
