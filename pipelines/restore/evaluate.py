"""``vsr eval restore DIR --occlusion eyes|half|mouth|random``: our inpainting vs OpenCV's Telea and NS.

Protocol, per image ``i`` of DIR (sorted names; aligned face chips such as UTKFace's):

1. the chip resized to the model's side (``--size``, area interpolation), as in training;
2. one occlusion drawn by the shared generator (``occlusion.occlude``) from
   ``numpy.random.default_rng([seed, i])``: its kind from the ``--occlusion`` set, eye/mouth/half
   bands placed on the detector's landmarks of the chip (the aligned-chip positions when no face is
   found, counted in ``placed``), a random fill (textures: a patch of the next image);
3. restored by the model exactly as ``vsr restore --no-detect`` does (the chip is the face), and by
   ``cv2.inpaint`` with Telea and Navier-Stokes (radius ``--radius``, default ``max(3, side // 20)``);
4. measured on RGB, 8-bit: PSNR and SSIM inside the mask and over the image (``measure.measure``).

Scores are means over images of the per-image values (dB for PSNR); an infinite PSNR is null in JSON.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vsr.errors import InputError, UsageError
from vsr.pipelines.restore.measure import KEYS

GRID_ROWS = 6
GRID_COLUMNS = ("occluded", "Telea", "NS", "ours", "original")


@dataclass
class Scores:
    """Mean scores of one method."""

    psnr_masked: float | None = None
    ssim_masked: float | None = None
    psnr: float | None = None
    ssim: float | None = None


@dataclass
class RestoreEvalReport:
    """What ``vsr eval restore --json`` prints: the model's scores at the top level, the baselines beside."""

    occlusion: str
    source: str
    model: str
    size: int
    seed: int
    radius: int
    images: int = 0
    psnr_masked: float | None = None
    ssim_masked: float | None = None
    psnr: float | None = None
    ssim: float | None = None
    baselines: dict[str, Scores] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    placed: dict[str, int] = field(default_factory=dict)
    mask_fraction: float = 0.0
    skipped: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _mean(values: list[float]) -> float | None:
    if not values:
        return None
    m = float(np.mean(values))
    return None if math.isinf(m) else round(m, 4)


def baseline_inpaint(image: np.ndarray, mask: np.ndarray, method: str, radius: int) -> np.ndarray:
    """OpenCV inpainting (``telea`` or ``ns``) of an RGB uint8 image."""
    import cv2

    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    return cv2.inpaint(image, mask.astype(np.uint8), radius, flag)


