"""Devices and precisions: one policy for inference (``vsr enhance``, ``vsr eval``) and training.

``resolve_device`` turns ``--device`` into a ``torch.device`` that exists; ``resolve_precision`` picks
what runs there.  The two purposes differ only where they must: inference defaults to fp16 on CUDA
(activations only, weights stay fp32 under autocast) and allows bf16 on the CPU; training defaults to
bf16 on CUDA (fp16 would need loss scaling) and trains in fp32 on the CPU.  ``flag`` names the option
or TOML key the value came from, so messages point at what to change.
"""

from __future__ import annotations

import torch

from vsr.config import COMPILES, PRECISIONS
from vsr.errors import ConfigError

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
PURPOSES = ("upscale", "train")


def resolve_device(spec: str = "auto", flag: str = "--device") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda``/``cuda:N`` must exist here."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"{flag} {spec!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{flag} {spec}: no CUDA GPU is available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{flag} {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif device.type != "cpu":
        raise ConfigError(f"{flag} {spec}: only cpu and cuda devices are supported")
    return device


def resolve_precision(
    spec: str, device: torch.device, purpose: str = "upscale", flag: str = "--precision"
) -> str:
    """The precision to run at on ``device`` for ``purpose`` (``upscale`` or ``train``)."""
    if spec not in PRECISIONS:
        raise ConfigError(f"{flag} {spec!r}: choose one of {', '.join(PRECISIONS)}")
    cuda = device.type == "cuda"
    if spec == "auto":
        if not cuda:
            return "fp32"
        if purpose == "train":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return "fp16"
    if not cuda and (spec == "fp16" or (spec == "bf16" and purpose == "train")):
        raise ConfigError(f"{flag} {spec} needs a CUDA device; use fp32 on the CPU")
    if spec == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"{flag} bf16: this GPU does not support bfloat16; use fp16")
    return spec


def resolve_compile(spec: str, device: torch.device, learned: bool, flag: str = "--compile") -> bool:
    """Whether to ``torch.compile`` the model: ``auto`` -> on CUDA for a model with weights.

    Not on the CPU, where it is not repaid (2 cores, 480x270 x4, batch 2, measured side by side: a 2x8
    SRResNet compiles in 17-22 s cold, 5 s from inductor's cache, then runs at 3.2 fps against 3.7 eager;
    the shipped 6x32 at 0.93 against 1.05 fps after 17-29 s).  Nor for an interpolation baseline: nothing
    to fuse.
    """
    if spec not in COMPILES:
        raise ConfigError(f"{flag} {spec!r}: choose one of {', '.join(COMPILES)}")
    if spec == "auto":
        return device.type == "cuda" and learned
    return spec == "on"
