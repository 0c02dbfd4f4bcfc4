"""Full-reference image metrics as the super-resolution literature computes them.

Conventions (so numbers compare with published tables):

- Images are 8-bit: ``uint8`` arrays, or floats on the same 0..255 scale.
- ``rgb_to_y`` is BT.601 luma as MATLAB's ``rgb2ycbcr``: Y = 16 + 65.481 R +
  128.553 G + 24.966 B for R, G, B in [0, 1].  It returns float64 on the 0..255
  scale, so Y lies in [16, 235] (white -> 235, black -> 16), and it is *not*
  rounded to an integer (MATLAB rounds when given ``uint8``; the difference is
  about 0.01 dB on Set5).
- ``psnr`` uses a peak of 255 and the mean squared error over every pixel and
  channel; identical images give ``math.inf`` (callers that write JSON turn it
  into ``null``).
- ``ssim`` is Wang et al. 2004: an 11x11 Gaussian window with sigma 1.5, K1 =
  0.01, K2 = 0.03, L = 255, on float images, over the *valid* region (no
  padding: the map is 10 pixels smaller than the image in each dimension), no
  automatic downsampling; for colour images, the mean of the per-channel SSIMs.
- ``shave`` removes the same number of pixels from every border (the protocol
  shaves ``scale`` pixels before measuring).
- ``sharpness`` is not a literature metric: the mean gradient magnitude (3x3
  Sobel) of an image over that of its reference.  1.0 = as much detail as the
  reference, below 1 = blurrier, above 1 = more edges or texture than the
  reference has (over-sharpening or invented detail).  PSNR rewards blur;
  this says how much of it an output has.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

PEAK = 255.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# MATLAB rgb2ycbcr, Y row, for R, G, B in [0, 1]; output on the 0..255 scale.
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)
_Y_OFFSET = 16.0


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of an HxWx3 RGB image (0..255 scale) as float64 in [16, 235], unrounded."""
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"rgb_to_y expects an HxWx3 RGB image, got shape {image.shape}")
    rgb = image.astype(np.float64, copy=False)
    return _Y_OFFSET + rgb @ (_Y_WEIGHTS / PEAK)


def shave(image: np.ndarray, border: int) -> np.ndarray:
    """``image`` without ``border`` pixels on each side (rows and columns); ``border`` 0 returns it as is."""
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if border == 0:
        return image
    if image.shape[0] <= 2 * border or image.shape[1] <= 2 * border:
        raise ValueError(f"cannot shave {border} px from an image of {image.shape[1]}x{image.shape[0]}")
    return image[border:-border, border:-border]


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("cannot measure an empty image")


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over all pixels and channels, in float64."""
    _check_pair(a, b)
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(diff * diff))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = PEAK) -> float:
    """Peak signal-to-noise ratio in dB; ``math.inf`` when the images are identical."""
    err = mse(a, b)
    if err == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / err)


def _gaussian_1d() -> np.ndarray:
    # Same as MATLAB fspecial('gaussian', 11, 1.5) factored into its separable 1-D kernel.
    x = np.arange(SSIM_WINDOW, dtype=np.float64) - (SSIM_WINDOW - 1) / 2
    g = np.exp(-(x * x) / (2 * SSIM_SIGMA * SSIM_SIGMA))
    return g / g.sum()


_G = _gaussian_1d()


def _filter_valid(x: np.ndarray) -> np.ndarray:
    # The kernel is symmetric, so correlation == convolution; cropping the half-window
    # from a same-size result leaves exactly MATLAB's filter2(..., 'valid').
    r = SSIM_WINDOW // 2
    out = cv2.sepFilter2D(x, cv2.CV_64F, _G, _G, borderType=cv2.BORDER_REFLECT)
    return out[r:-r, r:-r]


def ssim_map(a: np.ndarray, b: np.ndarray, peak: float = PEAK) -> np.ndarray:
    """The SSIM map of two single-channel images over the valid region (float64)."""
    _check_pair(a, b)
    if a.ndim != 2:
        raise ValueError(f"ssim_map expects single-channel HxW images, got shape {a.shape}")
    if min(a.shape) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {a.shape[1]}x{a.shape[0]}"
        )
    x = np.ascontiguousarray(a, dtype=np.float64)
    y = np.ascontiguousarray(b, dtype=np.float64)
    c1 = (SSIM_K1 * peak) ** 2
    c2 = (SSIM_K2 * peak) ** 2
    mu_x, mu_y = _filter_valid(x), _filter_valid(y)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x = _filter_valid(x * x) - mu_xx
    var_y = _filter_valid(y * y) - mu_yy
    cov = _filter_valid(x * y) - mu_xy
    return ((2 * mu_xy + c1) * (2 * cov + c2)) / ((mu_xx + mu_yy + c1) * (var_x + var_y + c2))


def ssim(a: np.ndarray, b: np.ndarray, peak: float = PEAK) -> float:
    """Mean SSIM (Wang et al. 2004); HxW or HxWxC, colour = mean of the per-channel SSIMs."""
    _check_pair(a, b)
    if a.ndim == 2:
        return float(ssim_map(a, b, peak).mean())
    if a.ndim == 3:
        return float(np.mean([ssim_map(a[..., c], b[..., c], peak).mean() for c in range(a.shape[-1])]))
    raise ValueError(f"ssim expects HxW or HxWxC images, got shape {a.shape}")


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray, peak: float = PEAK) -> float:
    """PSNR over the pixels where ``mask`` (HxW bool) is True, every channel; ``math.inf`` when identical there."""
    _check_pair(a, b)
    if mask.shape != a.shape[:2] or not mask.any():
        raise ValueError(f"mask of shape {mask.shape} selects no pixel of an image of shape {a.shape}")
    return psnr(a[mask], b[mask], peak)


def masked_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray, peak: float = PEAK) -> float:
    """Mean of the SSIM map (per channel, then averaged) over the window centres inside ``mask`` (HxW bool).

    The map covers the valid region (``SSIM_WINDOW // 2`` pixels in from each border); a mask with
    no pixel there is measured on the whole map.
    """
    _check_pair(a, b)
    r = SSIM_WINDOW // 2
    inner = mask[r:-r, r:-r]
    if not inner.any():
        return ssim(a, b, peak)
    planes = [(a, b)] if a.ndim == 2 else [(a[..., c], b[..., c]) for c in range(a.shape[-1])]
    return float(np.mean([ssim_map(x, y, peak)[inner].mean() for x, y in planes]))


def gradient_magnitude(image: np.ndarray) -> float:
    """Mean 3x3 Sobel gradient magnitude of an HxW image (0..255 scale)."""
    if image.ndim != 2:
        raise ValueError(f"gradient_magnitude expects an HxW image, got shape {image.shape}")
    x = image.astype(np.float64)
    gx = cv2.Sobel(x, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    gy = cv2.Sobel(x, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    return float(np.mean(np.hypot(gx, gy)))


def sharpness(a: np.ndarray, reference: np.ndarray) -> float:
    """Gradient energy of ``a`` relative to ``reference`` (HxW): 1.0 = as sharp, < 1 blurrier, > 1 sharper.

    A flat reference (no gradient at all) gives ``math.inf`` unless ``a`` is flat too (1.0).
    """
    _check_pair(a, reference)
    ga, gr = gradient_magnitude(a), gradient_magnitude(reference)
    if gr == 0:
        return 1.0 if ga == 0 else math.inf
    return ga / gr
