"""Separable resampling with MATLAB ``imresize`` semantics, in torch.

One mechanism serves every resize in the project: the bicubic/Lanczos baseline
"models", the antialiased bicubic downsampling of the evaluation protocol and
the training degradations.  For each output index we precompute the input
indices it reads (mirrored at the borders, as MATLAB does) and their weights,
then resize one axis at a time with a gather and a weighted sum.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

KERNELS = ("cubic", "lanczos3", "linear")


def _cubic(x: torch.Tensor) -> torch.Tensor:
    # Keys' cubic with a = -0.5 (MATLAB's bicubic; the SR literature's "bicubic").
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


def _lanczos3(x: torch.Tensor) -> torch.Tensor:
    return torch.sinc(x) * torch.sinc(x / 3) * (x.abs() < 3)


def _linear(x: torch.Tensor) -> torch.Tensor:
    return (1 - x.abs()).clamp(min=0)


_KERNEL_FN = {"cubic": (_cubic, 4.0), "lanczos3": (_lanczos3, 6.0), "linear": (_linear, 2.0)}


@lru_cache(maxsize=64)
def contributions(
    in_len: int, out_len: int, kernel: str, antialias: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input indices (out_len, P) and weights (out_len, P) for resizing one axis, as MATLAB computes them."""
    if kernel not in _KERNEL_FN:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    fn, width = _KERNEL_FN[kernel]
    scale = out_len / in_len
    if scale < 1 and antialias:

        def h(x: torch.Tensor) -> torch.Tensor:
            return scale * fn(scale * x)

        width = width / scale
    else:
        h = fn
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    weights = h(u[:, None] - idx)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Mirror out-of-range indices (MATLAB's symmetric padding), 1-based -> 0-based.
    idx0 = idx - 1
    period = 2 * in_len
    idx0 = torch.remainder(idx0, period)
    idx0 = torch.where(idx0 >= in_len, period - 1 - idx0, idx0)
    keep = weights.abs().sum(dim=0) > 0
    return idx0[:, keep].long(), weights[:, keep].float()


def _resize_axis(x: torch.Tensor, out_len: int, dim: int, kernel: str, antialias: bool) -> torch.Tensor:
    in_len = x.shape[dim]
    if in_len == out_len:
        return x
    idx, w = contributions(in_len, out_len, kernel, antialias)
    idx, w = idx.to(x.device), w.to(device=x.device, dtype=x.dtype)
    x = x.movedim(dim, -1)
    gathered = x[..., idx]  # (..., out_len, P)
    out = (gathered * w).sum(dim=-1)
    return out.movedim(-1, dim)


def resize(
    x: torch.Tensor, size: tuple[int, int], kernel: str = "cubic", antialias: bool = True
) -> torch.Tensor:
    """Resize ``x`` (..., H, W) to ``size`` = (out_h, out_w) with MATLAB ``imresize`` semantics."""
    out_h, out_w = size
    if not x.is_floating_point():
        raise TypeError("resize expects a floating-point tensor")
    # Resize the axis that shrinks most first: fewer operations, and MATLAB's order.
    if out_h / x.shape[-2] <= out_w / x.shape[-1]:
        x = _resize_axis(x, out_h, x.dim() - 2, kernel, antialias)
        return _resize_axis(x, out_w, x.dim() - 1, kernel, antialias)
    x = _resize_axis(x, out_w, x.dim() - 1, kernel, antialias)
    return _resize_axis(x, out_h, x.dim() - 2, kernel, antialias)


class Interpolation(torch.nn.Module):
    """A classical upscaler presented as a model, so baselines run through the same inference path."""

    def __init__(self, scale: int, kernel: str) -> None:
        super().__init__()
        self.scale = scale
        self.kernel = kernel
        self.receptive_radius = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return resize(x, (h * self.scale, w * self.scale), self.kernel, antialias=False)
