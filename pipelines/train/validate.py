"""Validation during training: PSNR/SSIM on the Y channel against bicubic, and sample grids.

The metrics are ``vsr eval``'s (``vsr.pipelines.metrics``: BT.601 Y as MATLAB's
rgb2ycbcr, ``scale`` pixels shaved from each border, SSIM of Wang et al.), on
8-bit images, so a run's validation numbers read like the evaluation's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vsr.media.image import write_image
from vsr.models.resample import resize
from vsr.pipelines import metrics


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> (N, H, W, 3) uint8, as the images would be saved."""
    return (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def psnr_ssim_y(sr: torch.Tensor, hr: torch.Tensor, shave: int) -> tuple[list[float], list[float]]:
    """Per-image PSNR (dB) and SSIM on the Y channel, ``shave`` pixels off each border (``vsr eval``'s metrics)."""
    psnrs, ssims = [], []
    for a, b in zip(_to_uint8(sr), _to_uint8(hr), strict=True):
        ya, yb = metrics.shave(metrics.rgb_to_y(a), shave), metrics.shave(metrics.rgb_to_y(b), shave)
        psnrs.append(min(metrics.psnr(ya, yb), 100.0))  # identical images: inf, capped for averaging
        ssims.append(metrics.ssim(ya, yb))
    return psnrs, ssims


def bicubic_up(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The baseline: MATLAB-style bicubic upscaling."""
    return resize(lr, (lr.shape[-2] * scale, lr.shape[-1] * scale), kernel="cubic", antialias=False)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, lr: torch.Tensor, hr: torch.Tensor, scale: int, batch_size: int
) -> dict[str, float]:
    """Mean val_psnr/val_ssim of ``model`` and of bicubic on cached validation tensors (model in eval mode)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums = {"val_psnr": 0.0, "val_ssim": 0.0, "val_psnr_bicubic": 0.0, "val_ssim_bicubic": 0.0}
    for i in range(0, len(lr), batch_size):
        x, y = lr[i : i + batch_size], hr[i : i + batch_size]
        sr = model(x.to(device)).float().cpu()
        for suffix, out in (("", sr), ("_bicubic", bicubic_up(x, scale))):
            p, s = psnr_ssim_y(out, y, scale)
            sums[f"val_psnr{suffix}"] += sum(p)
            sums[f"val_ssim{suffix}"] += sum(s)
    model.train(was_training)
    return {k: v / len(lr) for k, v in sums.items()}


@torch.no_grad()
def write_sample_grid(
    path: Path, model: torch.nn.Module, lr: torch.Tensor, hr: torch.Tensor, scale: int
) -> None:
    """A PNG with one row per sample: LR (nearest) | bicubic | SR | HR."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sr = model(lr.to(device)).float().cpu().clamp(0, 1)
    model.train(was_training)
    columns = [
        F.interpolate(lr, scale_factor=scale, mode="nearest"),
        bicubic_up(lr, scale).clamp(0, 1),
        sr,
        hr,
    ]
    write_columns_png(path, columns)


def write_columns_png(path: Path, columns: list[torch.Tensor]) -> None:
    """A PNG with one row per sample and one column per (N, 3, H, W) tensor in [0, 1], written atomically."""
    gap = 2
    rows = []
    for i in range(len(columns[0])):
        tiles = [(c[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for c in columns]
        sep = np.full((tiles[0].shape[0], gap, 3), 255, np.uint8)
        rows.append(
            np.concatenate(
                [t if j == 0 else np.concatenate([sep, t], axis=1) for j, t in enumerate(tiles)], axis=1
            )
        )
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    grid = np.concatenate(rows[:-1], axis=0)
    write_image(path, grid)
