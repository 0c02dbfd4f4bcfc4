"""sha256 of files: one home for hashing weights, inputs and outputs.

``BackgroundDigest`` hashes a file in a thread while the pipeline reads it for decoding (the bytes
come from the page cache, and hashlib releases the GIL on large blocks), so a provenance report costs
no second pass after the work.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

CHUNK = 1 << 20


def sha256_of(path: Path | str, chunk: int = CHUNK) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class BackgroundDigest:
    """Start hashing ``path`` now; ``result()`` waits for the digest (None if the file could not be read)."""

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        self._digest: str | None = None
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._digest = sha256_of(self._path)
        except OSError:
            self._digest = None

    def result(self) -> str | None:
        self._thread.join()
        return self._digest
