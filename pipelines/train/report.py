"""What a training run reports: a progress display on stderr and ``metrics.csv``.

On a terminal the progress is a rich bar (it/s, losses, ETA); otherwise it is a
plain line every ``every_s`` seconds, which reads well in batch-job logs.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from pathlib import Path
from typing import TextIO

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
    "val_psnr",
    "val_ssim",
    "val_psnr_bicubic",
    "val_ssim_bicubic",
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


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class TrainProgress:
    """Progress of steps ``start..total`` on stderr: rich bar on a TTY, periodic plain lines otherwise."""

    def __init__(
        self,
        total: int,
        start: int = 0,
        live: bool | None = None,
        every_s: float = 30.0,
        stream: TextIO | None = None,
    ) -> None:
        self.total, self.start, self.every_s = total, start, every_s
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._t0 = self._last_print = time.monotonic()
        self._bar = None
        self._task = None

    def __enter__(self) -> TrainProgress:
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("train", total=self.total, completed=self.start, rate="", info="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def rate(self, step: int) -> float:
        """Steps per second since this run started."""
        elapsed = time.monotonic() - self._t0
        return (step - self.start) / elapsed if elapsed > 0 else 0.0

    def update(self, step: int, losses: dict[str, float]) -> None:
        """Report that ``step`` steps are done, with the latest losses."""
        rate = self.rate(step)
        info = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
        if self._bar is not None:
            self._bar.update(self._task, completed=step, rate=f"{rate:.2f} it/s", info=info)
            return
        now = time.monotonic()
        if now - self._last_print >= self.every_s or step == self.total:
            self._last_print = now
            eta = _duration((self.total - step) / rate) if rate > 0 else "?"
            self.note(f"step {step}/{self.total} {rate:.2f} it/s eta {eta} {info}".rstrip())

    def note(self, message: str) -> None:
        """A one-off line (validation results, checkpoint written, warnings)."""
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)
        else:
            print(f"vsr train: {message}", file=self.stream, flush=True)
