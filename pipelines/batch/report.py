"""The batch report (``--report FILE.json``): every file's outcome, counts and the run's settings."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vsr.atomic import write_atomic

# A file's final status: done (this run), skipped (done before), recovered (finished before a crash,
# recorded now), failed (a permanent error or retries spent), quarantined (killed its worker every
# attempt), planned (--dry-run: would run).
STATUSES = ("done", "skipped", "recovered", "failed", "quarantined", "planned")


def report_dict(result: Any) -> dict[str, Any]:
    """An enhance result as a dict, whether ``enhance`` returned a dict or a report object with ``to_dict``."""
    if result is None:
        return {}
    if isinstance(result, dict):
        return result
    return result.to_dict()


@dataclass
class FileResult:
    """One input's outcome."""

    input: str
    output: str
    status: str
    reason: str = ""  # why it ran or was skipped ("new", "changed: options.scale", "done")
    attempts: int = 0
    error_class: str | None = None
    error: str | None = None
    frames: int | None = None
    seconds: float | None = None
    worker: str | None = None
    origin: str = "argument"


@dataclass
class BatchReport:
    """What ``vsr batch`` did; ``failed`` decides the exit code (3 when any file failed)."""

    engine: str
    out_dir: str
    ledger: str
    files: list[FileResult] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    removed_temporaries: list[str] = field(default_factory=list)
    workers: int = 0
    seconds: float = 0.0
    dry_run: bool = False

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)

    @property
    def counts(self) -> dict[str, int]:
        return {s: self.count(s) for s in STATUSES if self.count(s)}

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status in ("failed", "quarantined")]

    @property
    def frames(self) -> int:
        return sum(f.frames or 0 for f in self.files if f.status == "done")

    def summary(self) -> str:
        """One line: counts, frames and time."""
        parts = [f"{n} {s}" for s, n in self.counts.items()] or ["nothing to do"]
        tail = f", {self.frames} frames in {self.seconds:.1f}s" if self.frames else f" in {self.seconds:.1f}s"
        return f"{len(self.files)} file(s): {', '.join(parts)}{tail}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["counts"] = self.counts
        d["frames"] = self.frames
        return d

    def write(self, path: Path) -> None:
        """Write the report as JSON, atomically."""
        write_atomic(Path(path), json.dumps(self.to_dict(), indent=2, default=str) + "\n")
