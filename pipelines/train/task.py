"""Training tasks: what a kind of run plugs into the one training loop (``loop.train``).

A task supplies the networks, the batch maker (a hook into the data sets, or None for the
super-resolution default: crop, flip, degrade), the generator's inputs, the pixel loss, what the
discriminator compares, extra per-step metrics (collapse guards), validation and sample grids.
Everything else (data order, optimisers, EMA, schedule, checkpoints, resume, progress,
metrics.csv, export) is the loop's and the same for every task.

- ``sr`` (``SRTask``): SRResNet from a degraded LR crop; the discriminator sees SR vs HR.
- ``restore`` (``vsr.pipelines.restore.task.RestoreTask``): face inpainting from an occluded
  image and its mask.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vsr.pipelines.train import losses as L
from vsr.pipelines.train.config import TrainConfig

Batch = dict[str, torch.Tensor]


class SRTask:
    """Super-resolution: ``lr`` -> SRResNet -> compared with ``hr``."""

    name = "sr"
    gan_needs_init = True  # a gan run from scratch gets a warning

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg

    def sample_maker(self) -> Callable[..., dict[str, Any]] | None:
        return None  # the data sets' default: crop, flip, degrade

    def generator(self) -> torch.nn.Module:
        from vsr.models.srresnet import SRResNet

        m = self.cfg.model
        return SRResNet(self.cfg.scale, m.blocks, m.channels, m.batch_norm)

    def discriminator(self) -> torch.nn.Module:
        from vsr.models.discriminator import Discriminator

        m = self.cfg.model
        return Discriminator(m.disc_channels, m.disc_stages, batch_norm=m.disc_batch_norm)

    def forward(self, gen: torch.nn.Module, batch: Batch) -> torch.Tensor:
        return gen(batch["lr"])

    def pixel_loss(self, out: torch.Tensor, batch: Batch) -> torch.Tensor:
        return L.pixel_loss(out, batch["hr"], self.cfg.loss.pixel)

    def disc_inputs(self, out: torch.Tensor, batch: Batch) -> tuple[tuple, tuple]:
        """(real, fake) argument tuples for the discriminator."""
        return (batch["hr"],), (out,)

    def guards(self, out: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        return {}

    def validate(self, ema: torch.nn.Module, val: Batch, batch_size: int) -> dict[str, float]:
        from vsr.pipelines.train.validate import evaluate

        return evaluate(ema, val["lr"], val["hr"], self.cfg.scale, batch_size)

    def val_line(self, val: dict[str, float]) -> str:
        return (
            f"val PSNR {val['val_psnr']:.2f} dB (bicubic {val['val_psnr_bicubic']:.2f}),"
            f" SSIM {val['val_ssim']:.4f} (bicubic {val['val_ssim_bicubic']:.4f})"
        )

    def sample_grid(self, path: Path, ema: torch.nn.Module, batch: Batch, k: int) -> None:
        from vsr.pipelines.train.validate import write_sample_grid

        write_sample_grid(path, ema, batch["lr"][:k], batch["hr"][:k], self.cfg.scale)


def make_task(cfg: TrainConfig):
    """The task object of ``cfg.task``."""
    if cfg.task == "restore":
        from vsr.pipelines.restore.task import RestoreTask

        return RestoreTask(cfg)
    return SRTask(cfg)
