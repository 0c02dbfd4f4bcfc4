"""Does ``vsr batch`` amortise start-up and model loading, and is a re-run over done files cheap?

    python benchmarks/batch_throughput.py [--clips 20 --size 96x72 --frames 12 --model general-x2]
                                          [--done 1000] [--json FILE]

Measures, in one run, on generated clips (CPU, ``OMP_NUM_THREADS=1`` unless set):
- ``loop_s``: a shell-less loop of ``vsr enhance IN OUT`` subprocesses over the clips (each pays the
  interpreter, torch import and model load);
- ``batch_s``: ``vsr batch DIR --out-dir OUT --workers 1`` over the same clips (one worker, model loaded
  once); ``ratio`` = batch_s / loop_s (target <= 0.6);
- ``rerun_s``: the same ``vsr batch`` again when everything is done (fingerprints, sidecars, probes);
- ``rerun_done_s``: ``vsr batch`` over ``--done`` tiny inputs whose outputs and sidecars already exist
  (made by copying one real output and writing each sidecar with the library's fingerprint; no
  enhancing), so the time is the skip path alone (target < 5 s), interpreter start included;
  ``rerun_done_touched_s``: the same after touching every output, so each one is probed again.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def vsr(*args: str) -> float:
    """Run ``python -m vsr ARGS``; returns wall seconds (raises on a failing exit code)."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "vsr", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"vsr {' '.join(args)} exited {res.returncode}: {res.stderr[-2000:]}")
    return seconds


def make_clips(folder: Path, n: int, width: int, height: int, frames: int) -> list[Path]:
    from vsr.media.sample import SampleSpec, write_sample

    folder.mkdir(parents=True)
    return [write_sample(folder / f"clip{i:03d}.mp4", SampleSpec(width, height, frames)) for i in range(n)]


def fake_done(folder: Path, out: Path, template: Path, n: int, model: str) -> None:
    """``n`` tiny inputs, each with a valid output (a copy of ``template``) and a done sidecar."""
    from vsr.config import EnhanceConfig
    from vsr.pipelines.batch.fingerprint import ModelIdentity, fingerprint, output_facts, write_sidecar

    folder.mkdir(parents=True)
    out.mkdir(parents=True)
    identity = ModelIdentity()
    source = next(folder.parent.glob("clips/*.mp4"))
    facts = output_facts(template)
    for i in range(n):
        inp, dst = folder / f"f{i:04d}.mp4", out / f"f{i:04d}_x2.mp4"
        shutil.copyfile(source, inp)
        shutil.copyfile(template, dst)
        facts = {**facts, "mtime_ns": dst.stat().st_mtime_ns}  # as a real run records each output
        config = EnhanceConfig(inp, dst, scale=2, model=model)
        write_sidecar(
            dst, "done", fingerprint(config, "quick", identity), output=facts, report={"status": "ok"}
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--size", default="96x72")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--model", default="general-x2")
    ap.add_argument("--done", type=int, default=1000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    width, height = (int(v) for v in args.size.split("x"))
    common = ["--model", args.model, "--scale", "2", "--device", "cpu", "--quiet"]
    with tempfile.TemporaryDirectory(prefix="vsr-batch-bench-") as tmp:
        root = Path(tmp)
        clips = make_clips(root / "clips", args.clips, width, height, args.frames)
        (root / "loop").mkdir()
        t0 = time.perf_counter()
        for clip in clips:  # a plain loop, no shell: what a user's script would do per file
            vsr("enhance", str(clip), str(root / "loop" / f"{clip.stem}_x2.mp4"), *common)
        loop_s = time.perf_counter() - t0
        batch_s = vsr(
            "batch", str(root / "clips"), "--out-dir", str(root / "batch"), "--workers", "1", *common
        )
        rerun_s = vsr(
            "batch", str(root / "clips"), "--out-dir", str(root / "batch"), "--workers", "1", *common
        )
        template = root / "batch" / f"{clips[0].stem}_x2.mp4"
        fake_done(root / "done_in", root / "done_out", template, args.done, args.model)
        done_s = vsr("batch", str(root / "done_in"), "--out-dir", str(root / "done_out"), *common)
        for p in (root / "done_out").glob("*.mp4"):
            os.utime(p)
        touched_s = vsr("batch", str(root / "done_in"), "--out-dir", str(root / "done_out"), *common)
    result = {
        "clips": args.clips,
        "clip": f"{width}x{height}x{args.frames}",
        "model": args.model,
        "loop_s": round(loop_s, 2),
        "batch_s": round(batch_s, 2),
        "ratio": round(batch_s / loop_s, 3),
        "rerun_s": round(rerun_s, 2),
        "done_files": args.done,
        "rerun_done_s": round(done_s, 2),
        "rerun_done_touched_s": round(touched_s, 2),
        "cpus": os.cpu_count(),
        "omp_threads": os.environ["OMP_NUM_THREADS"],
    }
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
