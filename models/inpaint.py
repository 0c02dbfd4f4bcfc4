"""Face inpainting networks: a gated-convolution U-Net generator and a patch discriminator.

Pure ``nn.Module``s: constructor arguments only, no I/O, no device choice.

``InpaintNet(image, mask)`` takes an RGB (or grey, ``in_channels=1``) image in [0, 1] with the
missing pixels anywhere (they are zeroed inside) and the mask (N, 1, H, W), 1 = missing; it
returns the full predicted image, same shape as ``image``.  Callers keep the known pixels and use
the prediction only inside the mask (``composite``).  Gated convolutions (Yu et al., "Free-Form
Image Inpainting with Gated Convolution", ICCV 2019) learn per pixel how much of a feature comes
from valid input; dilated gated convolutions at the bottleneck reach across half a face; skip
connections carry the visible side's detail to the decoder.  Sides must be multiples of
``2 ** downsamples``.

``PatchDiscriminator(image, mask)`` scores overlapping patches (one logit each, a map of shape
(N, 1, H / 2**stages, W / 2**stages)); it sees the mask too, so it judges the regenerated region
against its surroundings.  Spectral normalisation keeps it from overpowering the generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GatedConv(nn.Module):
    """conv -> (features, gates): ``act(features) * sigmoid(gates)``."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cout, 3, stride=stride, padding=dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat, gate = self.conv(x).chunk(2, dim=1)
        return F.elu(feat) * torch.sigmoid(gate)


class InpaintNet(nn.Module):
    """Gated-convolution U-Net for inpainting.

    Args:
        in_channels: 3 (RGB) or 1 (grey).
        channels: width of the first level; it doubles at every downsampling (capped at 4x).
        downsamples: encoder levels (each halves the size).
        dilated: dilated gated convolutions at the bottleneck (dilations 2, 4, 8, 2, ...).
    """

    def __init__(
        self, in_channels: int = 3, channels: int = 32, downsamples: int = 3, dilated: int = 4
    ) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"InpaintNet takes 1 (grey) or 3 (RGB) channels, got {in_channels}")
        if downsamples < 1:
            raise ValueError(f"InpaintNet needs at least one downsampling, got {downsamples}")
        self.in_channels, self.downsamples = in_channels, downsamples
        widths = [channels * min(2**i, 4) for i in range(downsamples + 1)]
        self.stem = GatedConv(in_channels + 1, widths[0])
        self.down = nn.ModuleList(
            nn.Sequential(
                GatedConv(widths[i], widths[i + 1], stride=2), GatedConv(widths[i + 1], widths[i + 1])
            )
            for i in range(downsamples)
        )
        rates = [(2, 4, 8, 2)[i % 4] for i in range(dilated)]
        self.middle = nn.Sequential(*(GatedConv(widths[-1], widths[-1], dilation=r) for r in rates))
        self.up = nn.ModuleList(
            nn.Sequential(GatedConv(widths[i + 1] + widths[i], widths[i]), GatedConv(widths[i], widths[i]))
            for i in reversed(range(downsamples))
        )
        self.head = nn.Conv2d(widths[0], in_channels, 3, padding=1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[:, :1]
        h = self.stem(torch.cat([(image * 2 - 1) * (1 - m), m], dim=1))
        skips = [h]
        for level in self.down:
            h = level(h)
            skips.append(h)
        h = self.middle(h)
        for level, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = level(torch.cat([h, skip], dim=1))
        return torch.sigmoid(self.head(h))


def composite(known: torch.Tensor, predicted: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Known pixels outside the mask, the prediction inside it."""
    return known * (1 - mask) + predicted * mask


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator over image + mask, spectral-normalised, LeakyReLU.

    Args:
        in_channels: 3 (RGB) or 1 (grey) image channels; the mask is one more.
        channels: width of the first stage; it doubles every stage (capped at 8x).
        stages: stride-2 stages; each logit sees a patch of about ``2 ** (stages + 2)`` pixels.
    """

    def __init__(self, in_channels: int = 3, channels: int = 32, stages: int = 3) -> None:
        super().__init__()
        if stages < 1:
            raise ValueError(f"PatchDiscriminator needs at least one stage, got {stages}")
        sn = nn.utils.parametrizations.spectral_norm
        blocks: list[nn.Module] = []
        cin = in_channels + 1
        for i in range(stages):
            cout = channels * min(2**i, 8)
            blocks.append(nn.Sequential(sn(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)))
            cin = cout
        self.stages = nn.ModuleList(blocks)
        self.head = sn(nn.Conv2d(cin, 1, 3, padding=1))

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor, features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Patch logits (N, 1, h, w), and with ``features=True`` every stage's output."""
        h = torch.cat([image * 2 - 1, mask[:, :1]], dim=1)
        feats = []
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        logits = self.head(h)
        return (logits, feats) if features else logits
