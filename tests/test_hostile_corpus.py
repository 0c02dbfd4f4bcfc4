"""Every file of the hostile corpus (``hostile_corpus.py``, made at collection time) ends within the contract.

The contract, for ``vsr probe`` and ``vsr enhance`` (strict, and with ``--salvage``): exit 0 with a
faithful output (no frame FFmpeg decodes goes missing unaccounted), or exit 1 with exactly one line
``vsr: error: ...`` (never a traceback, never "please report"); no file left behind; the input unchanged;
within a time bound.  Refused kinds (text, playlists, special files, ...) must be refused by both commands.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import hostile_corpus
import pytest
from conftest import invoke

_ROOT = Path(tempfile.mkdtemp(prefix="vsr-corpus-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
CASES = hostile_corpus.build(_ROOT)
IDS = [f"{c.kind}:{c.name}" for c in CASES]
# What no command may accept: these are refused by vsr probe as well as vsr enhance.
REFUSED = {"tiny", "special-file", "script", "playlist", "text", "no-video", "random", "protocol-name",
           "huge-dimensions", "many-streams"}  # fmt: skip
# Each case strictly, and the damaged ones with --salvage too (for a sound or a refused file it changes nothing).
RUNS = [(c, False) for c in CASES] + [
    (c, True) for c in CASES if c.kind not in REFUSED | {"seed", "wrong-extension"}
]
RUN_IDS = [f"{'salvage' if s else 'strict'}:{c.kind}:{c.name}" for c, s in RUNS]
TIME_BOUND = 60.0  # seconds per file and command: a hang, not a speed target


def _digest(path: Path) -> str | None:
    if not path.is_file() or path.is_symlink() and not Path(path.resolve()).is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _contract(result, case, began: float) -> None:
    """What every command's result must satisfy, whatever the file."""
    assert time.perf_counter() - began < TIME_BOUND, f"{case.name} took too long"
    assert result.returncode in (0, 1), (case.name, result.returncode, result.stderr[-500:])
    assert "Traceback" not in result.stderr, result.stderr[-800:]
    assert "please report" not in result.stderr, result.stderr
    if result.returncode == 1:
        errors = [line for line in result.stderr.splitlines() if line.startswith("vsr: error:")]
        assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0], result.stderr
        assert "\x1b" not in result.stderr


def _ffmpeg_frames(path: Path) -> int:
    """Frames FFmpeg's own command line decodes from ``path`` (every frame, timestamps untouched)."""
    done = subprocess.run(
        [hostile_corpus.ffmpeg_exe(), "-v", "quiet", "-i", str(path), "-map", "0:v:0",
         "-fps_mode", "passthrough", "-f", "framecrc", "-"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=TIME_BOUND,
    )  # fmt: skip
    return sum(1 for line in done.stdout.splitlines() if line and not line.startswith("#"))


def test_the_corpus_is_big_and_varied():
    kinds = {c.kind for c in CASES}
    assert len(CASES) >= 200
    assert {"truncation", "header-burst", "payload-burst", "zeroed-range", "duplicated-chunk",
            "shuffled-chunks", "wrong-extension", "tiny", "huge-dimensions", "absurd-rate",
            "many-streams", "special-file"} <= kinds  # fmt: skip
    # The mutations are seeded: the same seed bytes give the same mutants (the seeds themselves carry
    # a random Matroska segment id, so they are made afresh), and different seeds different ones.
    data = (_ROOT / "seeds" / "seed.mp4").read_bytes()
    first = hostile_corpus.mutants("mp4", data)
    assert first == hostile_corpus.mutants("mp4", data)
    assert first != hostile_corpus.mutants("webm", data)
    assert len({blob for _, _, blob in first}) == len(first)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_probe_keeps_the_contract(case):
    before = _digest(case.path)
    began = time.perf_counter()
    result = invoke("probe", str(case.path))
    _contract(result, case, began)
    if case.kind in REFUSED:
        assert result.returncode == 1, f"{case.name} must be refused"
    if case.expect == "ok":
        assert result.returncode == 0, result.stderr
    assert _digest(case.path) == before


@pytest.mark.parametrize(("case", "salvage"), RUNS, ids=RUN_IDS)
def test_enhance_keeps_the_contract(case, salvage, tmp_path):
    out, report = tmp_path / "out" / "enhanced.mkv", tmp_path / "report.json"
    out.parent.mkdir()
    before = _digest(case.path)
    began = time.perf_counter()
    args = ["enhance", str(case.path), str(out), "--model", "bicubic", "--scale", "2", "--mode", "frame",
            "--quiet", "--report", str(report), *(["--salvage"] if salvage else [])]  # fmt: skip
    result = invoke(*args)
    _contract(result, case, began)
    assert _digest(case.path) == before, "the input changed"
    if result.returncode == 1:
        assert list(out.parent.iterdir()) == [], "something was left behind"
        assert case.expect != "ok" or salvage, result.stderr
        assert case.kind not in REFUSED or "--salvage" not in result.stderr
        return
    assert case.expect != "fail" or salvage, f"{case.name} must be refused"
    assert [p.name for p in out.parent.iterdir()] == [out.name]
    data = json.loads(report.read_text())
    assert data["status"] == "ok" and all(data["checks"].values())
    decodable = _ffmpeg_frames(case.path)
    if salvage:  # every frame FFmpeg decodes is either in the output or listed as lost
        assert data["frames_out"] + data["frames_lost"] >= decodable, data["damage"]
    else:  # no silent frame loss
        assert data["frames_out"] == decodable and not data["damage"]
