"""Atomic outputs: nothing under the real name until success; failures and stale temporaries cleaned up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vsr.atomic import atomic_path, stale_temporaries, temp_path_for, write_atomic


def test_success_publishes_and_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    with atomic_path(target) as tmp:
        tmp.write_text("one")
        assert not target.exists() and tmp.name.startswith(".out.json.vsr-")
    assert target.read_text() == "one"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("two")
        raise RuntimeError("boom")
    assert target.read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_write_atomic_mode(tmp_path):
    target = tmp_path / "w.bin"
    write_atomic(target, b"\x00\x01", mode=0o600)
    assert target.read_bytes() == b"\x00\x01" and (target.stat().st_mode & 0o777) == 0o600


def test_stale_temporaries_only_of_dead_processes(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f".a.mp4.vsr-{int(dead.stdout)}.part"
    stale.write_text("x")
    mine = temp_path_for(tmp_path / "b.mp4")
    mine.write_text("y")
    (tmp_path / f".c.mp4.vsr-{os.getppid()}.part").write_text("z")  # a live process's work in progress
    (tmp_path / "a.mp4").write_text("kept")
    assert stale_temporaries(tmp_path) == [stale]
