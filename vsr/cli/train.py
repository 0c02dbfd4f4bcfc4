"""``vsr train``: train an SRGAN generator; ``vsr train export``: release its EMA weights.

Thin: flags (and ``--config FILE.toml``) become a ``TrainConfig``, which
``vsr.pipelines.train.loop.train`` runs.  Flags override the file; with
``--resume`` both override the config saved in ``OUT/last.ckpt``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

# flag parameter name -> dotted TrainConfig key
FLAG_KEYS = {
    "data": "data.sources",
    "val": "data.val",
    "task": "task",
    "scale": "scale",
    "stage": "stage",
    "init": "init",
    "steps": "steps",
    "batch_size": "batch_size",
    "hr_size": "data.hr_size",
    "blocks": "model.blocks",
    "channels": "model.channels",
    "device": "device",
    "precision": "precision",
    "out": "out",
    "resume": "resume",
    "seed": "seed",
    "lr": "optim.lr",
    "log_every": "log_every",
    "val_every": "val_every",
    "save_every": "save_every",
    "workers": "data.workers",
    "time_limit": "time_limit",
    "compile": "compile",
}


def parse_sets(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs as dotted config keys; VALUE is read as TOML (``16``, ``true``, ``[1, 2]``), else text."""
    import tomllib

    from vsr.errors import ConfigError

    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set data.pool_size=256")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        out[key.strip()] = value
    return out


def flag_overrides(params: dict[str, Any]) -> dict[str, Any]:
    """The flags actually given, as dotted config keys (unset options and empty lists are left out)."""
    out = {}
    for name, key in FLAG_KEYS.items():
        value = params.get(name)
        if value is None or value == () or value is False:
            continue
        out[key] = (
            list(value) if isinstance(value, tuple) else str(value) if isinstance(value, Path) else value
        )
    return out


