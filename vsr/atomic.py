"""Atomic outputs: write beside the target under a hidden temporary name, rename only on success.

Every file vsr produces (videos, images, reports, sidecars, checkpoints, exported weights) goes through
here, so a crash, Ctrl-C, SIGTERM or a full disk never leaves a half-written file under the real name,
and every temporary name has one shape (``.NAME.vsr-PID.part``, beside the target, on the same
filesystem so the rename is atomic) that a later run can recognise and clean up
(``stale_temporaries``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

_TEMP = re.compile(r"^\.(?P<name>.+)\.vsr-(?P<pid>\d+)\.part$")


def temp_path_for(target: Path | str) -> Path:
    """The hidden temporary file beside ``target`` that this process writes before publishing."""
    target = Path(target)
    return target.resolve().parent / f".{target.name}.vsr-{os.getpid()}.part"


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened or synced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish(tmp: Path, target: Path | str, fsync: bool = True) -> None:
    """Rename the finished ``tmp`` onto ``target`` (after syncing it, so a power cut keeps whole files)."""
    target = Path(target)
    if fsync:
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    os.replace(tmp, target)
    if fsync:
        _fsync_dir(target.resolve().parent)


def discard(tmp: Path) -> None:
    """Remove a temporary file if it exists (on failure paths; never raises for a missing file)."""
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()


@contextlib.contextmanager
def atomic_path(target: Path | str, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target``, on any exception it is removed."""
    tmp = temp_path_for(target)
    try:
        yield tmp
        publish(tmp, target, fsync=fsync)
    except BaseException:
        discard(tmp)
        raise


def write_atomic(target: Path | str, data: str | bytes, mode: int = 0o644, fsync: bool = True) -> None:
    """Write ``data`` (text is UTF-8) to ``target`` atomically with permission bits ``mode``."""
    with atomic_path(target, fsync=fsync) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, mode)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process whose parent died too stays a zombie until init reaps it: it writes nothing
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def stale_temporaries(folder: Path | str) -> list[Path]:
    """Temporaries in ``folder`` left by vsr processes that no longer run (killed, crashed, power cut)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = []
    for p in folder.iterdir():
        m = _TEMP.match(p.name)
        if m and int(m["pid"]) != os.getpid() and not process_alive(int(m["pid"])):
            stale.append(p)
    return sorted(stale)
