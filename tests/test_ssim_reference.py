"""Our SSIM against scikit-image's with the reference settings of Wang et al. 2004 (dev-only cross-check).

``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)``
is the setting scikit-image documents as matching the paper's MATLAB implementation: an 11x11 Gaussian
window (sigma 1.5, truncated at 3.5 sigma), K1 0.01, K2 0.03, and the mean over the region where the
window fits; colour is the mean of the per-channel SSIMs.
"""

from __future__ import annotations

import numpy as np
import pytest

from vsr.pipelines.metrics import ssim

skimage_metrics = pytest.importorskip(
    "skimage.metrics", reason="scikit-image (the dev extra) is not installed: pip install -e .[dev]"
)
REFERENCE = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}
RNG = np.random.default_rng(2004)


def _pairs():
    y, x = np.mgrid[0:48, 0:64]
    smooth = (127 + 100 * np.sin(x / 7.0) * np.cos(y / 5.0)).astype(np.uint8)
    noisy = np.clip(smooth + RNG.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
    shifted = np.roll(smooth, 1, axis=1)
    random = RNG.integers(0, 256, smooth.shape, dtype=np.uint8)
    return [(smooth, noisy), (smooth, shifted), (smooth, random), (smooth, smooth)]


@pytest.mark.parametrize("pair", range(4))
def test_grey_ssim_matches_scikit_image(pair):
    a, b = _pairs()[pair]
    expected = skimage_metrics.structural_similarity(a, b, **REFERENCE)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-9)


def test_colour_ssim_matches_scikit_image():
    a = RNG.integers(0, 256, (40, 52, 3), dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + RNG.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    expected = skimage_metrics.structural_similarity(a, b, channel_axis=-1, **REFERENCE)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-9)
    assert 0.2 < expected < 0.99  # a pair where SSIM says something
