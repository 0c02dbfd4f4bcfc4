"""Shared fixtures: generated videos (PyAV), the CLI in-process or as a subprocess, GPU and shared-data markers."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    import torch

    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU; none is available on this machine")
    skip_shared = pytest.mark.skip(reason=f"needs the shared data set at {SHARED_DATA}, which is absent")
    for item in items:
        if "needs_cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_cuda)
        if "needs_shared" in item.keywords and not SHARED_DATA.is_dir():
            item.add_marker(skip_shared)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data set at {SHARED_DATA}, which is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def video_factory(tmp_path_factory):
    """``make(name, **SampleSpec fields)`` -> path of a generated clip, cached per session."""
    from vsr.media.sample import SampleSpec, write_sample

    root = tmp_path_factory.mktemp("videos")
    cache: dict[tuple, Path] = {}

    def make(name: str, **spec) -> Path:
        key = (name, tuple(sorted(spec.items())))
        if key not in cache:
            cache[key] = write_sample(root / name, SampleSpec(**spec))
        return cache[key]

    return make


def invoke(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``vsr ARGS`` in this process (no torch import per call), as ``run_vsr`` would report it.

    The CLI's own entry point runs, so exit codes and the one-line errors are the user's; use
    ``run_vsr`` where a real process matters (signals, imports, one smoke test per command).
    """
    from vsr.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    code = 0
    try:
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
    return subprocess.CompletedProcess(["vsr", *args], code, out.getvalue(), err.getvalue())


def run_vsr(
    *args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``python -m vsr ARGS`` as a user would; returns the completed process (text mode)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "vsr", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