@click.group("train", invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML config file (see --print-config); flags override it.",
)
@click.option("--print-config", is_flag=True, help="Print the resolved config as documented TOML and exit.")
@click.option(
    "--data",
    multiple=True,
    metavar="KIND:PATH",
    help="Training data, repeatable; KIND: chokepoint | images | videos.",
)
@click.option(
    "--val",
    multiple=True,
    metavar="KIND:PATH",
    help="Validation data (default: hold out sequences of --data).",
)
@click.option(
    "--task",
    type=click.Choice(["sr", "restore"]),
    help="sr: super-resolution (SRResNet); restore: face inpainting (InpaintNet, `vsr restore`).",
)
@click.option("--scale", type=int, help="Upscaling factor: 2 or 4.")
@click.option(
    "--stage", type=click.Choice(["psnr", "gan"]), help="psnr: pixel loss (SRResNet); gan: adversarial."
)
@click.option(
    "--init",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Start from this checkpoint (gan: the psnr run).",
)
@click.option("--steps", type=int, help="Total optimiser steps of the run.")
@click.option("--batch-size", type=int, help="Samples per step.")
@click.option("--hr-size", type=int, help="HR crop side in pixels (a multiple of the scale).")
@click.option("--blocks", type=int, help="Generator residual blocks.")
@click.option("--channels", type=int, help="Generator feature channels.")
@click.option("--device", help="auto | cpu | cuda | cuda:N.")
@click.option(
    "--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), help="Autocast precision on CUDA."
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.ckpt.")
@click.option("--seed", type=int, help="Seed of data order, crops and degradations.")
@click.option("--lr", type=float, help="Generator learning rate (default 2e-4 psnr, 1e-4 gan).")
@click.option("--log-every", type=int, help="Write a metrics.csv row every N steps.")
@click.option("--val-every", type=int, help="Validate and write a sample grid every N steps.")
@click.option("--save-every", type=int, help="Write last.ckpt and step_NNNNNNN.ckpt every N steps.")
@click.option("--workers", type=int, help="DataLoader worker processes.")
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Wall-clock budget: measure steps/s, then plan the steps (at most --steps) to end inside it.",
)
@click.option(
    "--compile",
    type=click.Choice(
        ["auto", "off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
    ),
    help="torch.compile mode of the generator (auto: on CUDA only).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any config key (see --print-config), e.g. --set data.pool_size=256; overrides the flags.",
)
@click.pass_context
def train(
    ctx: click.Context, config_file: Path | None, print_config: bool, sets: tuple[str, ...], **params: Any
) -> None:
    """Train an SRGAN generator on faces or frames: psnr stage first, then gan from it.

    \b
    Examples:
      vsr train --data chokepoint:ChokePoint --scale 4 --stage psnr --out runs/psnr
      vsr train --data chokepoint:ChokePoint --stage gan --init runs/psnr/last.ckpt --out runs/gan
      vsr train --out runs/psnr --resume
      vsr train --task restore --stage gan --data images:faces/train --hr-size 64 --out runs/restore
      vsr train export runs/gan/last.ckpt faces_x4.safetensors
      vsr train prep --data images:urban --out patches/general --budget-mb 12
      vsr train --data patches:patches/general --time-limit 300 --out runs/gpu
    """
    if ctx.invoked_subcommand is not None:
        return
    started = time.monotonic()  # --time-limit counts from here: torch's import and the data loading included
    from vsr.pipelines.train.config_toml import resolve, to_toml

    flags = {**flag_overrides(params), **parse_sets(sets)}
    saved = None
    if params.get("resume"):
        from vsr.pipelines.train.checkpoint import saved_config

        saved = saved_config(Path(resolve(config_file, flags, validate=False).out))
    if print_config:
        click.echo(to_toml(resolve(config_file, flags, saved, validate=False)), nl=False)
        return
    cfg = resolve(config_file, flags, saved)
    from vsr.pipelines.train.loop import train as run_training

    result = run_training(cfg, started=started)
    summary = f"step {result.step}: {result.checkpoint}"
    if result.budget and result.budget["steps_per_s"]:
        summary += f" ({result.budget['steps_per_s']:.2f} steps/s measured)"
    if result.metrics:
        masked = result.metrics.get("val_psnr_masked")
        where = f" (in the mask {masked:.2f} dB)" if masked is not None else ""
        summary += (
            f" (val PSNR {result.metrics['val_psnr']:.2f} dB{where}, SSIM {result.metrics['val_ssim']:.4f})"
        )
    click.echo(summary)


@train.command("export")
@click.argument("ckpt", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--fp32", is_flag=True, help="Keep float32 weights (default: float16).")
def export(ckpt: Path, out: Path, fp32: bool) -> None:
    """Write the EMA generator of CKPT as release weights OUT.safetensors (+ OUT.safetensors.sha256).

    Prints the sha256 on stdout; `vsr enhance --model OUT.safetensors` then uses it.
    """
    from vsr.pipelines.train.checkpoint import export_weights

    digest = export_weights(ckpt, out, half=not fp32)
    click.echo(f"wrote {out} and {out.name}.sha256", err=True)
    click.echo(digest)


@train.command("prep")
@click.option(
    "--data",
    "sources",
    multiple=True,
    required=True,
    metavar="KIND:PATH",
    help="Source, repeatable (images | videos | chokepoint); each gets an even share of what is left.",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Patch folder to write."
)
@click.option(
    "--size",
    type=int,
    default=192,
    show_default=True,
    help="Tile side in pixels (at least the training --hr-size).",
)
@click.option("--budget-mb", type=float, default=16.0, show_default=True, help="MiB of JPEG in all.")
@click.option(
    "--quality", type=int, default=95, show_default=True, help="JPEG quality of re-encoded tiles (4:4:4)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the tile order.")
@click.option("--frame-every", type=int, default=15, show_default=True, help="Videos: every Nth frame.")
@click.option(
    "--frames-per-video", type=int, default=40, show_default=True, help="Videos: at most N frames each."
)
@click.option("--video-faces", is_flag=True, help="Videos: cut detected faces instead of frame tiles.")
@click.option("--detector", default="auto", show_default=True, help="Face detector for --video-faces.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def prep(sources: tuple[str, ...], out: Path, as_json: bool, **opts: Any) -> None:
    """Pre-cut HR patches from training sources into a small JPEG folder (train it with --data patches:OUT).

    What a GPU machine carries instead of whole data sets: tiles in a seeded order, each source an
    even share of what is left of --budget-mb, flat tiles dropped, JPEG face chips of exactly --size copied as they are.
    """
    import json

    from vsr.pipelines.train.patches import PrepConfig, prep_patches

    report = prep_patches(PrepConfig(sources=list(sources), out=out, **opts))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "out": str(report.out),
                    "count": report.count,
                    "bytes": report.bytes,
                    "size": report.size,
                    "seconds": round(report.seconds, 2),
                    "sources": report.sources,
                    "skipped": report.skipped,
                }
            )
        )
        return
    for spec, info in report.sources.items():
        click.echo(
            f"{spec}: {info['patches']} of {info['candidates']} tiles, {info['bytes'] / 2**20:.2f} MiB",
            err=True,
        )
    click.echo(
        f"wrote {report.count} patches of {report.size} px to {out} ({report.bytes / 2**20:.2f} MiB, {report.seconds:.1f} s)"
    )
