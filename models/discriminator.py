"""The SRGAN discriminator: strided conv stages, BatchNorm, LeakyReLU and a dense head.

A pure ``nn.Module``.  Ledig et al. (CVPR 2017) fix the input at 96x96; here an
adaptive average pool before the dense head makes it work for any HR crop size.
``forward(x, features=True)`` also returns each stage's output, which the
trainer uses for discriminator feature matching (a content loss that needs no
pretrained network).  Input is RGB in [0, 1], shape (N, 3, H, W); output is one
logit per image, shape (N,).
"""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, stride: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class Discriminator(nn.Module):
    """SRGAN discriminator.

    Args:
        channels: width of the first stage (64 in the paper); it doubles every stage.
        stages: number of stages (4 in the paper); each ends with a stride-2 conv,
            so the input should be at least ``2 ** stages`` pixels on a side.
        batch_norm: BatchNorm after every conv except the first (as in the paper).
        dense: width of the hidden dense layer (1024 in the paper).
        pool: side of the adaptive average pool in front of the dense head.
    """

    def __init__(
        self, channels: int = 64, stages: int = 4, batch_norm: bool = True, dense: int = 1024, pool: int = 4
    ) -> None:
        super().__init__()
        if stages < 1:
            raise ValueError(f"Discriminator needs at least one stage, got {stages}")
        blocks: list[nn.Module] = []
        cin = 3
        for i in range(stages):
            cout = channels * 2**i
            # The first conv sees raw pixels: no BatchNorm there, as in the paper.
            first = _conv(cin, cout, 1, batch_norm and i > 0)
            blocks.append(nn.Sequential(first, _conv(cout, cout, 2, batch_norm)))
            cin = cout
        self.stages = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cin * pool * pool, dense),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(dense, 1),
        )

    def forward(
        self, x: torch.Tensor, features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (N,), and with ``features=True`` also the list of every stage's output."""
        feats = []
        # Centre the input so the first conv sees zero-mean pixels.
        h = x * 2 - 1
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        logits = self.head(self.pool(h)).squeeze(1)
        return (logits, feats) if features else logits
