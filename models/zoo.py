"""Third-party models (Real-ESRGAN, ESRGAN, SwinIR, HAT, BasicSR, GFPGAN, ...) through spandrel: the ``zoo`` extra.

vsr has already read the tensors (``vsr.models.loading``); spandrel only recognises the architecture from
the names and shapes and builds the network.  The result is wrapped as a plain ``nn.Module``
(``ZooModule``) that carries what ``vsr.pipelines.upscale.Upscaler`` honours: the input size it needs
(``size_multiple``, ``size_minimum``: met by padding and cropping back), the precisions it supports, how
far a pixel's influence reaches (``receptive_radius``, the tile overlap) and whether it may be tiled.

Only spandrel's MIT-licensed main registry is used; ``spandrel_extra_arches`` (non-commercial
architectures) is never loaded.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from vsr.errors import ModelError, UsageError, WeightsError, one_line
from vsr.models.loading import WeightsFile

INSTALL_HINT = (
    "pip install 'vsr-faces[zoo]' after installing the torchvision built for your torch "
    "(README: 'Your own models')"
)
# Families named in the "not recognised" message (spandrel supports more: `vsr models --inspect FILE`).
SUPPORTED = (
    "vsr's own .safetensors / trainer checkpoints; with the zoo extra: ESRGAN / Real-ESRGAN (RRDBNet), "
    "Real-ESRGAN Compact (SRVGGNetCompact), SwinIR, Swin2SR, HAT, DAT, OmniSR, SPAN, RCAN, "
    "GFPGAN and RestoreFormer face restorers, and the rest of spandrel's MIT registry"
)
# Tile overlap beyond which a third-party model's tiles stop mattering within rounding; the theoretical
# field of a 23-block RRDBNet is ~350 px, its effective one far smaller (benchmarks/zoo_throughput.py).
MAX_OVERLAP = 32
FACE_SIZE = 512
# Face restorers whose networks take and return [-1, 1] and are called as ``net(x)[0]``.
SIGNED_FACE_RESTORERS = ("GFPGAN",)


def import_spandrel(path: Any = "this file"):
    """spandrel, or a one-line ``ModelError`` saying how to install it."""
    try:
        import spandrel
    except ImportError:
        raise ModelError(
            f"{path} is not one of vsr's own models; third-party models need the zoo extra (spandrel), "
            f"which is not installed: {INSTALL_HINT}"
        ) from None
    except (
        RuntimeError
    ) as exc:  # torchvision built for another torch: "operator torchvision::nms does not exist"
        raise ModelError(
            f"spandrel is installed but cannot be imported: its torchvision does not match torch "
            f"{torch.__version__} ({one_line(exc)}); {INSTALL_HINT}"
        ) from None
    return spandrel


class ZooModule(torch.nn.Module):
    """A spandrel model as a plain module: N x 3 x H x W in [0, 1] in, N x 3 x sH x sW in [0, 1] out."""

    def __init__(self, descriptor: Any) -> None:
        super().__init__()
        self.net = descriptor.model
        self._descriptor = descriptor  # its call function knows the model's own conventions
        self.arch = str(descriptor.architecture.name)
        self.purpose = str(descriptor.purpose)
        self.scale = int(descriptor.scale)
        req = descriptor.size_requirements
        window = int(getattr(self.net, "window_size", 1) or 1)
        self.size_multiple = math.lcm(int(req.multiple_of), window)  # tiles then align with attention windows
        self.size_minimum = int(req.minimum)
        self.size_square = bool(req.square)
        self.supports_fp16 = bool(descriptor.supports_half)
        self.supports_bf16 = bool(descriptor.supports_bfloat16)
        self.tileable = self.purpose != "FaceSR" and descriptor.tiling.name != "INTERNAL"
        self.generative = self.purpose == "FaceSR"  # GFPGAN, RestoreFormer invent detail: reports say so
        self.receptive_radius = _receptive_radius(self.net, self.size_multiple)
        # GFPGAN and RestoreFormer were trained on FFHQ faces aligned at 512 px.
        self.face_size = max(FACE_SIZE, self.size_minimum) if self.purpose == "FaceSR" else None
        # GFPGAN flattens features with .view(), which channels_last memory breaks.
        self.channels_last = self.purpose != "FaceSR"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.arch in SIGNED_FACE_RESTORERS:
            # GFPGAN takes and returns [-1, 1]; fixed noise (randomize_noise=False) keeps video frames stable.
            y = self.net((x * 2 - 1).contiguous(), return_rgb=False, randomize_noise=False)[0]
            return (y + 1) / 2
        return self._descriptor(x)


def _receptive_radius(net: torch.nn.Module, multiple: int) -> int:
    """Tile overlap: the convolutions' reach plus one window per shifted-window block, capped, a multiple."""
    reach = 0
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            reach += m.dilation[0] * (m.kernel_size[0] - 1) // 2
        elif hasattr(m, "shift_size") and hasattr(m, "window_size"):
            size = m.window_size
            reach += int(size[0] if isinstance(size, tuple | list) else size)
    reach = min(max(reach, 4), MAX_OVERLAP)
    return int(math.ceil(reach / multiple) * multiple)


