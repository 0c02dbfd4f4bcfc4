"""Face crop geometry shared by training (ChokePoint eye positions) and face mode at inference.

A face box is a square centred a little below the eyes whose side scales with
the eye distance, so a crop cut from ground-truth eyes during training looks
like the crop cut from a detector's box at inference (each detector maps its
boxes to this square, see ``vsr.pipelines.face.detect``).

Face mode then cuts a square window around the box (context margin plus a few
pixels for the model's receptive field, reflected at the frame borders exactly
as the resamplers reflect), and pastes the upscaled face back under a
feathered rounded-square mask after replacing its low frequencies by the
background's, so neither an edge nor a colour shift shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Box side in eye distances, and how far below the eye midpoint the centre sits (in eye distances).
SIDE_PER_EYE_DISTANCE = 3.6
CENTRE_BELOW_EYES = 0.55


@dataclass(frozen=True)
class FaceBox:
    """A square face box in pixel coordinates (float centre and side)."""

    cx: float
    cy: float
    side: float

    def bounds(self) -> tuple[int, int, int, int]:
        """Integer (x0, y0, x1, y1), not clipped to the image."""
        half = self.side / 2
        x0, y0 = int(math.floor(self.cx - half)), int(math.floor(self.cy - half))
        s = int(round(self.side))
        return x0, y0, x0 + s, y0 + s


def face_box_from_eyes(left_eye: tuple[float, float], right_eye: tuple[float, float]) -> FaceBox:
    """The square face box for a pair of eye centres (image coordinates, either order)."""
    (lx, ly), (rx, ry) = left_eye, right_eye
    d = math.hypot(rx - lx, ry - ly)
    if d <= 0:
        raise ValueError("eye positions coincide")
    mx, my = (lx + rx) / 2, (ly + ry) / 2
    return FaceBox(cx=mx, cy=my + CENTRE_BELOW_EYES * d, side=SIDE_PER_EYE_DISTANCE * d)


# -- crop and paste back (face mode at inference) -------------------------------------------------------------

# Context around the face box that the face model sees and the feathered edge of the paste lives in,
# as a fraction of the face box side on each side.
CROP_MARGIN = 0.3
# Half-width of the paste mask's soft edge, as a fraction of the face box half-side: the mask is 1 up to
# (1 - FEATHER) half-sides from the centre and 0 from (1 + FEATHER), so the blend ramp is FEATHER * side
# pixels wide and grows with the face.
FEATHER = 0.2
# Gaussian sigma of the colour correction, as a fraction of the face box side (in output pixels).
COLOUR_SIGMA = 0.1


@dataclass(frozen=True)
class CropWindow:
    """An integer square window of the input frame: ``side`` pixels from (x0, y0); may extend past the borders.

    ``pad`` pixels on each side are extra context for the model, trimmed off after upscaling.
    """

    x0: int
    y0: int
    side: int
    pad: int = 0

    @property
    def inner(self) -> tuple[int, int, int]:
        """(x0, y0, side) of the part that is pasted back, without the context ``pad``."""
        return self.x0 + self.pad, self.y0 + self.pad, self.side - 2 * self.pad


def crop_window(box: FaceBox, margin: float = CROP_MARGIN, pad: int = 0, multiple: int = 4) -> CropWindow:
    """The square window around ``box``: ``margin`` * side context each side, plus ``pad`` px, side rounded up.

    Rounding the side up to a ``multiple`` lets crops of neighbouring sizes share a batch.
    """
    inner = box.side * (1 + 2 * margin)
    side = int(math.ceil((inner + 2 * pad) / multiple) * multiple)
    x0 = int(math.floor(box.cx - side / 2 + 0.5))
    y0 = int(math.floor(box.cy - side / 2 + 0.5))
    return CropWindow(x0=x0, y0=y0, side=side, pad=pad)


def crop_square(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """Cut ``side`` x ``side`` pixels from (x0, y0); parts outside the image are filled by reflection.

    The reflection (``abc|cba``) is the one MATLAB-style resampling and the interpolation models use at
    frame borders, so a crop at the border upscales exactly like the same pixels of the whole frame.
    """
    h, w = image.shape[:2]
    ys = _reflect_indices(np.arange(y0, y0 + side), h)
    xs = _reflect_indices(np.arange(x0, x0 + side), w)
    if ys[0] == y0 and xs[0] == x0 and ys[-1] == y0 + side - 1 and xs[-1] == x0 + side - 1:
        return image[y0 : y0 + side, x0 : x0 + side].copy()
    return image[ys[:, None], xs[None, :]]


def _reflect_indices(idx: np.ndarray, n: int) -> np.ndarray:
    period = 2 * n
    idx = np.remainder(idx, period)
    return np.where(idx >= n, period - 1 - idx, idx)


def feather_mask(side: int, face_side: float, feather: float = FEATHER, power: float = 4.0) -> np.ndarray:
    """A ``side`` x ``side`` float32 paste mask centred in the crop: a rounded square over the face box.

    The mask is 1 inside the superellipse ``|u|^p + |v|^p = (1 - feather)^p`` (u, v in face half-sides),
    falls off as a raised cosine (continuous slope, so no visible edge), and is 0 beyond ``1 + feather``.
    """
    c = (np.arange(side, dtype=np.float32) + 0.5 - side / 2) / (face_side / 2)
    u, v = np.abs(c)[None, :], np.abs(c)[:, None]
    r = (u**power + v**power) ** (1 / power)
    t = np.clip((r - (1 - feather)) / (2 * feather), 0, 1)
    return (0.5 * (1 + np.cos(np.pi * t))).astype(np.float32)


def match_low_frequencies(face: np.ndarray, background: np.ndarray, sigma: float) -> np.ndarray:
    """Replace the face crop's low frequencies (colour, shading) by the background upscale's.

    Both are HxWx3 arrays of the same region; returns float32.  What the face model adds (detail
    finer than ``sigma``) is kept, while any colour cast or brightness drift it introduced is removed,
    so the pasted face meets its surroundings without a colour seam.
    """
    import cv2

    face = face.astype(np.float32)
    diff = background.astype(np.float32) - face
    # The correction is smooth by construction, so blur it at reduced resolution (sigma >= 3 px there)
    # and interpolate back: the same result, without kernels hundreds of taps wide on large faces.
    h, w = diff.shape[:2]
    step = max(1, int(sigma // 3))
    small = (
        diff
        if step == 1
        else cv2.resize(diff, (max(1, w // step), max(1, h // step)), interpolation=cv2.INTER_AREA)
    )
    s = sigma / step
    k = int(2 * math.ceil(3 * s) + 1)
    low = cv2.GaussianBlur(small, (k, k), sigmaX=s, sigmaY=s, borderType=cv2.BORDER_REFLECT)
    if step > 1:
        low = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
    return face + low.reshape(face.shape)


def _overlap(shape: tuple[int, ...], x0: int, y0: int, side: int):
    """(canvas slices, patch slices) where a side x side patch at (x0, y0) lies on a canvas; None if outside."""
    h, w = shape[:2]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + side, w), min(y0 + side, h)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    fx0, fy0 = cx0 - x0, cy0 - y0
    return (
        (slice(cy0, cy1), slice(cx0, cx1)),
        (slice(fy0, fy0 + cy1 - cy0), slice(fx0, fx0 + cx1 - cx0)),
    )


def paste_back(
    canvas: np.ndarray, face: np.ndarray, x0: int, y0: int, mask: np.ndarray, alpha: float = 1.0
) -> None:
    """Blend ``face`` (float or int, side x side x 3) into ``canvas`` at (x0, y0) with ``mask`` * ``alpha``, in place.

    Parts outside the canvas are dropped; the result is rounded and clipped to the canvas dtype.
    """
    where = _overlap(canvas.shape, x0, y0, face.shape[0])
    if where is None:
        return
    on_canvas, on_face = where
    m = mask[on_face][..., None] * np.float32(alpha)
    region = canvas[on_canvas].astype(np.float32)
    src = face[on_face].astype(np.float32)
    peak = np.iinfo(canvas.dtype).max if canvas.dtype.kind in "ui" else None
    blended = region + m * (src - region)
    if peak is not None:
        blended = np.clip(np.rint(blended), 0, peak)
    canvas[on_canvas] = blended.astype(canvas.dtype)


def paste_weight(weight: np.ndarray, x0: int, y0: int, mask: np.ndarray, alpha: float = 1.0) -> None:
    """Record in ``weight`` (H x W float, in place) the share of each pixel that ``paste_back`` with the
    same arguments replaced: faces pasted one over another compose as ``w + m (1 - w)``."""
    where = _overlap(weight.shape, x0, y0, mask.shape[0])
    if where is None:
        return
    on_canvas, on_mask = where
    region = weight[on_canvas]
    region += mask[on_mask] * np.float32(alpha) * (1 - region)
