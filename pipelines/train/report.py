"""What a training run records: ``metrics.csv`` (progress on stderr is ``vsr.progress.Progress``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

COLUMNS = (
    "step",
    "lr",
    "loss_pixel",
    "loss_adv",
    "loss_fm",
    "loss_perceptual",
    "loss_g",
    "loss_d",
    "d_real",
    "d_fake",
    "grad_norm",
    "d_acc_real",
    "d_acc_fake",
    "div_ratio",
    "val_psnr",
    "val_ssim",
    "val_psnr_bicubic",
    "val_ssim_bicubic",
    "val_psnr_masked",
    "val_ssim_masked",
    "val_div",
    "it_s",
    "skipped",
)


def _fmt(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value) if isinstance(value, int) else f"{value:.6g}"


class MetricsCSV:
    """``metrics.csv``: one row per logged step, fixed columns (empty where a value does not apply).

    On resume, rows after the resumed step are dropped: the run logs them again.
    """

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        kept: list[list[str]] = []
        if resume_step is not None and path.is_file():
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            if rows and tuple(rows[0]) == COLUMNS:
                kept = [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= resume_step]
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows(kept)

    def write(self, row: dict[str, float | int | None]) -> None:
        """Append one row (keys from ``COLUMNS``)."""
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise KeyError(f"unknown metrics columns: {sorted(unknown)}")
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([_fmt(row.get(c)) for c in COLUMNS])
