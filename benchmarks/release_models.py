"""Turn finished training runs into shipped models: export, measure with ``vsr eval``, write cards.

    python benchmarks/release_models.py --runs RUNS_DIR --log RUNS_DIR/train_all.log NAME [NAME ...]
    python benchmarks/release_models.py --table     # the README's summary table, from the cards

For each NAME (a folder RUNS_DIR/NAME with last.ckpt, config.toml, metrics.csv):
1. ``vsr train export`` -> ``models/weights/NAME.safetensors`` (fp16 EMA generator) and its sha256;
2. the evaluations the model card reports, run as the exact ``vsr eval`` commands it quotes
   (faces: faces/val clean and real-world; general: Set5, Set14 and faces/val; both: two shared clips);
3. ``models/cards/NAME.json`` (all numbers, the commands, the training facts) and ``NAME.md``, whose
   "Release targets" section checks the measured numbers against the release issue's targets.
It prints the registry rows ``(name, scale, face, sha256)`` to paste into ``models/registry.py``.
Everything is measured on this machine; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from vsr.models.registry import UTKFACE

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("../shared/data")
CLIPS = ("talking_d0.mp4", "stage_hamilton.mp4")
GENERIC_LIMITATIONS = (
    "Trained for minutes on one CPU thread (SRResNet 6x32, 0.2 M parameters). Retrain on a GPU with the full "
    "SRResNet (16 blocks x 64 channels) and a schedule of hours for production quality."
)
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


def training_facts(run: Path, log: Path | None, hardware: str) -> dict:
    from vsr.pipelines.train.config_toml import from_dict

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
        before = training_facts(Path(init).parent, log, hardware)
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
        "frame_every": cfg["data"]["frame_every"],
        "frames_per_video": cfg["data"]["frames_per_video"],
        "video_faces": cfg["data"]["video_faces"],
        "blocks": cfg["model"]["blocks"],
        "channels": cfg["model"]["channels"],
        "batch_norm": cfg["model"]["batch_norm"],
        "degrade": cfg["degrade"],
        "loss": cfg.get("loss", {}),
        "optim": cfg.get("optim", {}),
        "lr": from_dict(cfg).lr,  # the stage's default when the run left it unset
        "last_val": val[-1] if val else None,
        "wall_minutes": minutes,
        "commands": [_portable(c, run.parent) for c in commands],
        "hardware": hardware,
    }


def evaluations(weights: Path, scale: int, face: bool, limit_faces: int | None, clip_frames: int) -> dict:
    """The card's evaluations: result key -> ``vsr eval`` arguments.

    Every model is scored on faces/val (clean), so face mode's rule can compare a face model with the
    general model it would replace on faces; face models add the real-footage protocol, general models
    Set5 and Set14; all add two shared clips.
    """
    w = str(weights.relative_to(ROOT))
    faces = ["faces", str(DATA / "faces/val"), "--scale", str(scale), "--model", w]
    faces += ["--limit", str(limit_faces)] if limit_faces else []
    runs: dict[str, list[str]] = {}
    if face:
        runs["faces_val"] = faces
        runs["faces_val_real"] = [*faces, "--degrade", "real"]
    else:
        for bench in ("Set5", "Set14"):
            runs[bench] = ["images", str(DATA / "sr-bench" / bench), "--scale", str(scale), "--model", w]
        runs["faces_val"] = faces
    for clip in CLIPS:
        runs[f"video:{clip}"] = [
            *("video", str(DATA / "videos" / clip), "--scale", str(scale), "--model", w),
            *("--limit", str(clip_frames)),
        ]
    return runs


def evaluate(runs: dict[str, list[str]], have: dict) -> dict:
    """Run the evaluations not already in ``have`` (an existing card's results); keep the card's order."""
    results = {}
    for key, args in runs.items():
        if key in have:
            results[key] = have[key]
        else:
            cmd, r = run_eval_command(args)
            results[key] = {"command": cmd, **summary(r)}
    return results


def _cell(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if "ssim" in metric else f"{value:.3f}" if metric == "sharpness" else f"{value:.2f}"


def _optim_line(t: dict) -> str:
    o = t["optim"]
    return f"Adam, lr {t['lr']:g} ({o.get('schedule', 'cosine')}), EMA {o.get('ema_decay', 0.999)} (the EMA weights ship)"


def _loss_line(t: dict) -> str:
    lo = t["loss"]
    return (
        f"losses: {lo.get('pixel', 'l1').upper()} x{lo.get('pixel_weight', 1.0):g}, "
        f"{lo.get('adversarial', 'relativistic')} adversarial x{lo.get('adv_weight'):g}, "
        f"discriminator feature matching x{lo.get('feature_match_weight'):g}"
        + (f", VGG19 perceptual x{lo['perceptual_weight']:g}" if lo.get("vgg_weights") else "")
    )


def _gain(res: dict, metric: str, baseline: str) -> float:
    return res[metric] - res["baselines"][baseline][metric]


def _below(drop: float) -> str:
    return f"{drop:.2f} dB below" if drop >= 0 else f"{-drop:.2f} dB above"


def targets(name: str, results: dict) -> list[str]:
    """The release targets that apply to NAME, each with the measured numbers and whether it is met.

    A GAN model is compared with its PSNR model's card (``cards/NAME-psnr.json``), which must exist.
    """
    verdict = {True: "**met**", False: "**not met**"}
    lines = []
    gan = not name.endswith("-psnr")
    if name.startswith("face"):
        faces = results["faces_val"]
        gain = _gain(faces, "psnr_rgb", "bicubic")
        if not gan and name.startswith("face-x4"):
            lines.append(
                f"faces/val RGB PSNR at least 3.5 dB above bicubic: {faces['psnr_rgb']:.2f} dB, "
                f"+{gain:.2f} dB: {verdict[gain >= 3.5]}"
            )
        elif not gan:
            lines.append(f"faces/val RGB PSNR above bicubic: +{gain:.2f} dB: {verdict[gain > 0]}")
        real = results.get("faces_val_real")
        if real:
            lines.append(
                f"real-footage protocol (blur + noise + H.264), reported: {real['psnr_rgb']:.2f} dB RGB "
                f"vs bicubic {real['baselines']['bicubic']['psnr_rgb']:.2f}, Lanczos "
                f"{real['baselines']['lanczos']['psnr_rgb']:.2f}"
            )
        key = "faces_val"
    else:
        s5, s14 = results["Set5"]["psnr_y"], results["Set14"]["psnr_y"]
        if not gan and name.startswith("general-x4"):
            lines.append(
                f"Set5 >= 31.0 and Set14 >= 27.8 dB (Y): {s5:.2f} / {s14:.2f} dB: "
                f"{verdict[s5 >= 31.0 and s14 >= 27.8]}"
            )
        elif not gan:
            ok = all(_gain(results[b], "psnr_y", "bicubic") > 0 for b in ("Set5", "Set14"))
            lines.append(f"Set5 / Set14 (Y) above bicubic: {s5:.2f} / {s14:.2f} dB: {verdict[ok]}")
        key = "Set5"
    if gan:
        psnr_card = json.loads((ROOT / "models" / "cards" / f"{name}-psnr.json").read_text())["results"]
        ref = psnr_card[key]
        drop = ref["psnr_rgb"] - results[key]["psnr_rgb"]
        head = (
            f"within 2.5 dB of {name}-psnr on faces/val (RGB): {_below(drop)}: {verdict[drop <= 2.5]}"
            if name.startswith("face")
            else f"against {name}-psnr on Set5 (RGB): {_below(drop)}"
        )
        lines.append(f"{head}; sharpness {results[key]['sharpness']:.3f} vs {ref['sharpness']:.3f} (HR = 1)")
        flick = [
            (results[k]["flicker"], ref_k["flicker"])
            for k, ref_k in psnr_card.items()
            if k.startswith("video:")
        ]
        if flick:
            lines.append(
                "flicker on the shared clips vs the PSNR model: "
                + ", ".join(f"{a:.2f} vs {b:.2f}" for a, b in flick)
            )
    return lines


def weights_licence(sources: list[str]) -> str:
    """The licence that binds the weights: the registry's own string, so the card and `vsr models` agree."""
    return UTKFACE if any("faces" in s for s in sources) else "the data licences below"


def card_markdown(name: str, info: dict) -> str:
    t, r = info["training"], info["results"]
    face = info["face"]
    lines = [
        f"# {name}",
        "",
        f"{'Face' if face else 'General (whole-frame)'} ×{info['scale']} SRGAN generator "
        f"({'GAN stage' if t['stage'] == 'gan' else 'PSNR stage: SRResNet, pixel loss'}).",
        "",
        f"Licence: **{weights_licence(t['sources'])}**",
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
            [
                f"- the clips scored under `video:` below are among the training videos (every "
                f"{t['frame_every']}th frame, at most {t['frames_per_video']} per clip"
                f"{', detected faces only' if t['video_faces'] else ''}); "
                "`faces/val` and Set5/Set14 are the held-out measures."
            ]
            if any(s.startswith("videos:") for s in t["sources"])
            else []
        ),
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
        f"- {_optim_line(t)}",
        *([f"- {_loss_line(t)}"] if t["stage"] == "gan" else []),
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
    lines += ["", "## Release targets (issue: shipped weights)", *[f"- {line}" for line in targets(name, r)]]
    lines += ["", "## Limitations", info["limitations"], ""]
    return "\n".join(lines)


def summary_table() -> str:
    """One markdown row per shipped model, from the cards: the held-out headline, baselines, sharpness."""
    from vsr.models.registry import REGISTRY

    rows = [
        "| model | stage | held-out result | bicubic | Lanczos | sharpness (model / bicubic) |",
        "|---|---|---|---|---|---|",
    ]
    for name, spec in REGISTRY.items():
        if spec.weights is None:
            continue
        r = json.loads((ROOT / "models" / "cards" / f"{name}.json").read_text())["results"]
        stage = "psnr" if name.endswith("-psnr") else "gan"
        if spec.face:
            f = r["faces_val"]
            b = f["baselines"]
            cells = [
                f"faces/val RGB {f['psnr_rgb']:.2f} dB",
                f"{b['bicubic']['psnr_rgb']:.2f}",
                f"{b['lanczos']['psnr_rgb']:.2f}",
                f"{f['sharpness']:.3f} / {b['bicubic']['sharpness']:.3f}",
            ]
        else:
            s5, s14 = r["Set5"], r["Set14"]
            cells = [
                f"Set5 / Set14 Y {s5['psnr_y']:.2f} / {s14['psnr_y']:.2f} dB",
                *[
                    f"{s5['baselines'][m]['psnr_y']:.2f} / {s14['baselines'][m]['psnr_y']:.2f}"
                    for m in ("bicubic", "lanczos")
                ],
                f"{s5['sharpness']:.3f} / {s5['baselines']['bicubic']['sharpness']:.3f} (Set5)",
            ]
        rows.append(f"| `{name}` | {stage} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--runs", type=Path)
    ap.add_argument("--table", action="store_true", help="print the README's summary table from the cards")
    ap.add_argument("--log", type=Path, default=None)
    ap.add_argument("--limit-faces", type=int, default=None, help="evaluate on the first N faces/val images")
    ap.add_argument("--clip-frames", type=int, default=60)
    ap.add_argument(
        "--cards-only", action="store_true", help="reuse the results in cards/NAME.json; rewrite the cards"
    )
    ap.add_argument(
        "--missing-only",
        action="store_true",
        help="reuse the results in cards/NAME.json and run only the evaluations the card lacks",
    )
    ap.add_argument(
        "--limitations",
        default=None,
        help="the card's Limitations text (default: the existing card's, else a generic CPU-training note)",
    )
    ap.add_argument(
        "--hardware",
        default=f"{platform.machine()} CPU, {os.cpu_count()} cores (no GPU)",
        help="how the runs were trained, for the cards (threads per run, runs sharing the machine, GPU)",
    )
    args = ap.parse_args()
    if args.table:
        print(summary_table())
        return
    if not args.names or args.runs is None:
        ap.error("give NAME... and --runs (or --table)")
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
        card = ROOT / "models" / "cards" / f"{name}.json"
        old_card = json.loads(card.read_text()) if card.is_file() else {}
        previous = old_card.get("results", {})
        info = {
            "name": name,
            "scale": scale,
            "face": face,
            "file": weights.name,
            "sha256": sha,
            "params": params,
            "size_kb": weights.stat().st_size // 1024,
            "training": training_facts(run, args.log, args.hardware),
            "results": previous
            if args.cards_only
            else evaluate(
                evaluations(weights, scale, face, args.limit_faces, args.clip_frames),
                previous if args.missing_only else {},
            ),
            "limitations": args.limitations or old_card.get("limitations") or GENERIC_LIMITATIONS,
        }
        cards = ROOT / "models" / "cards"
        (cards / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
        (cards / f"{name}.md").write_text(card_markdown(name, info))
        entries[name] = info
        print(f"{name}: {sha} ({params:,} params)", file=sys.stderr)
    for name, info in entries.items():
        print(f'("{name}", {info["scale"]}, {info["face"]}, "{info["sha256"]}"),')


if __name__ == "__main__":
    main()
