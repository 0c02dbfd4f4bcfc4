"""The steps every evaluation protocol shares: modcrop, MATLAB bicubic LR, running the methods, scoring.

See ``vsr.pipelines.evaluate`` for the protocols themselves and the conventions
they follow.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vsr.errors import InputError, UsageError
from vsr.pipelines.evaluate.results import BASELINES, MethodResult, Scores
from vsr.pipelines.metrics import SSIM_WINDOW, psnr, rgb_to_y, sharpness, shave, ssim

# Full-range luma: the grey level itself when R = G = B (for single-channel sources).
_GREY_WEIGHTS = np.array([0.299, 0.587, 0.114])


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop bottom/right so both sides are multiples of ``scale``."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


def bicubic_downscale(hr: np.ndarray | list[np.ndarray], scale: int) -> np.ndarray:
    """MATLAB ``imresize(hr, 1/scale)`` of uint8 HxWx3 (or NxHxWx3) images: antialiased bicubic, rounded to uint8."""
    import torch

    from vsr.models.resample import resize

    batch = np.stack(hr) if isinstance(hr, list) else hr
    single = batch.ndim == 3
    if single:
        batch = batch[None]
    n, h, w, _ = batch.shape
    if h % scale or w % scale:
        raise ValueError(f"image of {w}x{h} is not a multiple of the scale {scale}; modcrop it first")
    x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).to(torch.float64)
    y = resize(x, (h // scale, w // scale), kernel="cubic", antialias=True)
    # MATLAB rounds half away from zero; values are >= 0 after the clip, so floor(x + 0.5).
    out = np.floor(y.clamp(0, 255).permute(0, 2, 3, 1).numpy() + 0.5).astype(np.uint8)
    return out[0] if single else out


def min_side(scale: int) -> int:
    """Smallest HR side (after modcrop) a protocol can score: S shaved on each side, then an SSIM window."""
    return 2 * scale + SSIM_WINDOW


def check_size(image: np.ndarray, scale: int, name: str) -> None:
    """Raise ``InputError`` when ``image`` (already modcropped) is too small to score at ``scale``."""
    h, w = image.shape[:2]
    need = min_side(scale)
    if h < need or w < need:
        raise InputError(
            f"{name} is {w}x{h} after cropping to a multiple of {scale}: too small to evaluate at x{scale} "
            f"(needs at least {need}x{need}); remove it or use a smaller --scale"
        )


def _luma(image: np.ndarray, grey: bool) -> np.ndarray:
    if grey:
        return image.astype(np.float64) @ _GREY_WEIGHTS
    return rgb_to_y(image)


def score(sr: np.ndarray, hr: np.ndarray, scale: int, grey: bool = False) -> Scores:
    """PSNR/SSIM on Y and RGB, and Y sharpness, of uint8 HxWx3 ``sr`` against ``hr`` (``scale`` px shaved)."""
    ys, yh = shave(_luma(sr, grey), scale), shave(_luma(hr, grey), scale)
    cs, ch = shave(sr, scale), shave(hr, scale)
    return Scores(psnr(ys, yh), ssim(ys, yh), psnr(cs, ch), ssim(cs, ch), sharpness(ys, yh))


class MethodSet:
    """The model and the baselines as Upscalers, for one protocol run (built per call, not shared)."""

    def __init__(
        self, model: str | None, scale: int, device: str, precision: str, batch_size: int | None
    ) -> None:
        from vsr.models.registry import DEFAULT_MODEL, load_model_from
        from vsr.pipelines.device import resolve_device, resolve_precision
        from vsr.pipelines.upscale import Upscaler

        if scale < 2:
            raise UsageError(f"--scale must be at least 2, got {scale}")
        if batch_size is not None and batch_size < 1:
            raise UsageError(f"--batch-size must be a positive integer, got {batch_size}")
        if model is None:
            if scale not in DEFAULT_MODEL:
                raise UsageError(
                    f"no default model for x{scale}; pass --model (bicubic, lanczos or a weights file)"
                )
            model = DEFAULT_MODEL[scale]
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        loaded = load_model_from(model, scale)
        if loaded.generative_face_restorer:
            raise UsageError(
                f"--model {model} is a {loaded.arch} face restorer (aligned 512 px faces, 1x): vsr eval scores "
                "super-resolution models; compare restorers in face mode of vsr enhance"
            )
        self.model_name = loaded.name
        self.upscalers: dict[str, Any] = {}
        for name in BASELINES:
            base = load_model_from(name, scale)
            self.upscalers[name] = Upscaler(base.module, scale, self.device, "fp32", batch_size)
        # A baseline asked for as the model is the same computation: reuse its output rather than run it twice.
        self.alias = loaded.name if loaded.name in BASELINES else None
        if self.alias is None:
            self.upscalers["model"] = Upscaler(loaded.module, scale, self.device, self.precision, batch_size)
        self.results = {m: MethodResult(m) for m in ("model", *BASELINES)}

    def run(self, lr: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
        """Upscale ``lr`` with every method; returns method -> uint8 outputs, and times each method."""
        outputs: dict[str, list[np.ndarray]] = {}
        for name, upscaler in self.upscalers.items():
            start = time.perf_counter()
            outputs[name] = upscaler(lr)
            self.results[name].seconds += time.perf_counter() - start
        if self.alias is not None:
            outputs["model"] = outputs[self.alias]
            self.results["model"].seconds = self.results[self.alias].seconds
        return outputs


def grid_row(
    lr: np.ndarray, outputs: dict[str, list[np.ndarray]], hr: np.ndarray, i: int
) -> dict[str, np.ndarray]:
    """One example for the comparison grid: the LR, every method's output and the HR."""
    row = {"LR": lr, **{m: outputs[m][i] for m in ("bicubic", "lanczos", "model")}, "HR": hr}
    return {k: np.ascontiguousarray(v) for k, v in row.items()}


def describe_protocol(
    scale: int, kind: str, degrade: str | None, seed: int, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The protocol as the report states it, so a number can always be traced to how it was measured."""
    out: dict[str, Any] = {
        "hr": f"cropped to a multiple of {scale} (bottom/right)",
        "lr": "MATLAB imresize bicubic 1/S with antialiasing, float, rounded half up to uint8",
        "shave": scale,
        "y": "BT.601 MATLAB rgb2ycbcr, float, 16..235 (greyscale sources: the grey level)",
        "rgb": "PSNR over all channels; SSIM mean of per-channel",
        "sharpness": "mean 3x3 Sobel gradient magnitude of SR Y over HR Y (1 = as sharp, < 1 blurrier)",
        "ssim": "Wang 2004, Gaussian 11x11 sigma 1.5, K1 0.01, K2 0.03, L 255, valid region",
        "mean": "mean over items of per-item scores; PSNR of identical images is null (infinite)",
    }
    if degrade is not None:
        from vsr.pipelines.evaluate.degrade import describe_real

        out["lr"] = describe_real(seed)
    if kind == "video":
        out["flicker"] = (
            "mean over t of mean |(SR_t - HR_t) - (SR_t-1 - HR_t-1)| on Y, shaved, Y levels 0..255"
        )
    out.update(extra or {})
    return out
