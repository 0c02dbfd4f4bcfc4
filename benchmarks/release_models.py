"""Turn finished training runs into shipped models: export, measure with ``vsr eval``, write cards.

    python benchmarks/release_models.py --runs RUNS_DIR --log RUNS_DIR/train_all.log NAME [NAME ...]

For each NAME (a folder RUNS_DIR/NAME with last.ckpt, config.toml, metrics.csv):
1. ``vsr train export`` -> ``models/weights/NAME.safetensors`` (fp16 EMA generator) and its sha256;
2. the evaluations the model card reports, run as the exact ``vsr eval`` commands it quotes
   (faces: faces/val clean and real-world; general: Set5, Set14; both: two shared clips);
3. ``models/cards/NAME.json`` (all numbers, the commands, the training facts) and ``NAME.md``.
It prints the registry entries (``WeightsSpec`` literals) to paste into ``models/registry.py``.
Everything is measured on this machine; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("../shared/data")
CLIPS = ("talking_d0.mp4", "stage_hamilton.mp4")
PUBLISHED_X4 = {"SRResNet": {"Set5": 32.05, "Set14": 28.49}, "SRGAN": {"Set5": 29.40, "Set14": 26.02}}
LICENCES = {
    "faces": "UTKFace (Zhang, Song, Qi, CVPR 2017): non-commercial research use only",
    "scenes": "SUN/Hays 80 scene photos (public benchmark collection)",
    "urban": "Urban100 (Huang et al. 2015), public SR benchmark",
    "videos": "LivePortrait example clips (MIT repository); face_recognition example clip (MIT repository)",
}


def sh(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {shlex.join(cmd)}\n{proc.stderr}")
    return proc.stdout


def run_eval_command(args: list[str]) -> tuple[str, dict]:
    cmd = ["vsr", "eval", *args, "--json", "-q"]
    out = sh([sys.executable, "-m", "vsr", "eval", *args, "--json", "-q"])
    return shlex.join(cmd), json.loads(out)


def summary(result: dict, keys=("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y", "sharpness")) -> dict:
    row = {k: result.get(k) for k in keys}
    if "flicker" in result:
        row["flicker"] = result["flicker"]
    row["baselines"] = {
        b: {k: v.get(k) for k in (*keys, "flicker") if k in v} for b, v in result["baselines"].items()
    }
    row["n"] = result["n"]
    return row


def wall_times(log: Path | None) -> dict[str, float]:
    """Minutes per run from the driver's log lines '=== NAME HH:MM:SS: ...' and '=== NAME done HH:MM:SS'.

    A run that was stopped and started again counts from its last start.
    """
    start: dict[str, int] = {}
    minutes: dict[str, float] = {}
    if log and log.is_file():
        for line in log.read_text().splitlines():
            m = re.match(r"=== (\S+) (done )?(\d\d):(\d\d):(\d\d)", line)
            if m:
                t = int(m[3]) * 3600 + int(m[4]) * 60 + int(m[5])
                if m[2]:
                    minutes[m[1]] = (t - start[m[1]]) % 86400 / 60
                else:
                    start[m[1]] = t
    return minutes


def _portable(command: str, runs: Path) -> str:
    """Rewrite a logged command so it reads from the repository: recipes live in models/recipes/."""
    command = re.sub(rf"{re.escape(str(runs))}/([\w.-]+\.toml)", r"models/recipes/\1", command)
    return command.replace(str(runs), "runs")


def training_facts(run: Path, log: Path | None) -> dict:
    cfg = tomllib.loads((run / "config.toml").read_text())
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    val = [r for r in rows if r.get("val_psnr")]
    commands = []
    if log and log.is_file():
        commands = [
            line.split(": ", 1)[1] + f" --out runs/{run.name}"
            for line in log.read_text().splitlines()
            if line.startswith(f"=== {run.name} ") and ": vsr train" in line
        ][-1:]
    minutes = wall_times(log).get(run.name)
    init = cfg.get("init")
    if init and Path(init).parent.parent == run.parent:  # started from another run: its commands come first
        before = training_facts(Path(init).parent, log)
        commands = before["commands"] + commands
        if minutes is not None and before["wall_minutes"] is not None:
            minutes += before["wall_minutes"]
    return {
        "stage": cfg["stage"],
        "scale": cfg["scale"],
        "steps": cfg["steps"],
        "batch_size": cfg["batch_size"],
        "hr_size": cfg["data"]["hr_size"],
        "sources": cfg["data"]["sources"],
        "val": cfg["data"]["val"],
        "blocks": cfg["model"]["blocks"],
        "channels": cfg["model"]["channels"],
        "batch_norm": cfg["model"]["batch_norm"],
        "degrade": cfg["degrade"],
        "loss": cfg.get("loss", {}),
        "optim": cfg.get("optim", {}),
        "last_val": val[-1] if val else None,
        "wall_minutes": minutes,
        "commands": [_portable(c, run.parent) for c in commands],
        "hardware": f"{platform.machine()} CPU, 2 cores, shared with other jobs (no GPU)",
    }


def evaluate(
    name: str, weights: Path, scale: int, face: bool, limit_faces: int | None, clip_frames: int
) -> dict:
    w = str(weights.relative_to(ROOT))
    results: dict = {}
    if face:
        faces = str(DATA / "faces/val")
        lim = ["--limit", str(limit_faces)] if limit_faces else []
        cmd, r = run_eval_command(["faces", faces, "--scale", str(scale), "--model", w, *lim])
        results["faces_val"] = {"command": cmd, **summary(r)}
        cmd, r = run_eval_command(
            ["faces", faces, "--scale", str(scale), "--model", w, "--degrade", "real", *lim]
        )
        results["faces_val_real"] = {"command": cmd, **summary(r)}
    else:
        for bench in ("Set5", "Set14"):
            cmd, r = run_eval_command(
                ["images", str(DATA / "sr-bench" / bench), "--scale", str(scale), "--model", w]
            )
            results[bench] = {"command": cmd, **summary(r)}
    for clip in CLIPS:
        cmd, r = run_eval_command(
            [
                "video",
                str(DATA / "videos" / clip),
                "--scale",
                str(scale),
                "--model",
                w,
                "--limit",
                str(clip_frames),
            ]
        )
        results[f"video:{clip}"] = {"command": cmd, **summary(r)}
    return results


def _cell(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if "ssim" in metric else f"{value:.3f}" if metric == "sharpness" else f"{value:.2f}"


def card_markdown(name: str, info: dict) -> str:
    t, r = info["training"], info["results"]
    face = info["face"]
    lines = [
        f"# {name}",
        "",
        f"{'Face' if face else 'General (whole-frame)'} ×{info['scale']} SRGAN generator "
        f"({'GAN stage' if t['stage'] == 'gan' else 'PSNR stage: SRResNet, pixel loss'}).",
        "",
        "## Architecture",
        f"SRResNet: {t['blocks']} residual blocks, {t['channels']} channels, "
        f"{'BatchNorm' if t['batch_norm'] else 'no BatchNorm'}, PReLU, pixel shuffle; predicts a residual over "
        f"bicubic. {info['params']:,} parameters; weights `{info['file']}` (fp16, {info['size_kb']} KB), "
        f"sha256 `{info['sha256']}`.",
        "",
        "## Data and licence",
        *[f"- `{s}`" for s in t["sources"]],
        f"- validation: {', '.join(t['val']) or 'held-out share of the sources'}",
        *[f"- {k}: {v}" for k, v in LICENCES.items() if any(k in s for s in t["sources"])],
        "- `faces/val` and `sr-bench/` were never used for training.",
        *(
            ["- **UTKFace is for non-commercial research use only: so are these weights.**"]
            if any("faces" in s for s in t["sources"])
            else []
        ),
        "",
        "## Degradations (per sample, seeded)",
        "```toml",
        *[f"{k} = {json.dumps(v)}" for k, v in t["degrade"].items()],
        "```",
        "",
        "## Training",
        f"- stage `{t['stage']}`, {t['steps']} steps, batch {t['batch_size']}, HR crop {t['hr_size']} px",
        f"- hardware: {t['hardware']}; wall time {t['wall_minutes']:.0f} min in all (including the runs it started from)"
        if t["wall_minutes"] is not None
        else f"- hardware: {t['hardware']}",
        *[f"- command: `{c}`" for c in t["commands"]],
        f"- export: `vsr train export runs/{name}/last.ckpt models/weights/{info['file']}`",
        "",
        "## Results (measured with `vsr eval` on this machine)",
        "",
        "| set | metric | model | bicubic | lanczos |",
        "|---|---|---|---|---|",
    ]
    for key, res in r.items():
        metrics = (
            ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y", "sharpness")
            if not key.startswith("video")
            else ("psnr_y", "ssim_y", "sharpness", "flicker")
        )
        for m in metrics:
            cells = [
                _cell(m, v)
                for v in (res.get(m), res["baselines"]["bicubic"].get(m), res["baselines"]["lanczos"].get(m))
            ]
            lines.append(f"| {key} (n={res['n']}) | {m} | " + " | ".join(cells) + " |")
    lines += ["", "Commands:", *[f"- `{res['command']}`" for res in r.values()]]
    if not face and info["scale"] == 4:
        lines += [
            "",
            "Published ×4 (Y PSNR) for reference: SRResNet Set5 32.05 / Set14 28.49 dB; "
            "SRGAN 29.40 / 26.02 dB (full-size networks trained for days on GPUs).",
        ]
    lines += ["", "## Limitations", info["limitations"], ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="+")
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--log", type=Path, default=None)
    ap.add_argument("--limit-faces", type=int, default=None, help="evaluate on the first N faces/val images")
    ap.add_argument("--clip-frames", type=int, default=60)
    ap.add_argument(
        "--cards-only", action="store_true", help="reuse the results in cards/NAME.json; rewrite the cards"
    )
    ap.add_argument(
        "--limitations",
        default="Trained on 2 CPU cores within one session: a short schedule and a "
        "small network. Retrain on a GPU with the full SRResNet (16x64) for production quality.",
    )
    args = ap.parse_args()
    entries = {}
    for name in args.names:
        run = args.runs / name
        scale = int(re.search(r"x(\d)", name)[1])
        face = name.startswith("face")
        weights = ROOT / "models" / "weights" / f"{name}.safetensors"
        out = sh([sys.executable, "-m", "vsr", "train", "export", str(run / "last.ckpt"), str(weights)])
        sha = re.search(r"[0-9a-f]{64}", out)[0]
        from vsr.models.registry import load_model_from

        params = load_model_from(str(weights), scale).params
        info = {
            "name": name,
            "scale": scale,
            "face": face,
            "file": weights.name,
            "sha256": sha,
            "params": params,
            "size_kb": weights.stat().st_size // 1024,
            "training": training_facts(run, args.log),
            "results": (
                json.loads((ROOT / "models" / "cards" / f"{name}.json").read_text())["results"]
                if args.cards_only
                else evaluate(name, weights, scale, face, args.limit_faces, args.clip_frames)
            ),
            "limitations": args.limitations,
        }
        cards = ROOT / "models" / "cards"
        (cards / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
        (cards / f"{name}.md").write_text(card_markdown(name, info))
        entries[name] = info
        print(f"{name}: {sha} ({params:,} params)", file=sys.stderr)
    for name, info in entries.items():
        print(f'"{name}": ({info["scale"]}, {info["face"]}, "{info["sha256"]}"),')


if __name__ == "__main__":
    main()
