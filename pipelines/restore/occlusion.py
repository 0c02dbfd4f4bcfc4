"""Seeded synthetic occlusions of faces: the one generator training and ``vsr eval restore`` share.

A mask (H, W) bool, True = missing, comes from a *kind*:

- ``half``: the left, right, top or bottom half of the face, split at the face's own centre
  (the eyes' midpoint for left/right, the nose for top/bottom);
- ``eyes``: a band over both eyes along the eye line (sunglasses, a censor bar);
- ``mouth``: a band over the mouth (a medical mask's upper edge, a hand);
- ``rect``: one to three random rectangles;
- ``strokes``: free-form brush strokes (random walks of thick lines, as in DeepFill v2).

``eyes``, ``mouth`` and ``half`` are placed on the five landmarks of the face detector
(``vsr.pipelines.face.detect``: left eye, right eye, nose, left and right mouth corner).  When no
face is found the landmarks of an *aligned* face chip (UTKFace-style, ``ALIGNED_LANDMARKS``) are
used instead and ``Occlusion.placed`` says ``aligned`` rather than ``landmarks``.

The occluder painted into the mask is ``solid`` (one random colour), ``noise`` (per-pixel random)
or ``texture`` (a patch of another image, e.g. another training face).  Every random draw comes from
the ``numpy.random.Generator`` passed in, so (seed, image) -> the same mask and fill, always.
8- and 16-bit images are both supported; pixels outside the mask are never touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

KINDS = ("half", "eyes", "mouth", "rect", "strokes")
FILLS = ("solid", "noise", "texture")
HALVES = ("left", "right", "top", "bottom")
# `vsr eval restore --occlusion NAME` -> the kinds it draws from.
EVAL_OCCLUSIONS: dict[str, tuple[str, ...]] = {
    "eyes": ("eyes",),
    "half": ("half",),
    "mouth": ("mouth",),
    "random": ("rect", "strokes"),
}
# Median detector landmarks (x, y as fractions of the side) on aligned UTKFace chips: left eye,
# right eye, nose tip, left and right mouth corner.  Measured with the yuface detector on
# the first 100 chips of faces/val (``measure_aligned_landmarks``, upsample 1).
ALIGNED_LANDMARKS = np.array(
    [[0.280, 0.295], [0.675, 0.295], [0.465, 0.510], [0.310, 0.678], [0.645, 0.680]], np.float32
)


@dataclass(frozen=True)
class Occlusion:
    """An occluded copy of an image, its mask (True = missing) and what was drawn."""

    image: np.ndarray
    mask: np.ndarray
    kind: str
    fill: str
    placed: str  # "landmarks" (on the detector's), "aligned" (no face found: aligned-chip positions) or "-"
    detail: str = ""  # e.g. which half


def aligned_landmarks(height: int, width: int) -> np.ndarray:
    """The (5, 2) landmarks of an aligned face chip of this size, in pixels."""
    return ALIGNED_LANDMARKS * np.array([width, height], np.float32)


def _polygon_band(shape: tuple[int, int], a: np.ndarray, b: np.ndarray, half_height: float) -> np.ndarray:
    """A filled rectangle from point ``a`` to point ``b`` (its centre line), ``half_height`` either side."""
    d = b - a
    n = np.array([-d[1], d[0]], np.float32) / max(float(np.hypot(*d)), 1e-6) * half_height
    corners = np.stack([a + n, b + n, b - n, a - n]).round().astype(np.int32)
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, corners, 1)
    return mask.astype(bool)


def _half(shape, lm, rng) -> tuple[np.ndarray, str]:
    h, w = shape
    side = HALVES[int(rng.integers(len(HALVES)))]
    cx = float((lm[0, 0] + lm[1, 0]) / 2 + rng.uniform(-0.02, 0.02) * w)
    cy = float(lm[2, 1] + rng.uniform(-0.02, 0.02) * h)
    mask = np.zeros(shape, bool)
    x, y = int(round(np.clip(cx, 1, w - 1))), int(round(np.clip(cy, 1, h - 1)))
    if side == "left":
        mask[:, :x] = True
    elif side == "right":
        mask[:, x:] = True
    elif side == "top":
        mask[:y] = True
    else:
        mask[y:] = True
    return mask, side


def _eyes(shape, lm, rng) -> np.ndarray:
    left, right = lm[0], lm[1]
    d = right - left
    dist = max(float(np.hypot(*d)), 2.0)
    ext = rng.uniform(0.45, 0.8)  # beyond each eye, in eye distances
    shift = rng.uniform(-0.08, 0.08) * dist
    a, b = left - d * ext, right + d * ext
    a, b = a + np.float32([0, shift]), b + np.float32([0, shift])
    return _polygon_band(shape, a, b, rng.uniform(0.25, 0.4) * dist)


def _mouth(shape, lm, rng) -> np.ndarray:
    left, right = lm[3], lm[4]
    d = right - left
    width = max(float(np.hypot(*d)), 2.0)
    eye_dist = max(float(np.hypot(*(lm[1] - lm[0]))), 2.0)
    ext = rng.uniform(0.25, 0.6)
    shift = np.float32([0, rng.uniform(-0.1, 0.1) * eye_dist])
    return _polygon_band(
        shape,
        left - d * ext + shift,
        right + d * ext + shift,
        rng.uniform(0.3, 0.45) * max(width, eye_dist * 0.8),
    )


def _rects(shape, rng) -> np.ndarray:
    h, w = shape
    mask = np.zeros(shape, bool)
    for _ in range(int(rng.integers(1, 4))):
        bh, bw = max(1, int(rng.uniform(0.15, 0.45) * h)), max(1, int(rng.uniform(0.15, 0.45) * w))
        y0, x0 = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        mask[y0 : y0 + bh, x0 : x0 + bw] = True
    return mask


def _strokes(shape, rng) -> np.ndarray:
    h, w = shape
    side = min(h, w)
    mask = np.zeros(shape, np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        width = max(1, int(rng.uniform(0.04, 0.1) * side))
        for _ in range(int(rng.integers(3, 9))):
            angle = rng.uniform(0, 2 * math.pi)
            length = rng.uniform(0.08, 0.25) * side
            nx = float(np.clip(x + length * math.cos(angle), 0, w - 1))
            ny = float(np.clip(y + length * math.sin(angle), 0, h - 1))
            cv2.line(mask, (int(x), int(y)), (int(nx), int(ny)), 1, width)
            x, y = nx, ny
    return mask.astype(bool)


def make_mask(
    kind: str, shape: tuple[int, int], rng: np.random.Generator, landmarks: np.ndarray | None = None
) -> tuple[np.ndarray, str, str]:
    """(mask (H, W) bool, placed, detail) for one occlusion ``kind`` on an image of ``shape``.

    ``landmarks`` (5, 2) in pixels places eyes/mouth/half bands; None falls back to the aligned
    chip's positions (``placed == "aligned"``).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown occlusion kind {kind!r}; choose from {', '.join(KINDS)}")
    h, w = int(shape[0]), int(shape[1])
    if kind in ("rect", "strokes"):
        mask = _rects((h, w), rng) if kind == "rect" else _strokes((h, w), rng)
        placed, detail = "-", ""
    else:
        placed = "landmarks" if landmarks is not None else "aligned"
        lm = np.asarray(landmarks if landmarks is not None else aligned_landmarks(h, w), np.float32)
        detail = ""
        if kind == "half":
            mask, detail = _half((h, w), lm, rng)
        elif kind == "eyes":
            mask = _eyes((h, w), lm, rng)
        else:
            mask = _mouth((h, w), lm, rng)
    if not mask.any():  # a degenerate draw (landmarks off the image): never return "nothing missing"
        cy, cx, r = h // 2, w // 2, max(1, min(h, w) // 8)
        mask[cy - r : cy + r, cx - r : cx + r] = True
    return mask, placed, detail


