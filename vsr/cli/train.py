"""``vsr train``: train an SRGAN generator; ``vsr train export``: release its EMA weights.

Thin: flags (and ``--config FILE.toml``) become a ``TrainConfig``, which
``vsr.pipelines.train.loop.train`` runs.  Flags override the file; with
``--resume`` both override the config saved in ``OUT/last.ckpt``.
"""

from __future__ import annotations

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
}


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
@click.pass_context
def train(ctx: click.Context, config_file: Path | None, print_config: bool, **params: Any) -> None:
    """Train an SRGAN generator on faces or frames: psnr stage first, then gan from it.

    \b
    Examples:
      vsr train --data chokepoint:ChokePoint --scale 4 --stage psnr --out runs/psnr
      vsr train --data chokepoint:ChokePoint --stage gan --init runs/psnr/last.ckpt --out runs/gan
      vsr train --out runs/psnr --resume
      vsr train --task restore --stage gan --data images:faces/train --hr-size 64 --out runs/restore
      vsr train export runs/gan/last.ckpt faces_x4.safetensors
    """
    if ctx.invoked_subcommand is not None:
        return
    from vsr.pipelines.train.config_toml import resolve, to_toml

    flags = flag_overrides(params)
    saved = None
    if params.get("resume"):
        from vsr.pipelines.train.checkpoint import saved_config

        saved = saved_config(Path(resolve(config_file, flags, validate=False).out))
    if print_config:
        click.echo(to_toml(resolve(config_file, flags, saved, validate=False)), nl=False)
        return
    cfg = resolve(config_file, flags, saved)
    from vsr.pipelines.train.loop import train as run_training

    result = run_training(cfg)
    summary = f"step {result.step}: {result.checkpoint}"
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
