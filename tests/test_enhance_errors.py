"""Bad input and bad output: one line naming the problem, the right exit code, nothing left behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import invoke, run_vsr

from vsr.media.sample import write_tone

SMALL = dict(width=96, height=64, frames=30)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".part")


def _assert_clean_failure(proc, code: int, words: str, folder: Path, output: Path | None = None):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr
    if code == 1:
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("vsr: error:")
    assert words.lower() in proc.stderr.lower(), proc.stderr
    assert _leftovers(folder) == []
    if output is not None:
        assert not output.exists()


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as c:
        a = c.add_stream("aac", rate=48000)
        a.codec_context.layout = "stereo"
        write_tone(c, a, 440.0, 0.2)
    return path


@pytest.mark.parametrize(
    "kind, words",
    [
        ("missing", "not found"),
        ("empty", "empty"),
        ("garbage", "not a readable video"),
        ("text", "a text file, not a video"),
        ("audio_only", "audio-only"),
        ("directory", "directory"),
        ("truncated_mp4", "truncated"),
        ("truncated_mkv", "truncated"),
        ("corrupt", "corrupt"),
    ],
)
def test_bad_inputs(video_factory, tmp_path, kind, words):
    work = tmp_path / "work"
    work.mkdir()
    good = video_factory("errors.mp4", **SMALL)
    data = good.read_bytes()
    src = work / f"in_{kind}.mp4"
    if kind == "empty":
        src.write_bytes(b"")
    elif kind == "garbage":
        src.write_bytes(np.random.default_rng(1).integers(0, 256, 40000, dtype=np.uint8).tobytes())
    elif kind == "text":
        src.write_text("this is not a video\n" * 100)
    elif kind == "audio_only":
        _audio_only(src)
    elif kind == "directory":
        src = work / "folder"
        src.mkdir()
    elif kind == "truncated_mp4":
        src.write_bytes(data[: len(data) * 6 // 10])
    elif kind == "truncated_mkv":
        mkv = video_factory("errors.mkv", **SMALL)
        src = work / "in_truncated.mkv"
        src.write_bytes(mkv.read_bytes()[: len(mkv.read_bytes()) // 2])
    elif kind == "corrupt":
        rng = np.random.default_rng(0)
        buf = bytearray(data)
        n = len(buf)
        buf[n // 4 : n // 4 + n // 3] = rng.integers(0, 256, n // 3, dtype=np.uint8).tobytes()
        src.write_bytes(bytes(buf))
    before = src.read_bytes() if src.is_file() else None
    out = work / "out.mp4"
    proc = invoke("enhance", str(src), str(out), "-q")
    _assert_clean_failure(proc, 1, words, work, out)
    if before is not None:
        assert src.read_bytes() == before  # the input is never touched


def test_output_problems(video_factory, tmp_path):
    src = tmp_path / "in.mp4"
    shutil.copy(video_factory("errors.mp4", **SMALL), src)
    original = src.read_bytes()
    # same file as the input, also through a symlink
    link = tmp_path / "link.mp4"
    link.symlink_to(src)
    for target in (src, link):
        proc = invoke("enhance", str(src), str(target), "-q", "--overwrite")
        _assert_clean_failure(proc, 1, "is the input", tmp_path)
    # existing output without --overwrite is kept as it was
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    proc = invoke("enhance", str(src), str(existing), "-q")
    _assert_clean_failure(proc, 1, "--overwrite", tmp_path)
    assert existing.read_bytes() == b"keep me"
    # folders that cannot take the output
    proc = invoke("enhance", str(src), str(tmp_path / "no" / "such" / "out.mp4"), "-q")
    _assert_clean_failure(proc, 1, "does not exist", tmp_path)
    proc = invoke("enhance", str(src), "/proc/vsr-out.mp4", "-q")
    _assert_clean_failure(proc, 1, "cannot create files", tmp_path)
    assert src.read_bytes() == original


def test_usage_errors_exit_2(video_factory, tmp_path):
    src = video_factory("errors.mp4", **SMALL)
    for args, words in [
        (["--scale", "3"], "--scale"),
        (["--batch-size", "0"], "batch-size"),
        (["--codec", "libx264", "--report", str(tmp_path / "r.json")], "webm"),
    ]:
        out = tmp_path / ("o.webm" if "webm" in words else "o.mp4")
        proc = invoke("enhance", str(src), str(out), "-q", *args)
        assert proc.returncode == 2, proc.stderr
        assert words in proc.stderr
        assert "Traceback" not in proc.stderr
        assert not out.exists()
    proc = invoke("enhance", str(src), str(tmp_path / "o.avi"), "-q")
    assert proc.returncode == 2 and ".avi" in proc.stderr
    proc = invoke("enhance", str(src), str(tmp_path / "o.mp4"), "-q", "--model", "no-such-model")
    assert proc.returncode == 1 and "unknown model" in proc.stderr


def test_failure_report_written(video_factory, tmp_path):
    import json

    bad = tmp_path / "bad.mp4"
    bad.write_text("nope")
    report = tmp_path / "r.json"
    proc = invoke("enhance", str(bad), str(tmp_path / "o.mp4"), "-q", "--report", str(report))
    assert proc.returncode == 1
    data = json.loads(report.read_text())
    assert (
        data["status"] == "failed" and data["exit_code"] == 1 and "a text file, not a video" in data["error"]
    )


def test_file_names_starting_with_dash(video_factory, tmp_path):
    src = tmp_path / "-input.mp4"
    shutil.copy(video_factory("errors.mp4", **SMALL), src)
    proc = run_vsr(
        "enhance", "-q", "--", "-input.mp4", "-output.mkv", cwd=tmp_path
    )  # the subprocess smoke test
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "-output.mkv").stat().st_size > 0


def test_nvenc_without_nvidia_encoder_fails_cleanly(video_factory, tmp_path):
    """h264_nvenc is compiled into the wheel but needs an NVIDIA encoder: without one, a clear error."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine may have NVENC; this checks the fallback message where there is none")
    src = video_factory("errors.mp4", **SMALL)
    out = tmp_path / "o.mp4"
    proc = invoke("enhance", str(src), str(out), "-q", "--codec", "h264_nvenc", "--mode", "frame")
    _assert_clean_failure(proc, 1, "use --codec libx264", tmp_path, out)