def paint(
    image: np.ndarray,
    mask: np.ndarray,
    fill: str,
    rng: np.random.Generator,
    texture: np.ndarray | None = None,
) -> np.ndarray:
    """A copy of ``image`` (H, W[, C], uint8 or uint16) with the masked pixels replaced by an occluder.

    ``texture`` (any size, same channel count, 8-bit) supplies the ``texture`` fill: a random
    crop of it, resized to the image.  Without one, ``texture`` falls back to ``noise``.
    """
    if fill not in FILLS:
        raise ValueError(f"unknown occluder fill {fill!r}; choose from {', '.join(FILLS)}")
    peak = float(np.iinfo(image.dtype).max) if image.dtype.kind == "u" else 1.0
    h, w = image.shape[:2]
    channels = image.shape[2] if image.ndim == 3 else 1
    if fill == "texture" and texture is not None:
        th, tw = texture.shape[:2]
        side = int(rng.integers(max(1, min(th, tw) // 4), min(th, tw) + 1))
        y0, x0 = int(rng.integers(0, th - side + 1)), int(rng.integers(0, tw - side + 1))
        patch = cv2.resize(np.ascontiguousarray(texture[y0 : y0 + side, x0 : x0 + side]), (w, h))
        patch = patch.reshape(h, w, -1).astype(np.float32) / 255.0
        if patch.shape[2] != channels:
            patch = np.repeat(patch.mean(axis=2, keepdims=True), channels, axis=2)
        layer = patch * peak
    elif fill == "solid":
        layer = np.broadcast_to(rng.uniform(0, 1, size=(1, 1, channels)) * peak, (h, w, channels))
    else:
        layer = rng.uniform(0, 1, size=(h, w, channels)) * peak
    layer = np.clip(np.rint(layer), 0, peak).astype(image.dtype).reshape(image.shape)
    out = image.copy()
    out[mask] = layer[mask]
    return out


def occlude(
    image: np.ndarray,
    kind: str,
    rng: np.random.Generator,
    landmarks: np.ndarray | None = None,
    fill: str | None = None,
    texture: np.ndarray | None = None,
) -> Occlusion:
    """Draw an occlusion of ``kind`` (a fill too, unless ``fill`` is given) and paint it on a copy of ``image``."""
    mask, placed, detail = make_mask(kind, image.shape[:2], rng, landmarks)
    fill = fill or FILLS[int(rng.integers(len(FILLS)))]
    if fill == "texture" and texture is None:
        fill = "noise"
    return Occlusion(paint(image, mask, fill, rng, texture), mask, kind, fill, placed, detail)


def detect_landmarks(detector, image: np.ndarray) -> np.ndarray | None:
    """The (5, 2) landmarks of the most confident face ``detector`` finds in an RGB uint8 image, or None."""
    found = [d for d in detector(image) if d.landmarks is not None]
    if not found:
        return None
    best = max(found, key=lambda d: d.score * d.width * d.height)
    return np.asarray(best.landmarks, np.float32).reshape(5, 2)


def measure_aligned_landmarks(detector, images: list[np.ndarray]) -> np.ndarray:
    """Median landmarks (fractions of the side) over aligned chips: how ``ALIGNED_LANDMARKS`` was measured."""
    rows = []
    for image in images:
        lm = detect_landmarks(detector, image)
        if lm is not None:
            rows.append(lm / np.array([image.shape[1], image.shape[0]], np.float32))
    if not rows:
        raise ValueError("no face found in any of the images")
    return np.median(np.stack(rows), axis=0)
