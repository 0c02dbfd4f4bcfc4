"""Seeded per-sample degradations: how an HR crop becomes the LR input the generator sees.

Every random choice comes from the ``numpy.random.Generator`` passed in, which
the data sets derive from (seed, sample position), so a sample's degradation is
reproducible and a resumed run sees exactly the inputs an uninterrupted one
would.  Order: optional occlusion (HR) -> blur -> downscale by the scale ->
noise -> JPEG -> H.264.  The target stays the clean HR crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from vsr.pipelines.face.geometry import CENTRE_BELOW_EYES, SIDE_PER_EYE_DISTANCE
from vsr.pipelines.train.config import DegradeConfig

# Where the eyes sit in a face crop cut by face_box_from_eyes, as a fraction of its height.
EYE_LINE = 0.5 - CENTRE_BELOW_EYES / SIDE_PER_EYE_DISTANCE


@dataclass
class Degraded:
    """The LR input (h, w, 3) uint8, the occlusion mask on the HR grid (H, W) float32, and what was done."""

    lr: np.ndarray
    mask: np.ndarray
    ops: list[str] = field(default_factory=list)


def downscale(image: np.ndarray, scale: int, kernel: str) -> np.ndarray:
    """Downscale an RGB uint8 image by ``scale``: MATLAB-style cubic/linear (antialiased) or OpenCV area."""
    h, w = image.shape[:2]
    size = (h // scale, w // scale)
    if kernel == "area":
        return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    import torch

    from vsr.models.resample import resize

    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255
    y = resize(x, size, kernel="cubic" if kernel == "cubic" else "linear", antialias=True)
    return (y.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Isotropic Gaussian blur (kernel radius 3 sigma)."""
    k = 2 * math.ceil(3 * sigma) + 1
    return cv2.GaussianBlur(image, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of ``sigma`` (of 255); grey (luma-like) or per-channel, half the time each."""
    h, w = image.shape[:2]
    shape = (h, w, 1) if rng.random() < 0.5 else (h, w, 3)
    noisy = image.astype(np.float32) + rng.normal(0.0, sigma, shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip through OpenCV (RGB in, RGB out)."""
    ok, buf = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode a training crop")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()


def h264(image: np.ndarray, crf: int, rng: np.random.Generator) -> np.ndarray:
    """Real H.264 artefacts: code the image as the last frame of a 3-frame clip that pans by a pixel or two.

    The last frame is then a predicted (P) frame, as most frames in a surveillance stream are.
    """
    from vsr.media.transcode import h264_roundtrip

    shifts = [tuple(int(v) for v in rng.integers(-2, 3, size=2)) for _ in range(2)]
    clip = [_shift(image, dx, dy) for dx, dy in shifts] + [image]
    return h264_roundtrip(clip, crf)[-1]


def _shift(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REPLICATE)


# Where the eyes of a crop cut by face_box_from_eyes are, as fractions of its side (nose and mouth
# corners follow the aligned-chip proportions below the eyes).
_CROP_HALF_EYE = 0.5 / SIDE_PER_EYE_DISTANCE
_KINDS = {"half": "half", "eyes": "eyes", "block": "rect"}


def crop_landmarks(h: int, w: int) -> np.ndarray:
    """The five landmarks (pixels) of a face crop cut by ``face_box_from_eyes``: the occluders' anchor."""
    d = 2 * _CROP_HALF_EYE
    pts = [
        (0.5 - d / 2, 0),
        (0.5 + d / 2, 0),
        (0.5, 0.55 * d),
        (0.5 - 0.42 * d, 0.97 * d),
        (0.5 + 0.42 * d, 0.97 * d),
    ]
    return np.float32([[x * w, (EYE_LINE + y) * h] for x, y in pts])


def occlude(image: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paint a synthetic occluder on an RGB uint8 face crop; return (occluded copy, mask (H, W) float32 in {0, 1}).

    ``half``: a half of the face (profile, hand, mask); ``eyes``: a band over the eye line
    (sunglasses, a bar); ``block``: random rectangles.  Drawn by the restore task's generator
    (``vsr.pipelines.restore.occlusion``), anchored on the crop's eye positions, solid or noise filled.
    """
    from vsr.pipelines.restore.occlusion import occlude as draw

    if kind not in _KINDS:
        raise ValueError(f"unknown occlusion {kind!r}")
    h, w = image.shape[:2]
    fill = ("solid", "noise")[int(rng.integers(2))]
    occ = draw(image, _KINDS[kind], rng, crop_landmarks(h, w), fill)
    return occ.image, occ.mask.astype(np.float32)


def degrade(hr: np.ndarray, scale: int, cfg: DegradeConfig, rng: np.random.Generator) -> Degraded:
    """Make the LR input for an HR crop (RGB uint8, sides divisible by ``scale``) from ``rng``'s draws."""
    img = hr
    mask = np.zeros(hr.shape[:2], np.float32)
    ops: list[str] = []
    if cfg.occlusion_prob > 0 and rng.random() < cfg.occlusion_prob:
        kind = cfg.occlusions[int(rng.integers(len(cfg.occlusions)))]
        img, mask = occlude(img, kind, rng)
        ops.append(f"occlude({kind})")
    if rng.random() < cfg.blur_prob:
        sigma = float(rng.uniform(*cfg.blur_sigma))
        if sigma > 0:
            img = gaussian_blur(img, sigma)
            ops.append(f"blur({sigma:.2f})")
    weights = np.asarray(cfg.kernel_weights, dtype=np.float64)
    kernel = cfg.kernels[int(rng.choice(len(cfg.kernels), p=weights / weights.sum()))]
    img = downscale(img, scale, kernel)
    ops.append(f"down({kernel})")
    if rng.random() < cfg.noise_prob:
        sigma = float(rng.uniform(*cfg.noise_sigma))
        img = add_noise(img, sigma, rng)
        ops.append(f"noise({sigma:.1f})")
    if rng.random() < cfg.jpeg_prob:
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        img = jpeg(img, quality)
        ops.append(f"jpeg({quality})")
    if rng.random() < cfg.h264_prob:
        crf = int(rng.integers(cfg.h264_crf[0], cfg.h264_crf[1] + 1))
        img = h264(img, crf, rng)
        ops.append(f"h264({crf})")
    return Degraded(lr=np.ascontiguousarray(img), mask=mask, ops=ops)
