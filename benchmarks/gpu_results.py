"""Export finished GPU runs and measure them in one process: what ``models/recipes/train_gpu.sh`` brings back.

    python benchmarks/gpu_results.py --runs RUNS --val CARRY/val --weights W --json OUT/results.json NAME [NAME ...]

For each NAME (a folder RUNS/NAME with last.ckpt): ``vsr train export`` (fp16 EMA generator) to
W/NAME.safetensors, then the evaluations a model card reports that the carried sets allow, as
``vsr eval`` runs them (the same library call and JSON, one torch import for all): general models
Set5, Set14 and faces/val; face models faces/val clean and real-footage (H.264 needs PyAV).  The
shared clips (flicker) did not travel: ``benchmarks/release_models.py --missing-only`` adds them on
the CPU.  The JSON is merged into an existing one, so the script can call this once per phase.
Each model's entry also holds its training facts (config, steps, measured steps/s, time plans,
last validation) read from its checkpoint, and the machine's (GPU name, torch version).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def machine() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def evaluations(name: str, scale: int, val: Path, limit_faces: int | None) -> dict[str, dict]:
    """Result key -> ``evaluate_images`` arguments (the card's keys: Set5, Set14, faces_val, faces_val_real)."""
    runs: dict[str, dict] = {}
    faces = {"directory": val / "faces", "kind": "faces", "limit": limit_faces}
    if name.startswith("face"):
        runs["faces_val"] = faces
        runs["faces_val_real"] = {**faces, "degrade": "real"}
    else:
        for bench in ("Set5", "Set14"):
            if (val / bench).is_dir():
                runs[bench] = {"directory": val / bench, "kind": "images"}
        runs["faces_val"] = faces
    return {k: {**v, "scale": scale} for k, v in runs.items() if Path(v["directory"]).is_dir()}


def command_of(args: dict, weights: Path) -> str:
    """The ``vsr eval`` command line the card quotes for one evaluation."""
    parts = [
        "vsr",
        "eval",
        args["kind"],
        str(args["directory"]),
        "--scale",
        str(args["scale"]),
        "--model",
        str(weights),
    ]
    if args.get("limit"):
        parts += ["--limit", str(args["limit"])]
    if args.get("degrade"):
        parts += ["--degrade", args["degrade"]]
    return " ".join(parts + ["--json", "-q"])


def training(run: Path) -> dict:
    """Facts of a finished run from its checkpoint and metrics.csv."""
    from vsr.pipelines.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run / "last.ckpt")
    cfg = ckpt["config"]
    rows = list(csv.DictReader(open(run / "metrics.csv"))) if (run / "metrics.csv").is_file() else []
    val = [r for r in rows if r.get("val_psnr")]
    budget = ckpt.get("budget") or {}
    rate = budget.get("steps_per_s")
    return {
        "step": int(ckpt["step"]),
        "steps": cfg["steps"],
        "batch_size": cfg["batch_size"],
        "hr_size": cfg["data"]["hr_size"],
        "sources": cfg["data"]["sources"],
        "val": cfg["data"]["val"],
        "arch": ckpt["arch"],
        "stage": cfg["stage"],
        "init": cfg.get("init"),
        "budget": budget,
        "steps_per_s": rate,
        "samples_per_s": rate * cfg["batch_size"] if rate else None,
        "last_val": val[-1] if val else None,
        "config": cfg,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="+")
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--val", type=Path, required=True, help="folder with Set5/, Set14/, faces/")
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--limit-faces", type=int, default=None)
    ap.add_argument("--grids", type=Path, default=None, help="write one eval grid per model here")
    args = ap.parse_args()

    from release_models import summary

    from vsr.models.registry import load_model_from
    from vsr.pipelines.evaluate import evaluate_images
    from vsr.pipelines.train.checkpoint import export_weights

    data = json.loads(args.json.read_text()) if args.json.is_file() else {}
    data.setdefault("machine", machine())
    models = data.setdefault("models", {})
    args.weights.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        run = args.runs / name
        if not (run / "last.ckpt").is_file():
            models[name] = {"error": f"no checkpoint in {run} (the run failed or did not start)"}
            print(f"{name}: no checkpoint", file=sys.stderr)
            continue
        scale = int(re.search(r"x(\d)", name)[1])
        weights = args.weights / f"{name}.safetensors"
        t0 = time.monotonic()
        sha = export_weights(run / "last.ckpt", weights)
        results = {}
        for i, (key, ev) in enumerate(evaluations(name, scale, args.val, args.limit_faces).items()):
            grid = args.grids / f"{name}.png" if args.grids and i == 0 else None
            report = evaluate_images(
                ev["directory"],
                scale=scale,
                model=str(weights),
                kind=ev["kind"],
                limit=ev.get("limit"),
                degrade=ev.get("degrade"),
                grid=grid,
                quiet=True,
            )
            results[key] = {"command": command_of(ev, weights), **summary(report.to_dict())}
        models[name] = {
            "file": weights.name,
            "sha256": sha,
            "bytes": weights.stat().st_size,
            "params": load_model_from(str(weights), scale).params,
            "training": training(run),
            "results": results,
            "eval_seconds": round(time.monotonic() - t0, 1),
        }
        head = {k: round(v.get("psnr_y") or 0, 2) for k, v in results.items()}
        print(f"{name}: {head} ({models[name]['eval_seconds']} s)", file=sys.stderr)
        args.json.write_text(json.dumps(data, indent=1, default=str) + "\n")
    args.json.write_text(json.dumps(data, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
