"""Release the restore-face model from its training run: export, ``vsr eval restore``, card, sample grid.

    OMP_NUM_THREADS=1 python benchmarks/restore_release.py --run runs/restore-face [--limit N]

1. ``vsr train export RUN/last.ckpt models/weights/restore-face.safetensors`` (fp16 EMA generator);
2. ``vsr eval restore ../shared/data/faces/val --occlusion K --json`` for K in eyes, half, mouth,
   random (the exact commands are quoted in the card), with grids for eyes and half;
3. ``models/cards/restore-face.json`` (every number, the commands, the training facts and the
   collapse guards read from RUN/metrics.csv) and ``restore-face.md``, whose targets section checks
   the measured gains over the better OpenCV method; ``benchmarks/results/restore_face_grid.jpg``.
It prints the sha256 to paste into ``models/registry.py``.  Everything is measured here.

A run that continued earlier weights (``vsr train --init``) names their card with ``--init-card``
(a copy of the card JSON as it was before this release, e.g.
``git show HEAD:models/cards/restore-face.json > /tmp/init-card.json``): the new card keeps that
stage's facts and commands beside this run's, and counts the steps of both.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from release_models import sh  # noqa: E402

NAME = "restore-face"
VAL = "../shared/data/faces/val"
KINDS = ("eyes", "half", "mouth", "random")
TARGETS = {"eyes": 3.0, "half": 2.0}  # dB inside the mask above the better OpenCV method (issue 12)


def evaluate(weights: Path, kind: str, limit: int | None, grid: Path | None) -> tuple[str, dict]:
    args = ["restore", VAL, "--occlusion", kind, "--device", "cpu"]
    if limit:
        args += ["--limit", str(limit)]
    extra = ["--model", str(weights)] + (["--grid", str(grid)] if grid is not None else [])
    out = sh([sys.executable, "-m", "vsr", "eval", *args, *extra, "--json"])
    return shlex.join(["vsr", "eval", *args, "--json"]), json.loads(out)


def collapse_guards(rows: list[dict]) -> dict:
    """What metrics.csv says about mode collapse: discriminator accuracy and output diversity over the run."""
    train = [r for r in rows if r.get("d_acc_real")]
    val = [r for r in rows if r.get("val_div")]

    def pick(rs: list[dict], key: str) -> list[list[float]]:
        idx = sorted({0, len(rs) // 4, len(rs) // 2, 3 * len(rs) // 4, len(rs) - 1}) if rs else []
        return [[int(rs[i]["step"]), round(float(rs[i][key]), 4)] for i in idx]

    return {
        "d_acc_real": pick(train, "d_acc_real"),
        "d_acc_fake": pick(train, "d_acc_fake"),
        "div_ratio": pick(train, "div_ratio"),
        "val_div": [[int(r["step"]), round(float(r["val_div"]), 4)] for r in val],
        "val_psnr_masked": [[int(r["step"]), round(float(r["val_psnr_masked"]), 3)] for r in val],
    }


def training_facts(run: Path, wall_minutes: float | None) -> dict:
    cfg = tomllib.loads((run / "config.toml").read_text())
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    rates = [float(r["it_s"]) for r in rows if r.get("it_s")]
    steps = max(int(r["step"]) for r in rows)
    if wall_minutes is None:  # one uninterrupted run: config.toml is written at its start
        wall_minutes = ((run / "last.ckpt").stat().st_mtime - (run / "config.toml").stat().st_mtime) / 60
    return {
        "task": cfg["task"],
        "stage": cfg["stage"],
        "steps": steps,
        "batch_size": cfg["batch_size"],
        "hr_size": cfg["data"]["hr_size"],
        "sources": cfg["data"]["sources"],
        "val": cfg["data"]["val"],
        "model": cfg["model"],
        "restore": cfg["restore"],
        "loss": cfg["loss"],
        "optim": cfg["optim"],
        "steps_per_s_median": round(float(np.median(rates)), 3) if rates else None,
        "wall_minutes": round(wall_minutes, 1),
        "collapse_guards": collapse_guards(rows),
        "time_limit": time_limit_plans(run),
    }


def time_limit_plans(run: Path) -> dict | None:
    """What --time-limit planned (from the checkpoint), or None for a run of fixed steps."""
    from vsr.pipelines.train.checkpoint import load_checkpoint

    budget = load_checkpoint(run / "last.ckpt").get("budget")
    if not budget:
        return None
    return {"limit_s": budget["limit_s"], "plans": [[p["at_step"], p["steps"]] for p in budget["plans"]]}


def grid_jpeg(pngs: list[Path], out: Path) -> int:
    """Stack the eval grids into one JPEG under 300 KB; returns its size in bytes."""
    images = [cv2.imread(str(p)) for p in pngs]
    width = max(i.shape[1] for i in images)
    stacked = np.concatenate(
        [cv2.copyMakeBorder(i, 0, 6, 0, width - i.shape[1], cv2.BORDER_CONSTANT) for i in images]
    )
    for quality in (90, 80, 70, 60):
        ok, buf = cv2.imencode(".jpg", stacked, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(buf) < 300_000:
            break
    out.write_bytes(buf.tobytes())
    return len(buf)


PIXEL_LOSS = {"l1": "L1", "mse": "L2/MSE"}


def stage_line(t: dict) -> str:
    """One sentence on how a run trained: steps, size, losses, schedule."""
    o, lo = t["optim"], t["loss"]
    return (
        f"{t['steps']} steps of batch {t['batch_size']} at {t['hr_size']}x{t['hr_size']},"
        f" {PIXEL_LOSS.get(lo['pixel'], lo['pixel'])} ({t['restore']['hole_weight']}x inside the mask)"
        f" + relativistic adversarial loss ({lo['adv_weight']}) from a spectral-norm PatchDiscriminator on"
        f" image + mask, feature matching ({lo['feature_match_weight']}), occlusion kinds"
        f" {t['restore']['kinds']} drawn at odds {t['restore']['kind_weights']}, lr {o['lr']} cosine"
        f" (warmup {o['warmup_steps']}, down to {o['min_lr_ratio']}x), EMA {o.get('ema_decay', 0.999)}"
        + (
            f"; --time-limit {t['time_limit']['limit_s']:g} s set the cosine's length (planned steps, at step:"
            f" {t['time_limit']['plans']}; each re-plan is a small kink in the lr)"
            if t.get("time_limit")
            else ""
        )
    )


def training_lines(info: dict) -> list[str]:
    t = info["training"]
    run = (
        f"{stage_line(t)}.\n- Wall time {t['wall_minutes']} min, median {t['steps_per_s_median']} steps/s"
        f" on {info['hardware']}."
    )
    init = t.get("init")
    if init is None:
        return [f"- `vsr train --task restore`, {run}"]
    first = init["training"]
    return [
        f"- Stage 1 (the earlier release, sha256 {init['sha256'][:12]}...): `vsr train --task restore`,"
        f" {stage_line(first)}"
        + (
            f" (not one clean cosine: {first['stretched_schedule']})"
            if first.get("stretched_schedule")
            else ""
        )
        + f".  Wall time {first['wall_minutes']} min, median"
        f" {first['steps_per_s_median']} steps/s on {init['hardware']}.",
        f"- Stage 2 (this file): `--init` from stage 1's weights (a fresh discriminator), {run}",
        f"- In all {t['total_steps']} steps ({t['total_steps'] * t['batch_size']:,} samples).",
    ]


def targets(results: dict) -> list[str]:
    lines = []
    for kind, need in TARGETS.items():
        r = results[kind]
        best = max(r["baselines"].values(), key=lambda b: b["psnr_masked"])
        name = max(r["baselines"], key=lambda b: r["baselines"][b]["psnr_masked"])
        gain = r["psnr_masked"] - best["psnr_masked"]
        verdict = "met" if gain >= need else "NOT met"
        lines.append(
            f"- {kind}: {r['psnr_masked']:.2f} dB inside the mask vs {best['psnr_masked']:.2f} dB ({name}):"
            f" {gain:+.2f} dB, target +{need:.0f} dB: **{verdict}**"
        )
    return lines


def card_markdown(info: dict) -> str:
    from vsr.models.registry import REGISTRY

    t, r = info["training"], info["results"]
    rows = []
    for kind in KINDS:
        x = r[kind]
        for label, s in (
            ("restore-face", x),
            ("OpenCV Telea", x["baselines"]["telea"]),
            ("OpenCV NS", x["baselines"]["ns"]),
        ):
            rows.append(
                f"| {kind} | {label} | {s['psnr_masked']:.2f} | {s['ssim_masked']:.4f} | {s['psnr']:.2f} | {s['ssim']:.4f} |"
            )
    g = t["collapse_guards"]
    return "\n".join(
        [
            f"# {NAME}",
            "",
            "Face occlusion restoration (inpainting): `vsr restore IMAGE OUT --mask MASK.png`.  A gated-convolution",
            f"U-Net (`vsr.models.inpaint.InpaintNet`, {info['params']:,} parameters, fp16 file of {info['size_kb']} KB)",
            f"working on aligned faces at {t['hr_size']}x{t['hr_size']}; `vsr restore` aligns any face to that and back.",
            "",
            f"- File: `models/weights/{info['file']}`, sha256 `{info['sha256']}`",
            "- Data: `../shared/data/faces/train` (UTKFace aligned and cropped chips, 8306 images) with synthetic",
            "  occlusions from `vsr.pipelines.restore.occlusion`; validated and evaluated on `faces/val` (500 chips).",
            f"Licence: **{REGISTRY['restore-face'].weights.licence}** (UTKFace's terms bind the weights trained on it).",
            "",
            "## Results on faces/val (64x64, RGB, seed 0)",
            "",
            "PSNR/SSIM inside the mask and over the whole image; OpenCV `cv2.inpaint` with radius"
            f" {r['eyes']['radius']}.",
            "",
            "| occlusion | method | PSNR mask dB | SSIM mask | PSNR dB | SSIM |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "## Targets (issue 12)",
            "",
            *targets(r),
            "",
            "Sample grid (occluded | Telea | NS | ours | original; eye bands, then half faces):"
            " `benchmarks/results/restore_face_grid.jpg`.",
            "",
            "## Training",
            "",
            *training_lines(info),
            *([f"- {info['training_note']}"] if info.get("training_note") else []),
            "- Why 64x64: " + info["why_64"],
            "- Commands:",
            "",
            "```",
            *info["commands"],
            "```",
            "",
            "## Collapse guards (metrics.csv)",
            "",
            *(
                [
                    "- Read from stage 2's metrics.csv (steps counted from its start; its discriminator started fresh)."
                ]
                if t.get("init")
                else []
            ),
            f"- Discriminator accuracy on real / fake (step, value): {g['d_acc_real']} / {g['d_acc_fake']}.",
            f"- Diversity of the restored regions across a batch over that of the true regions (1 = as varied as"
            f" real faces, 0 = one output for everyone): training {g['div_ratio']}; validation, one eye band for all"
            f" 64 val faces: {g['val_div']}.",
            f"- Validation PSNR inside the mask: {g['val_psnr_masked']}.",
            f"- {info['collapse_note']}",
            "",
            "## Limitations",
            "",
            info["limitations"],
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / NAME)
    parser.add_argument("--limit", type=int, default=None, help="evaluate on the first N val images only")
    parser.add_argument(
        "--limit-other",
        type=int,
        default=None,
        help="first N val images for mouth and random (eyes, half: --limit)",
    )
    parser.add_argument("--hardware", default="2 shared CPU cores (about 8 agents), one torch thread")
    parser.add_argument("--wall-minutes", type=float, default=None, help="training wall time (resumed runs)")
    parser.add_argument("--collapse-note", default="")
    parser.add_argument("--limitations", default="")
    parser.add_argument("--why-64", default="")
    parser.add_argument("--training-note", default="", help="a measured note for the training section")
    parser.add_argument(
        "--init-card",
        type=Path,
        default=None,
        help="the card JSON of the weights the run started from (--init), as it was before this release",
    )
    parser.add_argument(
        "--train-command",
        default=None,
        help="the vsr train command of the run (default: the first-stage one)",
    )
    args = parser.parse_args()
    init_card = (
        json.loads(args.init_card.read_text()) if args.init_card else None
    )  # before anything is written
    os.chdir(ROOT)
    weights = ROOT / "models" / "weights" / f"{NAME}.safetensors"
    digest = sh(
        [sys.executable, "-m", "vsr", "train", "export", str(args.run / "last.ckpt"), str(weights)]
    ).strip()
    (weights.with_name(weights.name + ".sha256")).unlink(missing_ok=True)  # the registry holds the sha256
    results, commands, grids = {}, [], []
    for kind in KINDS:
        grid = ROOT / "benchmarks" / "results" / f".restore_grid_{kind}.png" if kind in TARGETS else None
        limit = args.limit if kind in TARGETS else (args.limit_other or args.limit)
        cmd, res = evaluate(weights, kind, limit, grid)
        results[kind] = {"command": cmd, **res}
        if grid is not None:
            grids.append(grid)
        print(kind, res["psnr_masked"], res["baselines"], flush=True)
    jpeg = ROOT / "benchmarks" / "results" / "restore_face_grid.jpg"
    size = grid_jpeg(grids, jpeg)
    for g in grids:
        g.unlink()
    from vsr.models.registry import REGISTRY, build_model

    facts = training_facts(args.run, args.wall_minutes)
    train_commands = [
        args.train_command
        or "vsr train --config models/recipes/restore_face.toml --data images:../shared/data/faces/train"
        f" --val images:../shared/data/faces/val --steps {facts['steps']} --device cpu --out runs/restore-face",
        f"vsr train export {args.run.relative_to(ROOT) if args.run.is_relative_to(ROOT) else args.run}/last.ckpt"
        f" models/weights/{NAME}.safetensors",
    ]
    if init_card is not None:
        first = init_card["training"]
        facts["init"] = {
            "sha256": init_card["sha256"],
            "hardware": init_card["hardware"],
            "commands": [c for c in init_card["commands"] if c.startswith("vsr train")],
            "training": {k: v for k, v in first.items() if k != "collapse_guards"},
        }
        facts["total_steps"] = first.get("total_steps", first["steps"]) + facts["steps"]
        train_commands = facts["init"]["commands"] + train_commands
    commands = [*train_commands, *[results[k]["command"] for k in KINDS]]
    module = build_model(REGISTRY[NAME].arch, 1)
    info = {
        "name": NAME,
        "task": "restore",
        "file": weights.name,
        "sha256": digest,
        "params": sum(p.numel() for p in module.parameters()),
        "size_kb": round(weights.stat().st_size / 1024),
        "hardware": args.hardware,
        "why_64": args.why_64,
        "commands": commands,
        "training": facts,
        "results": results,
        "grid": {"file": str(jpeg.relative_to(ROOT)), "bytes": size},
        "training_note": args.training_note,
        "collapse_note": args.collapse_note,
        "limitations": args.limitations,
    }
    cards = ROOT / "models" / "cards"
    (cards / f"{NAME}.json").write_text(json.dumps(info, indent=2) + "\n")
    (cards / f"{NAME}.md").write_text(card_markdown(info))
    print(f"sha256 {digest}")


if __name__ == "__main__":
    main()
