"""Progress on stderr: a rich bar on a terminal, periodic plain lines otherwise, nothing when quiet.

Batch jobs and CI logs get one line every few seconds instead of a redrawn bar.
Results that scripts read never go here: they go to stdout or a JSON report.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """Count work done towards an optional total; use as a context manager."""

    def __init__(self, label: str, total: int | None, unit: str = "frames", quiet: bool = False, every: float = 5.0) -> None:
        self.label, self.total, self.unit, self.quiet, self.every = label, total, unit, quiet, every
        self.done = 0
        self.fields: dict[str, Any] = {}
        self._start = time.perf_counter()
        self._last_line = self._start
        self._rich = None
        self._task = None

    def __enter__(self) -> Progress:
        if not self.quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

            self._rich = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[extra]}"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False,
            )
            self._rich.start()
            self._task = self._rich.add_task(self.label, total=self.total, rate="", extra="")
        return self

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.stop()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def update(self, n: int = 1, **fields: Any) -> None:
        """Add ``n`` units of work; ``fields`` (e.g. losses) are shown beside the rate."""
        self.done += n
        self.fields.update(fields)
        if self.quiet:
            return
        extra = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.fields.items())
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done, rate=f"{self.rate:.1f} {self.unit}/s", extra=extra)
            return
        now = time.perf_counter()
        if now - self._last_line >= self.every:
            self._last_line = now
            total = f"/{self.total}" if self.total else ""
            eta = ""
            if self.total and self.rate > 0:
                eta = f" eta {max(0.0, (self.total - self.done) / self.rate):.0f}s"
            print(f"{self.label}: {self.done}{total} {self.unit} {self.rate:.1f}/s{eta} {extra}".rstrip(), file=sys.stderr, flush=True)

    def line(self, text: str) -> None:
        """Print a one-off line (not when quiet)."""
        if self.quiet:
            return
        if self._rich is not None:
            self._rich.console.print(text)
        else:
            print(text, file=sys.stderr, flush=True)
