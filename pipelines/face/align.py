"""Aligned face restoration: GFPGAN / RestoreFormer in face mode.

Such restorers were trained on 512 x 512 faces aligned to the FFHQ five-point template, so a face crop
is not fed as it is.  For each crop:

1. the detector's five landmarks (or, from a detector without landmarks, the eyes implied by the face
   box) give a similarity transform onto the template (``similarity_transform``);
2. the low-resolution crop is warped into the aligned 512 x 512 square and restored (batched);
3. the result is warped back to the crop's high-resolution size, with a coverage mask (1 inside the
   aligned square, feathered at its edge, 0 outside) that the face stage multiplies into its paste mask,
   so the background upscale stays wherever the restorer saw nothing.

The face stage then matches low frequencies and feathers as for any face model.  These restorers are
generative: they invent facial detail, which the run report and summary say.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vsr.pipelines.face.geometry import CENTRE_BELOW_EYES, SIDE_PER_EYE_DISTANCE, FaceBox

# FFHQ alignment template at 512 px: the eye on the image's left, the other eye, nose tip, left and right
# mouth corners (the detectors' landmark order, see ``vsr.pipelines.face.detect.Detection``).
FFHQ_TEMPLATE_512 = np.array(
    [[192.98, 239.95], [318.90, 240.19], [256.63, 314.02], [201.26, 371.41], [313.09, 371.15]],
    dtype=np.float32,
)
# Width of the coverage mask's soft edge, as a fraction of the aligned square's side.
COVERAGE_FEATHER = 0.06


def crop_landmarks(landmarks: np.ndarray | None, box: FaceBox, x0: float, y0: float) -> np.ndarray:
    """Landmarks in crop coordinates: the detector's five, else the two eyes the face box implies."""
    if landmarks is not None:
        return np.asarray(landmarks, dtype=np.float32).reshape(-1, 2) - np.float32([x0, y0])
    d = box.side / SIDE_PER_EYE_DISTANCE
    mx, my = box.cx - x0, box.cy - y0 - CENTRE_BELOW_EYES * d
    return np.array([[mx - d / 2, my], [mx + d / 2, my]], dtype=np.float32)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) taking points ``src`` onto ``dst`` (2 x 3).

    The closed form (Umeyama 1991, without reflection; what insightface's ``norm_crop`` fits): exact
    for two points, deterministic, no random sampling.  The one face alignment of vsr: the aligned
    face restorers here and ``vsr restore`` both use it.  ``ValueError`` when ``src`` has no spread.
    """
    src, dst = np.asarray(src, np.float64).reshape(-1, 2), np.asarray(dst, np.float64).reshape(-1, 2)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    a = (s * d).sum()  # sum of dot products
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()  # sum of cross products
    norm = (s * s).sum()
    if not norm > 1e-12:
        raise ValueError("degenerate landmarks: all points coincide")
    c, t = a / norm, b / norm
    rot = np.array([[c, -t], [t, c]], np.float64)
    return np.hstack([rot, (mu_d - rot @ mu_s)[:, None]])


def alignment(points_hr: np.ndarray, size: int) -> np.ndarray:
    """2 x 3 similarity transform from high-resolution crop coordinates onto the ``size`` template."""
    template = FFHQ_TEMPLATE_512[: len(points_hr)] * (size / 512)
    return similarity_transform(points_hr, template)


def coverage_mask(size: int, feather: float = COVERAGE_FEATHER) -> np.ndarray:
    """``size`` x ``size`` float32: 1 inside, a raised-cosine ramp ``feather * size`` wide at the edges."""
    ramp = max(1.0, feather * size)
    d = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32) + 0.5
    edge = 0.5 - 0.5 * np.cos(np.pi * np.clip(d / ramp, 0, 1))
    return (edge[:, None] * edge[None, :]).astype(np.float32)


class FaceRestorer:
    """A fixed-size face restorer as the face stage's face model: align, restore, warp back.

    ``restorer`` runs lists of ``size`` x ``size`` RGB images (an ``Upscaler`` of a 1x model).  Reports and
    fingerprints read that Upscaler, which ``BuiltStage.upscalers`` holds; this wraps only what the face
    stage calls.
    """

    def __init__(self, restorer: Callable[[list[np.ndarray]], list[np.ndarray]], name: str, size: int = 512):
        self.restorer = restorer
        self.name = name
        self.size = size
        self.overlap = 4  # context pixels the stage adds around crops (no receptive field to serve here)
        self._coverage = coverage_mask(size)

    def restore(
        self, crops: list[np.ndarray], landmarks: list[np.ndarray], scale: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per crop (LR, side x side) and its landmarks (crop coordinates): (HR face, HR coverage mask)."""
        import cv2

        if not crops:
            return []
        matrices, aligned = [], []
        for crop, points in zip(crops, landmarks, strict=True):
            points_hr = (points * scale + (scale - 1) / 2).astype(
                np.float32
            )  # LR pixel u -> HR u*s + (s-1)/2
            matrix = alignment(points_hr, self.size)
            lr_matrix = matrix.copy()
            lr_matrix[:, :2] *= scale  # the same map applied to LR coordinates
            lr_matrix[:, 2] += matrix[:, :2] @ np.full(2, (scale - 1) / 2)
            aligned.append(
                cv2.warpAffine(
                    crop,
                    lr_matrix,
                    (self.size, self.size),
                    flags=cv2.INTER_CUBIC,
                    borderMode=cv2.BORDER_REFLECT,
                )
            )
            matrices.append(matrix)
        restored = self.restorer(aligned)
        out = []
        for crop, matrix, face in zip(crops, matrices, restored, strict=True):
            side = crop.shape[0] * scale
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            back = cv2.warpAffine(face, matrix, (side, side), flags=flags, borderMode=cv2.BORDER_REPLICATE)
            cover = cv2.warpAffine(self._coverage, matrix, (side, side), flags=flags, borderValue=0.0)
            out.append((back, cover))
        return out