def evaluate_restore(
    directory: Path,
    occlusion: str,
    model: str = "restore-face",
    size: int | None = None,
    seed: int = 0,
    limit: int | None = None,
    radius: int | None = None,
    grid: Path | None = None,
    detector: str = "auto",
    device: str = "auto",
) -> RestoreEvalReport:
    """Run the protocol above over DIR; write the grid (occluded | Telea | NS | ours | original) if asked."""
    from vsr.pipelines.evaluate.grid import check_grid_path
    from vsr.pipelines.face.detect import make_detector
    from vsr.pipelines.restore.measure import measure
    from vsr.pipelines.restore.occlusion import EVAL_OCCLUSIONS, detect_landmarks, occlude
    from vsr.pipelines.restore.run import RestoreOptions, Restorer
    from vsr.pipelines.restore.task import PLACED_KINDS, to_chip
    from vsr.pipelines.train.data import IMAGE_SUFFIXES, UnreadableImage, read_rgb

    start = time.perf_counter()
    if occlusion not in EVAL_OCCLUSIONS:
        raise UsageError(f"--occlusion must be one of {', '.join(EVAL_OCCLUSIONS)}, got {occlusion!r}")
    if not directory.is_dir():
        raise InputError(f"evaluation folder not found: {directory}")
    if grid is not None:
        check_grid_path(grid)
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if limit is not None:
        files = files[:limit]
    if not files:
        raise InputError(f"{directory} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    options = RestoreOptions(model=model, detect=False, device=device)
    if size is not None:
        options.side = size
    restorer = Restorer(options)
    side = restorer.side
    radius = radius if radius is not None else max(3, side // 20)
    det = make_detector(detector, upsample=1)
    kinds = EVAL_OCCLUSIONS[occlusion]
    report = RestoreEvalReport(occlusion, str(directory), restorer.model_name, side, seed, radius)
    scores: dict[str, dict[str, list[float]]] = {m: {k: [] for k in KEYS} for m in ("ours", "telea", "ns")}
    rows: list[list[np.ndarray]] = []
    fractions = []
    chips: dict[int, np.ndarray] = {}

    def chip_of(i: int) -> np.ndarray:
        if i not in chips:
            chips[i] = to_chip(read_rgb(files[i]), side)
        return chips[i]

    for i in range(len(files)):
        try:
            chip = chip_of(i)
        except UnreadableImage:
            report.skipped += 1
            continue
        rng = np.random.default_rng([seed, i])
        kind = kinds[int(rng.integers(len(kinds)))]
        landmarks = detect_landmarks(det, chip) if kind in PLACED_KINDS else None
        texture = None
        if len(files) > 1:
            try:
                texture = chip_of((i + 1) % len(files))
            except UnreadableImage:
                texture = None
        occ = occlude(chip, kind, rng, landmarks, None, texture)
        report.kinds[kind] = report.kinds.get(kind, 0) + 1
        report.placed[occ.placed] = report.placed.get(occ.placed, 0) + 1
        fractions.append(float(occ.mask.mean()))
        outputs = {
            "ours": restorer.restore(occ.image, occ.mask),
            "telea": baseline_inpaint(occ.image, occ.mask, "telea", radius),
            "ns": baseline_inpaint(occ.image, occ.mask, "ns", radius),
        }
        for method, out in outputs.items():
            for k, v in measure(out, chip, occ.mask).items():
                scores[method][k].append(v)
        if grid is not None and len(rows) < GRID_ROWS:
            rows.append([occ.image, outputs["telea"], outputs["ns"], outputs["ours"], chip])
        report.images += 1
    if not report.images:
        raise InputError(f"none of the images in {directory} could be read")
    for k in KEYS:
        setattr(report, k, _mean(scores["ours"][k]))
    report.baselines = {m: Scores(**{k: _mean(scores[m][k]) for k in KEYS}) for m in ("telea", "ns")}
    report.mask_fraction = round(float(np.mean(fractions)), 4)
    if grid is not None:
        write_restore_grid(grid, rows)
    report.seconds = round(time.perf_counter() - start, 2)
    return report


def compose_restore_grid(rows: list[list[np.ndarray]], zoom: int = 2) -> np.ndarray:
    """Rows of equal-size RGB tiles (enlarged ``zoom`` x, nearest) under a header naming ``GRID_COLUMNS``."""
    import cv2

    header, gap = 18, 3
    tiles = [[np.repeat(np.repeat(t, zoom, 0), zoom, 1) for t in row] for row in rows]
    th, tw = tiles[0][0].shape[:2]
    canvas = np.zeros(
        (header + len(rows) * (th + gap) - gap, len(GRID_COLUMNS) * (tw + gap) - gap, 3), np.uint8
    )
    for j, label in enumerate(GRID_COLUMNS):
        cv2.putText(
            canvas,
            label,
            (j * (tw + gap) + 3, header - 5),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    for i, row in enumerate(tiles):
        for j, t in enumerate(row):
            y, x = header + i * (th + gap), j * (tw + gap)
            canvas[y : y + th, x : x + tw] = t
    return canvas


def write_restore_grid(path: Path, rows: list[list[np.ndarray]]) -> None:
    """The grid as PNG (atomically, by ``vsr.media.image``)."""
    from vsr.media.image import write_image

    write_image(path, compose_restore_grid(rows))
