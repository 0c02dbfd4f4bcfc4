"""Generated fixtures for the restore tests: face-like chips and a tiny (untrained) inpainting model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from train_fixtures import face_image, write_rgb


def chip(seed: int, side: int = 64) -> np.ndarray:
    """A face-like RGB uint8 chip with eyes about where aligned chips have them."""
    y = int(0.3 * side)
    return face_image(side, side, ((int(0.3 * side), y), (int(0.68 * side), y)), seed=seed)


def write_chips(folder: Path, n: int, side: int = 64) -> list[Path]:
    paths = []
    for i in range(n):
        path = folder / f"face_{i:02d}.png"
        write_rgb(path, chip(i, side))
        paths.append(path)
    return paths


def tiny_model(path: Path, seed: int = 0) -> Path:
    """A randomly initialised InpaintNet written as .safetensors with vsr metadata (for pipeline tests)."""
    import torch

    from vsr.models.inpaint import InpaintNet
    from vsr.models.weights import write_safetensors

    torch.manual_seed(seed)
    net = InpaintNet(3, channels=4, downsamples=2, dilated=1)
    arch = {"arch": "inpaint", "scale": 1, "in_channels": 3, "channels": 4, "downsamples": 2, "dilated": 1}
    write_safetensors(net.state_dict(), arch, path, half=False)
    return path
