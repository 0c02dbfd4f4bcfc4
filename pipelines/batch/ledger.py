"""``ledger.jsonl`` in the out dir: one JSON line per attempt, appended, flushed and fsynced.

The ledger is the batch's memory across runs and crashes: nothing in it is ever rewritten.  A line torn
by a crash (power cut, ``kill -9`` mid-write) is skipped when reading, and the next append starts on a
new line.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from vsr.errors import EngineError

LEDGER_NAME = "ledger.jsonl"


def utc_now() -> str:
    """The time as the ledger and sidecars write it (ISO 8601, UTC, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Ledger:
    """Append attempt records to ``path`` durably (one ``write`` + ``fsync`` per record).

    While open it holds an exclusive ``flock`` on the file, so a second batch on the same out dir is
    refused instead of doing the same files twice; the kernel releases it however the process ends.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> Ledger:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise EngineError(
                f"another vsr batch is running on this --out-dir (it holds {self.path}); wait for it to finish"
            ) from None
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":  # a torn last line from a crash: keep it apart from ours
                    os.write(self._fd, b"\n")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line and make it durable before returning."""
        assert self._fd is not None, "use Ledger as a context manager"
        line = json.dumps({"time": utc_now(), **record}, default=str)
        os.write(self._fd, (line + "\n").encode())  # O_APPEND: one write lands whole at the end
        os.fsync(self._fd)


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """Every complete record in the ledger, oldest first (torn or foreign lines are skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records
