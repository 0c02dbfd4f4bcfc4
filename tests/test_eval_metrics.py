"""The metrics against values computed by hand or by a direct, loop-based implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vsr.pipelines.metrics import psnr, rgb_to_y, shave, ssim, ssim_map

RNG = np.random.default_rng(1234)


def test_rgb_to_y_matches_matlab_rgb2ycbcr() -> None:
    colours = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    y = rgb_to_y(colours)[0]
    # White -> 235 and black -> 16 (studio range); the primaries give 16 + the MATLAB coefficient.
    np.testing.assert_allclose(y, [235.0, 16.0, 16 + 65.481, 16 + 128.553, 16 + 24.966], atol=1e-9)
    assert y.dtype == np.float64


def test_psnr_identical_is_inf() -> None:
    a = RNG.integers(0, 256, (12, 9, 3), dtype=np.uint8)
    assert psnr(a, a.copy()) == math.inf


def test_psnr_of_a_one_level_offset_is_20_log10_255() -> None:
    a = RNG.integers(0, 255, (16, 16), dtype=np.uint8)
    b = a + 1  # MSE exactly 1
    assert psnr(a, b) == pytest.approx(20 * math.log10(255), abs=1e-12)
    # MSE 4 on half the pixels -> MSE 2.
    c = a.astype(np.int32)
    c[:8] += 2
    assert psnr(a, c) == pytest.approx(10 * math.log10(255**2 / 2), abs=1e-12)


def test_shaving_removes_a_border_only_error() -> None:
    a = RNG.integers(0, 256, (24, 20), dtype=np.uint8)
    b = a.copy()
    b[:2] = 0
    b[-2:] = 255
    b[:, :2] = 7
    b[:, -2:] = 99
    assert psnr(a, b) < 30
    assert psnr(shave(a, 2), shave(b, 2)) == math.inf
    assert ssim(shave(a, 2), shave(b, 2)) == 1.0
    assert shave(a, 2).shape == (20, 16)
    assert shave(a, 0) is a


def test_ssim_of_identical_images_is_one() -> None:
    a = RNG.integers(0, 256, (32, 24, 3), dtype=np.uint8)
    assert ssim(a, a.copy()) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_two_flat_images_is_the_luminance_term() -> None:
    a = np.full((20, 20), 100.0)
    b = np.full((20, 20), 110.0)
    c1 = (0.01 * 255) ** 2
    # Zero variance and covariance: the contrast/structure term is (0 + C2) / (0 + C2) = 1.
    assert ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), abs=1e-12)


def _ssim_direct(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. 2004 written out window by window (valid positions only)."""
    r = np.arange(11) - 5.0
    g = np.exp(-(r**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cov = (w * (px - mx) * (py - my)).sum()
            values.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_matches_a_direct_implementation() -> None:
    x = RNG.uniform(0, 255, (17, 21))
    y = np.clip(x + RNG.normal(0, 20, x.shape), 0, 255)
    assert ssim_map(x, y).shape == (7, 11)  # valid region: 10 pixels smaller
    assert ssim(x, y) == pytest.approx(_ssim_direct(x, y), abs=1e-10)


def test_ssim_of_rgb_is_the_mean_over_channels() -> None:
    x = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    y = np.clip(x.astype(int) + RNG.integers(-30, 31, x.shape), 0, 255).astype(np.uint8)
    per_channel = [ssim(x[..., c], y[..., c]) for c in range(3)]
    assert ssim(x, y) == pytest.approx(np.mean(per_channel), abs=1e-15)


def test_metrics_refuse_mismatched_or_too_small_images() -> None:
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((10, 30)), np.zeros((10, 30)))


def test_sharpness_is_one_for_the_reference_below_for_blur_above_for_added_detail() -> None:
    import cv2

    from vsr.pipelines.metrics import gradient_magnitude, sharpness

    ref = cv2.GaussianBlur(RNG.uniform(0, 255, (48, 48)), (0, 0), 1.5)
    assert sharpness(ref, ref.copy()) == pytest.approx(1.0)
    assert sharpness(cv2.GaussianBlur(ref, (0, 0), 2.0), ref) < 0.8
    sharpened = ref + 1.5 * (ref - cv2.GaussianBlur(ref, (0, 0), 2.0))
    assert sharpness(sharpened, ref) > 1.3
    # a ramp of one level per pixel: Sobel's |gx| is 8 inside and 0 on the two edge columns, where the
    # reflected border (101) mirrors the ramp back
    ramp = np.tile(np.arange(10, dtype=np.float64), (6, 1))
    assert gradient_magnitude(ramp) == pytest.approx(8 * 8 / 10)
    flat = np.full((8, 8), 7.0)
    assert sharpness(flat, flat) == 1.0 and math.isinf(sharpness(ramp[:, :8], flat[:6]))