def recognise(weights: WeightsFile):
    """spandrel's descriptor for ``weights``, or a one-line ``WeightsError`` naming what was found."""
    if not weights.state:
        raise WeightsError(f"{weights.path}: no tensors found ({weights.found}); supported: {SUPPORTED}")
    spandrel = import_spandrel(weights.path)
    try:
        with warnings.catch_warnings():  # architectures' own deprecation noise (torch.meshgrid, ...)
            warnings.simplefilter("ignore", UserWarning)
            descriptor = spandrel.ModelLoader(device="cpu").load_from_state_dict(weights.state)
    except spandrel.UnsupportedModelError:
        raise WeightsError(
            f"{weights.path}: architecture not recognised ({weights.found}); supported: {SUPPORTED}"
        ) from None
    except Exception as exc:  # a recognised architecture whose tensors do not fit it
        detail = one_line(exc)
        detail = detail if len(detail) <= 300 else detail[:300] + " ..."
        raise WeightsError(f"{weights.path}: the weights do not fit their architecture ({detail})") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.input_channels != 3:
        raise WeightsError(
            f"{weights.path}: a {descriptor.architecture.name} {descriptor.purpose} model with "
            f"{descriptor.input_channels} input channel(s); vsr runs RGB image-to-image models only"
        )
    return descriptor


def licence_of(weights: WeightsFile) -> str | None:
    """The licence a .safetensors header declares, if any."""
    for key in ("licence", "license", "modelspec.license", "modelspec.licence"):
        if weights.metadata.get(key):
            return weights.metadata[key]
    return None


def load_third_party(weights: WeightsFile, scale: int | None):
    """A third-party weights file -> ``LoadedModel`` (eval mode, CPU); ``scale`` None = the model's own."""
    from vsr.digest import sha256_of
    from vsr.models.registry import LoadedModel

    module = ZooModule(recognise(weights)).eval()
    if module.purpose == "FaceSR":
        pass  # a face restorer works at 1x on aligned faces: any --scale suits it
    elif module.scale not in (2, 4):
        raise ModelError(
            f"{weights.path}: a x{module.scale} {module.arch} model; vsr upscales x2 and x4 only"
        )
    elif scale is not None and scale != module.scale:
        raise UsageError(
            f"--scale {scale} disagrees with the model: {weights.path.name} is a x{module.scale} {module.arch} "
            f"model; drop --scale or pass --scale {module.scale}"
        )
    return LoadedModel(
        module=module,
        name=str(weights.path),
        scale=module.scale,
        params=sum(p.numel() for p in module.parameters()),
        sha256=sha256_of(weights.path),
        arch=module.arch,
        purpose=module.purpose,
        licence=licence_of(weights),
    )
