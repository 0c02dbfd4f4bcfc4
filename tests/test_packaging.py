"""The wheel carries every module and what the registry promises: each shipped weights file (same sha256), each card."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from vsr.models.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_every_shipped_weights_file_and_card(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("vsr_faces-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        # every module of the source tree, where setup.cfg's package_dir maps it
        for folder, package in (("vsr", "vsr"), ("models", "vsr/models"), ("pipelines", "vsr/pipelines")):
            for source in (ROOT / folder).rglob("*.py"):
                assert f"{package}/{source.relative_to(ROOT / folder).as_posix()}" in names, source
        shipped = [s for s in REGISTRY.values() if s.weights is not None]
        assert shipped
        for spec in shipped:
            data = z.read(f"vsr/models/weights/{spec.weights.file}")
            assert hashlib.sha256(data).hexdigest() == spec.weights.sha256, spec.name
            for suffix in (".md", ".json"):
                assert f"vsr/models/cards/{spec.name}{suffix}" in names
