"""The SRGAN generator (SRResNet): residual blocks, PReLU, sub-pixel (pixel shuffle) upsampling.

A pure ``nn.Module``: constructor arguments only, no I/O, no device choice.
Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a GAN", CVPR 2017.
Input and output are RGB in [0, 1], shape (N, 3, H, W) -> (N, 3, H*scale, W*scale).
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """conv-BN-PReLU-conv-BN with an identity shortcut (BatchNorm optional)."""

    def __init__(self, channels: int, batch_norm: bool = True) -> None:
        super().__init__()
        norm = (lambda: nn.BatchNorm2d(channels)) if batch_norm else nn.Identity
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            norm(),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1),
            norm(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleBlock(nn.Module):
    """conv to 4x channels, pixel shuffle x2, PReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """SRGAN generator for scale 2 or 4.

    Args:
        scale: 2 or 4 (one pixel-shuffle x2 stage per factor of two).
        blocks: number of residual blocks (16 in the paper).
        channels: feature channels (64 in the paper).
        batch_norm: BatchNorm in residual blocks (the paper uses it; off is faster and tiles exactly).
    """

    def __init__(self, scale: int = 4, blocks: int = 16, channels: int = 64, batch_norm: bool = True) -> None:
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"SRResNet scale must be 2 or 4, got {scale}")
        self.scale = scale
        # How far (in input pixels) one output pixel can see: tiles need at least this much overlap
        # to match untiled output.  head 9x9, two 3x3 per block, body tail, upsample convs, tail 9x9, bicubic.
        self.receptive_radius = 4 + 2 * blocks + 1 + len(range(scale // 2)) + 2 + 2
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU(channels))
        self.body = nn.Sequential(*[ResidualBlock(channels, batch_norm) for _ in range(blocks)])
        self.body_tail = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels) if batch_norm else nn.Identity(),
        )
        self.upsample = nn.Sequential(*[UpsampleBlock(channels) for _ in range(scale // 2)])
        self.tail = nn.Conv2d(channels, 3, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        feat = feat + self.body_tail(self.body(feat))
        # Predict a residual over bicubic so the network learns detail, not colour; keeps early
        # training stable and makes a tiny model already better than interpolation.
        base = nn.functional.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return base + self.tail(self.upsample(feat))
