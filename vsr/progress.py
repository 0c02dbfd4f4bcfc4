"""Progress on stderr: a rich bar on a terminal, periodic plain lines otherwise, nothing when quiet.

One class for every long job (enhance counts frames, train counts steps).  Batch jobs and CI logs
get one line every few seconds instead of a redrawn bar.  Results that scripts read never go here:
they go to stdout or a JSON report.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    """Count work from ``start`` towards an optional ``total``; use as a context manager.

    Rate and ETA are measured from ``begin()`` (call it when the work itself starts, after loading
    models) or, without it, from the first unit reported: start-up time never counts.  ``total`` may be
    set later (once the input is probed); the live bar picks it up.

    Args:
        label: shown before every line ("enhance", "train").
        total: units of work in all, or None when unknown.
        unit: what is counted ("frames", "steps").
        quiet: print nothing.
        every: seconds between plain lines.
        start: units already done before this run (a resumed training run); they count in the bar, not
            in the rate.
        stream: where to write (stderr by default).
        live: force the rich bar on (True) or off (False); default: on when ``stream`` is a terminal.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        unit: str = "frames",
        quiet: bool = False,
        every: float = 5.0,
        start: int = 0,
        stream: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        self.label, self.unit, self.quiet, self.every = label, unit, quiet, every
        self._total = total
        self.start = self.done = start
        self.stream = stream or sys.stderr
        self.live = (not quiet) and (self.stream.isatty() if live is None else live)
        self.fields: dict[str, Any] = {}
        self._last_line = time.monotonic()
        self._t0: float | None = None  # when the rate clock started (begin or first unit)
        self._base = start  # units done when it started
        self._rich = None
        self._task = None
        self._last_done: int | None = None

    @property
    def total(self) -> int | None:
        """Units of work in all (None: unknown)."""
        return self._total

    @total.setter
    def total(self, value: int | None) -> None:
        self._total = value
        if self._rich is not None:
            self._rich.update(self._task, total=value)

    def begin(self) -> None:
        """Start the rate clock now: the work starts (models are loaded, the first frame is coming)."""
        self._t0 = time.monotonic()
        self._base = self.done

    def __enter__(self) -> Progress:
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[eta]}"),  # ours, not rich's: the same clock as the plain lines
                TextColumn("{task.fields[extra]}"),
                console=Console(file=self.stream),
                transient=False,
            )
            self._rich.start()
            self._task = self._rich.add_task(
                self.label, total=self.total, completed=self.start, rate="", eta="", extra=""
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()

    @property
    def elapsed(self) -> float:
        """Seconds since the rate clock started (0 before it has)."""
        return 0.0 if self._t0 is None else time.monotonic() - self._t0

    @property
    def rate(self) -> float:
        """Units per second since the rate clock started (0 before any unit has been timed)."""
        elapsed = self.elapsed
        return (self.done - self._base) / elapsed if elapsed > 0 else 0.0

    def update(self, n: int = 1, **fields: Any) -> None:
        """Add ``n`` units of work; ``fields`` (e.g. losses) are shown beside the rate."""
        self.set(self.done + n, **fields)

    def set(self, done: int, **fields: Any) -> None:
        """Report that ``done`` units are complete in all."""
        if self._t0 is None:  # the first report: its units took start-up time too, so the clock starts here
            self._t0, self._base = time.monotonic(), done
        self.done = done
        self.fields.update(fields)
        if self.quiet:
            return
        extra = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.fields.items()
        )
        if self._rich is not None:
            rate = f"{self.rate:.2f} {self.unit}/s"
            self._rich.update(self._task, completed=done, rate=rate, eta=self.eta, extra=extra)
            return
        now = time.monotonic()
        finished = done == self.total and self._last_done != done
        if now - self._last_line >= self.every or finished:
            self._last_done = done
            self._last_line = now
            total = f"/{self.total}" if self.total else ""
            eta = f" {self.eta}" if self.eta else ""
            self.line(f"{done}{total} {self.unit} {self.rate:.2f}/s{eta} {extra}".rstrip())

    @property
    def eta(self) -> str:
        """``eta 1m20s`` from the measured rate, ``eta ?`` before there is one, empty without a total."""
        if not self.total:
            return ""
        rate = self.rate
        return f"eta {_duration(max(0, self.total - self.done) / rate)}" if rate > 0 else "eta ?"

    def line(self, text: str) -> None:
        """A one-off line, prefixed with the label (not when quiet)."""
        if self.quiet:
            return
        if self._rich is not None:
            self._rich.console.print(f"{self.label}: {text}", markup=False, highlight=False)
        else:
            print(f"{self.label}: {text}", file=self.stream, flush=True)
