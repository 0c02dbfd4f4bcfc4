"""Training losses: pixel, adversarial (vanilla and relativistic average), feature matching, perceptual.

The perceptual loss needs VGG19 weights, which the project neither ships nor
downloads: it is on only when the user gives ``loss.vgg_weights = PATH``.
Feature matching against the discriminator's own features is the content loss
that needs no pretrained network.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vsr.errors import WeightsError


def pixel_loss(sr: torch.Tensor, hr: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean L1 or MSE between the output and the target."""
    return F.l1_loss(sr, hr) if kind == "l1" else F.mse_loss(sr, hr)


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str = "relativistic") -> torch.Tensor:
    """The discriminator's loss from its logits on real HR and generated SR images.

    ``vanilla``: real -> 1, fake -> 0.  ``relativistic``: real should look more real than the
    average fake and fake less real than the average real (Jolicoeur-Martineau 2018, ESRGAN).
    """
    if kind == "vanilla":
        return (_bce(real, 1.0) + _bce(fake, 0.0)) / 2
    return (_bce(real - fake.mean(), 1.0) + _bce(fake - real.mean(), 0.0)) / 2


def generator_adversarial_loss(
    real: torch.Tensor, fake: torch.Tensor, kind: str = "relativistic"
) -> torch.Tensor:
    """The generator's adversarial loss (``real`` logits are only used by the relativistic form)."""
    if kind == "vanilla":
        return _bce(fake, 1.0)
    return (_bce(real - fake.mean(), 0.0) + _bce(fake - real.mean(), 1.0)) / 2


def discriminator_accuracy(
    real: torch.Tensor, fake: torch.Tensor, kind: str = "relativistic"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Share of real and of fake logits the discriminator gets right (a collapse guard for metrics.csv).

    ``vanilla``: real > 0, fake < 0.  ``relativistic``: real above the mean fake, fake below the mean real.
    Both near 1 for long: the discriminator has won and the generator learns nothing from it; both
    near 0.5 from the start and never moving: it learns nothing either.
    """
    with torch.no_grad():
        if kind == "vanilla":
            return (real > 0).float().mean(), (fake < 0).float().mean()
        return (real > fake.mean()).float().mean(), (fake < real.mean()).float().mean()


def feature_matching_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Mean L1 between discriminator features of HR and SR images, averaged over stages (real side detached)."""
    return sum(F.l1_loss(f, r.detach()) for r, f in zip(real, fake, strict=True)) / len(real)


# VGG19 configuration "E": channels per conv, "M" = max pool.  Indices match torchvision's
# ``vgg19().features`` so its state dict (``features.N.weight``) loads unchanged.
_VGG19 = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_names() -> dict[str, int]:
    """'conv3_2' -> its index in ``features``."""
    names, block, conv, i = {}, 1, 0, 0
    for v in _VGG19:
        if v == "M":
            block, conv, i = block + 1, 0, i + 1
        else:
            conv += 1
            names[f"conv{block}_{conv}"] = i
            i += 2  # conv, ReLU
    return names


class VGG19Features(nn.Module):
    """VGG19 convolutional features up to (and including) ``layer``, before its ReLU; input RGB in [0, 1]."""

    def __init__(self, layer: str = "conv5_4") -> None:
        super().__init__()
        names = _layer_names()
        if layer not in names:
            raise ValueError(f"unknown VGG19 layer {layer!r}; choose one of {', '.join(names)}")
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG19:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                cin = int(v)
        self.features = nn.Sequential(*layers[: names[layer] + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)


def load_vgg19(path: Path, layer: str = "conv5_4") -> VGG19Features:
    """A frozen ``VGG19Features`` from a torchvision-layout state dict (.pth via weights_only, or .safetensors)."""
    from vsr.models.weights import load_state_strict

    net = VGG19Features(layer)
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # several libraries, several exception types for a bad file
        raise WeightsError(f"loss.vgg_weights {path}: not a readable state dict ({exc})") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"loss.vgg_weights {path}: expected a state dict, got {type(state).__name__}")
    state = state.get("state_dict", state)
    wanted = net.state_dict().keys()
    # A full VGG19 state dict has layers past ``layer`` and the classifier: drop those; anything
    # else that does not fit is reported by load_state_strict.
    state = {
        k: v
        for k, v in state.items()
        if not k.startswith("classifier.") and not (k.startswith("features.") and k not in wanted)
    }
    load_state_strict(net, state, path)
    net.eval().requires_grad_(False)
    return net


def perceptual_loss(vgg: VGG19Features, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """L1 between VGG19 features of the output and the target."""
    with torch.no_grad():
        target = vgg(hr)
    return F.l1_loss(vgg(sr), target)
