"""A PNG comparison grid for ``vsr eval --grid``: one row per example, LR | bicubic | lanczos | model | HR.

Each row shows the same central crop (at most ``CROP`` HR pixels square) of
every column; the LR is enlarged with nearest-neighbour so its pixels stay
visible.  Rows of different sizes are padded with black, never resampled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vsr.errors import OutputError

CROP = 192
HEADER = 22
GAP = 4
COLUMNS = ("LR", "bicubic", "lanczos", "model", "HR")


def _crop_box(h: int, w: int, scale: int) -> tuple[int, int, int]:
    side = min(CROP, h, w)
    side -= side % scale
    return (h - side) // 2 // scale * scale, (w - side) // 2 // scale * scale, side


def _row(example: dict[str, np.ndarray], scale: int) -> list[np.ndarray]:
    hr = example["HR"]
    top, left, side = _crop_box(hr.shape[0], hr.shape[1], scale)
    lr_big = np.repeat(np.repeat(example["LR"], scale, axis=0), scale, axis=1)
    if lr_big.shape != hr.shape:  # a degraded LR always has HR/S sides, but be safe
        lr_big = np.zeros_like(hr)
    cells = {**example, "LR": lr_big}
    return [cells[c][top : top + side, left : left + side] for c in COLUMNS]


def compose_grid(examples: list[dict[str, np.ndarray]], scale: int, model_name: str) -> np.ndarray:
    """The grid as one RGB uint8 image, with a header naming the columns."""
    import cv2

    if not examples:
        raise ValueError("no examples to draw")
    rows = [_row(e, scale) for e in examples]
    cell = max(max(c.shape[0] for c in r) for r in rows), max(max(c.shape[1] for c in r) for r in rows)
    width = len(COLUMNS) * (cell[1] + GAP) - GAP
    height = HEADER + len(rows) * (cell[0] + GAP) - GAP
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    labels = [*COLUMNS[:3], f"model: {Path(model_name).name}"[:26], COLUMNS[4]]
    for j, label in enumerate(labels):
        x = j * (cell[1] + GAP) + 3
        cv2.putText(
            canvas, label, (x, HEADER - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA
        )
    for i, row in enumerate(rows):
        y = HEADER + i * (cell[0] + GAP)
        for j, c in enumerate(row):
            x = j * (cell[1] + GAP)
            canvas[y : y + c.shape[0], x : x + c.shape[1]] = c
    return canvas


def check_grid_path(path: Path) -> Path:
    """Fail early (before any work) when the grid could not be written to ``path``."""
    if path.suffix.lower() != ".png":
        raise OutputError(f"--grid {path}: the grid is written as PNG; give a .png file name")
    if not path.parent.is_dir():
        raise OutputError(f"--grid {path}: folder {path.parent} does not exist; create it first")
    return path


def write_grid(path: Path, examples: list[dict[str, np.ndarray]], scale: int, model_name: str) -> Path:
    """Write the grid as PNG to ``path`` (atomically, by ``vsr.media.image``); ``OutputError`` when it
    cannot be written."""
    from vsr.media.image import write_image

    check_grid_path(path)
    write_image(path, compose_grid(examples, scale, model_name))
    return path
