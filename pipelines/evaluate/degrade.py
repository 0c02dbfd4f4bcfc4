"""The seeded "real-world" degradation of the faces evaluation protocol (``vsr eval faces --degrade real``).

HR face -> Gaussian blur -> MATLAB bicubic downsampling (antialiased, float) ->
Gaussian noise -> uint8 -> one H.264 intra-frame round trip (libx264, yuv420p,
so chroma is subsampled as in real video).  Each image draws its parameters
from its own generator seeded with ``(seed, index)``, ``index`` being its
position among the evaluated images (sorted by file name), so a run is
reproducible and does not depend on the batch size.
"""

from __future__ import annotations

import numpy as np

BLUR_SIGMA = (0.5, 1.5)  # HR pixels
NOISE_SIGMA = (1.0, 5.0)  # 8-bit levels, independent per channel
H264_CRF = (24, 32)  # inclusive


def describe_real(seed: int) -> str:
    """One line that states the protocol and its parameter ranges, for the report."""
    return (
        f"real-world: Gaussian blur sigma U{BLUR_SIGMA} HR px, MATLAB bicubic 1/S antialiased, "
        f"Gaussian noise sigma U{NOISE_SIGMA} levels, uint8, H.264 intra crf U{H264_CRF} yuv420p; "
        f"per-image generator seeded with (seed={seed}, index)"
    )


def degrade_real(hr: np.ndarray, scale: int, seed: int, index: int) -> np.ndarray:
    """Degrade one HR uint8 HxWx3 image (sides multiples of ``scale``) into its LR uint8 image."""
    import cv2
    import torch

    from vsr.media.transcode import h264_roundtrip
    from vsr.models.resample import resize

    rng = np.random.default_rng([seed, index])
    sigma = rng.uniform(*BLUR_SIGMA)
    noise = rng.uniform(*NOISE_SIGMA)
    crf = int(rng.integers(H264_CRF[0], H264_CRF[1] + 1))
    h, w = hr.shape[:2]
    blurred = cv2.GaussianBlur(hr.astype(np.float64), (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    x = torch.from_numpy(np.ascontiguousarray(blurred)).permute(2, 0, 1)
    lr = resize(x, (h // scale, w // scale), kernel="cubic", antialias=True).permute(1, 2, 0).numpy()
    lr = lr + rng.normal(0.0, noise, size=lr.shape)
    lr8 = np.floor(np.clip(lr, 0, 255) + 0.5).astype(np.uint8)
    return h264_roundtrip([lr8], crf=crf)[0]
