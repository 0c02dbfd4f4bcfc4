"""Face crop geometry shared by training (ChokePoint eye positions) and face mode at inference.

A face box is a square centred a little below the eyes whose side scales with
the eye distance, so a crop cut from ground-truth eyes during training looks
like the crop cut from a detector's landmarks at inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
