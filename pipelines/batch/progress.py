"""Batch progress on stderr: an overall bar and one line per worker on a terminal, JSON lines otherwise.

The overall bar counts frames (ETA by frames, not files: one long video is most of a night), with the
files done / skipped / failed beside it; each worker's line shows the file it is on.  When stderr is not
a terminal (cron, CI) every finished file and, every few seconds, the totals are one JSON object a line.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO


class BatchProgress:
    """Totals for a batch; use as a context manager.  ``files`` maps status -> count already known."""

    def __init__(
        self,
        total_files: int,
        total_frames: int,
        files: dict[str, int] | None = None,
        quiet: bool = False,
        stream: TextIO | None = None,
        live: bool | None = None,
        every: float = 5.0,
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet, self.every = quiet, every
        self.live = (not quiet) and (self.stream.isatty() if live is None else live)
        self.total_files, self.total_frames = total_files, total_frames
        self.files = {"done": 0, "skipped": 0, "failed": 0, **(files or {})}
        self.frames_done = 0
        self._partial: dict[str, int] = {}  # worker -> frames of its current file
        self._current: dict[str, tuple[str, int]] = {}  # worker -> (file name, expected frames)
        self._t0 = self._last = time.monotonic()
        self._rich = None
        self._overall = None
        self._worker_tasks: dict[str, Any] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def __enter__(self) -> BatchProgress:
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._rich = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:.0f}/{task.total:.0f} frames"),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
            )
            self._rich.start()
            self._overall = self._rich.add_task(self._counts(), total=max(1, self.total_frames), rate="")
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()
        elif not self.quiet and exc_type is None:
            self._json("summary")

    # -- events ------------------------------------------------------------------------------------------------
    @property
    def fps(self) -> float:
        elapsed = time.monotonic() - self._t0
        return self._frames_now / elapsed if elapsed > 0 else 0.0

    @property
    def _frames_now(self) -> int:
        return self.frames_done + sum(self._partial.values())

    def started(self, worker: str, name: str, frames: int) -> None:
        """``worker`` begins ``name`` (expected ``frames``)."""
        self._current[worker] = (name, frames)
        self._partial[worker] = 0
        if self._rich is not None:
            if worker not in self._worker_tasks:
                self._worker_tasks[worker] = self._rich.add_task("", total=1, rate="")
            self._rich.update(
                self._worker_tasks[worker],
                description=f"  {worker}: {name}",
                total=max(1, frames),
                completed=0,
            )
        self._tick()

    def frames(self, worker: str, n: int) -> None:
        self._partial[worker] = self._partial.get(worker, 0) + n
        if self._rich is not None and worker in self._worker_tasks:
            self._rich.update(self._worker_tasks[worker], completed=self._partial[worker])
        self._tick()

    def finished(self, worker: str | None, status: str, row: dict[str, Any], final: bool) -> None:
        """An attempt ended; ``final`` when the file will not be tried again."""
        name, expected = self._current.pop(worker, ("", 0)) if worker else ("", 0)
        partial = self._partial.pop(worker, 0) if worker else 0
        if status == "done":
            self.frames_done += int(row.get("frames") or partial)
        elif final:
            self.total_frames = max(0, self.total_frames - expected)  # those frames will never be done
        if final:
            key = "failed" if status in ("failed", "quarantined") else status
            self.files[key] = self.files.get(key, 0) + 1
        if self._rich is not None:
            if worker in self._worker_tasks:
                self._rich.update(self._worker_tasks[worker], description=f"  {worker}: idle", completed=0)
            if status != "done" and not self.quiet:
                error = f"{row.get('error_class')}: {row.get('error')}"
                self._rich.console.print(f"batch: {name}: {status}: {error}", markup=False, highlight=False)
        elif not self.quiet:
            self._json(
                "file",
                file=name,
                status=status,
                worker=worker,
                **{
                    k: row.get(k)
                    for k in ("attempt", "frames", "seconds", "error_class", "error")
                    if row.get(k) is not None
                },
            )
        self._tick(force=True)

    # -- output ------------------------------------------------------------------------------------------------
    def _counts(self) -> str:
        f = self.files
        return f"batch {f['done']} done, {f['skipped']} skipped, {f['failed']} failed of {self.total_files}"

    def _tick(self, force: bool = False) -> None:
        if self.quiet:
            return
        if self._rich is not None:
            self._rich.update(
                self._overall,
                description=self._counts(),
                total=max(1, self.total_frames),
                completed=self._frames_now,
                rate=f"{self.fps:.1f} frames/s",
            )
            return
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self._last = now
            self._json("progress")

    def _json(self, event: str, **fields: Any) -> None:
        remaining = max(0, self.total_frames - self._frames_now)
        fps = self.fps
        record = {
            "event": event,
            **fields,
            "files": dict(self.files),
            "files_total": self.total_files,
            "frames_done": self._frames_now,
            "frames_total": self.total_frames,
            "fps": round(fps, 2),
            "eta_s": round(remaining / fps, 1) if fps > 0 else None,
            "workers": {w: name for w, (name, _) in self._current.items()},
        }
        if event == "file":
            record = {k: v for k, v in record.items() if k not in ("workers",)}
        print(json.dumps(record, default=str), file=self.stream, flush=True)
