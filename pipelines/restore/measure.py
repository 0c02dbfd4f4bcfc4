"""What ``vsr eval restore`` and the trainer's validation measure on one restored image.

RGB, 8-bit scale, no shave: PSNR and SSIM over the whole image and inside the mask
(``vsr.pipelines.metrics.masked_psnr`` / ``masked_ssim``).  Identical images give ``inf`` PSNR.
"""

from __future__ import annotations

import numpy as np

from vsr.pipelines import metrics

KEYS = ("psnr_masked", "ssim_masked", "psnr", "ssim")


def measure(restored: np.ndarray, original: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """{psnr_masked, ssim_masked, psnr, ssim} of a restored image against the original (HxWxC, same dtype)."""
    return {
        "psnr_masked": metrics.masked_psnr(restored, original, mask),
        "ssim_masked": metrics.masked_ssim(restored, original, mask),
        "psnr": metrics.psnr(restored, original),
        "ssim": metrics.ssim(restored, original),
    }