_FILE_SIZE_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, like a full disk
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from vsr.cli import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize(
    ("name", "limit", "extra"),
    [
        ("out.mp4", 4000, ()),  # the first buffered write fails
        ("out.mp4", 30000, ()),  # mid-stream
        ("out.mkv", 30000, ()),  # a truncated Matroska file still opens: the refused write must be seen
        ("out.mp4", 30000, ("--segment-seconds", "0.5")),  # committed segments, then the join
        ("out.mp4", 30000, ("--encoders", "2")),  # chunk encoders
        ("out.png", 2000, ()),  # an image: one atomic write
    ],
)
def test_a_refused_write_is_one_line_and_leaves_nothing(video_factory, tmp_path, name, limit, extra):
    """A full disk, a quota or a file-size limit mid-run: FFmpeg's muxer keeps going when a write is refused
    and closing a container swallowed the last one, so such runs used to end in a misleading "output failed
    its checks ... please report this" or a traceback."""
    import subprocess
    import sys

    src = video_factory("big_enough.mp4", width=96, height=64, frames=24)
    if name.endswith(".png"):
        from media_checks import decoded_frames

        from vsr.media.image import write_image

        src = tmp_path / "in.png"
        write_image(src, decoded_frames(video_factory("big_enough.mp4", width=96, height=64, frames=24))[0])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    args = ["enhance", str(src), str(out_dir / name), "--scale", "2", "--model", "bicubic", "-q", *extra]
    proc = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMITED, str(limit), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    _assert_clean_failure(proc, 1, "File too large", out_dir, out_dir / name)
    assert "writing the output failed" in proc.stderr or "a file operation failed" in proc.stderr
    assert "please report" not in proc.stderr
    assert list(out_dir.iterdir()) == []  # no output, no temporary, no work folder
