"""Hostile and damaged input, case by case: the contained pre-flight, the limits and their flags,
``--salvage``, SIGTERM/SIGHUP, terminal-safe messages and the security rules of the source tree."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import ROOT, invoke
from media_checks import video_pts_seconds

from vsr.config import EnhanceConfig
from vsr.errors import DecodeError, OutputError, safe_text
from vsr.media.limits import InputLimits
from vsr.media.preflight import preflight
from vsr.media.sample import write_tone
from vsr.pipelines.enhance import enhance

SMALL = {"width": 64, "height": 48, "frames": 12, "fps": 24}


# -- the contained pre-flight -------------------------------------------------------------------------------------
def _fake_python(tmp_path: Path, body: str) -> str:
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_a_crash_while_reading_is_one_clear_error(video_factory, tmp_path, monkeypatch):
    src = video_factory("errors.mp4", **SMALL)
    monkeypatch.setattr(sys, "executable", _fake_python(tmp_path, "kill -SEGV $$"))
    with pytest.raises(DecodeError, match=r"FFmpeg crashed reading .*SIGSEGV.*damaged or hostile"):
        preflight(src)


def test_a_hang_while_reading_is_stopped_by_the_watchdog(video_factory, tmp_path, monkeypatch):
    src = video_factory("errors.mp4", **SMALL)
    monkeypatch.setattr(sys, "executable", _fake_python(tmp_path, "exec sleep 30"))
    began = time.perf_counter()
    with pytest.raises(DecodeError, match=r"did not finish within 1s.*--probe-timeout"):
        preflight(src, InputLimits(probe_seconds=1.0))
    assert time.perf_counter() - began < 10


def test_preflight_counts_every_stream(video_factory):
    src = video_factory("errors.mp4", **SMALL)
    result = preflight(src)
    assert result.video_packets == result.info.packets == 12
    assert [s.kind for s in result.streams] == ["video", "audio"]
    assert result.streams[1].packets > 0 and result.problems() == []
    assert result.info.audio_streams[0]["packets"] == result.streams[1].packets


# -- limits: each refusal names its flag ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flag, value, words",
    [
        ("--max-pixels", "1000", "(3072 pixels), over the 1000 pixels limit"),
        ("--max-frames", "5", "12 frames, over the limit of 5"),
        ("--max-duration", "0.2", "over the 0.2s limit"),
        ("--max-streams", "1", "2 streams, over the limit of 1"),
        ("--max-input-size", "1K", "over the 1.0 KB limit"),
        ("--max-output-pixels", "1000", "the output would be 128x96"),
    ],
)
def test_each_limit_refuses_with_its_flag(video_factory, tmp_path, flag, value, words):
    src = video_factory("errors.mp4", **SMALL)
    out = tmp_path / "out" / "o.mp4"
    out.parent.mkdir()
    proc = invoke("enhance", str(src), str(out), "-q", "--mode", "frame", "--model", "bicubic", flag, value)
    assert proc.returncode == 1, proc.stderr
    assert words in proc.stderr and flag in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert list(out.parent.iterdir()) == []
    if flag != "--max-output-pixels":  # vsr probe has the input limits too
        assert invoke("probe", str(src), flag, value).returncode == 1


def test_an_output_beyond_the_encoder_is_refused_before_any_model_loads(tmp_path):
    src = tmp_path / "wide.y4m"  # 4200 px wide: x4 is 16800, over libx264's 16384
    width, height = 4200, 16
    src.write_bytes(
        b"YUV4MPEG2 W4200 H16 F24:1 Ip A1:1 C420jpeg\n" + (b"FRAME\n" + bytes(width * height * 3 // 2)) * 2
    )

    class NoModels:
        def load(self, *args, **kwargs):
            raise AssertionError("a model was loaded before the output size was checked")

    config = EnhanceConfig(src, tmp_path / "o.mp4", scale=4, mode="frame", quiet=True)
    with pytest.raises(
        OutputError, match=r"16800x64, beyond what libx264 can encode \(at most 16384x16384\)"
    ):
        enhance(config, models=NoModels())
    assert [p.name for p in tmp_path.iterdir()] == ["wide.y4m"]
    with pytest.raises(OutputError, match="FFmpeg's picture-size bound"):
        InputLimits(max_output_pixels=1 << 40).check_output(60000, 60000, "libvpx-vp9")


def test_the_limits_are_validated():
    proc = invoke("probe", "x.mp4", "--max-frames", "0")
    assert proc.returncode == 2 and "--max-frames must be more than 0" in proc.stderr
    proc = invoke("probe", "x.mp4", "--max-input-size", "lots")
    assert proc.returncode == 2 and "--max-input-size must be a size" in proc.stderr


# -- damaged files: refused by default, salvaged on request --------------------------------------------------------
def _intra_clip(path: Path, frames: int = 24) -> Path:
    """An intra-only H.264 mkv with AAC audio: every frame is its own packet, so one can be damaged alone."""
    tb = Fraction(1, 1000)
    with av.open(str(path), "w", format="matroska") as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.codec_context.time_base = tb
        video.time_base = tb
        video.codec_context.options = {"g": "1", "bf": "0", "preset": "veryfast"}
        audio = out.add_stream("aac", rate=48000)
        audio.codec_context.layout = "stereo"
        for i in range(frames):
            y, x = np.mgrid[0:48, 0:64]
            img = np.stack([(x * 4 + i * 9) % 256, (y * 5) % 256, (x + y + i * 3) % 256], -1).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = round(i * 1000 / 24), tb
            for p in video.encode(frame):
                out.mux(p)
        for p in video.encode(None):
            out.mux(p)
        write_tone(out, audio, 440.0, frames / 24)
    return path


def _damage_frames(src: Path, dst: Path, which: set[int]) -> list[float]:
    """Copy ``src`` with the payload of video packets ``which`` overwritten; return every frame's time."""
    data = bytearray(src.read_bytes())
    times = []
    with av.open(str(src)) as c:
        for i, p in enumerate(x for x in c.demux(c.streams.video[0]) if x.size):
            times.append(float(p.pts * p.time_base))
            if i in which:  # keep the first bytes (the NAL header), garble the slice data
                data[p.pos + 8 : p.pos + p.size] = bytes([0xFF]) * (p.size - 8)
    dst.write_bytes(bytes(data))
    return times


def test_a_damaged_file_is_refused_and_salvaged_on_request(tmp_path):
    times = _damage_frames(_intra_clip(tmp_path / "clean.mkv"), tmp_path / "damaged.mkv", {10, 11})
    damaged = tmp_path / "damaged.mkv"
    out, report = tmp_path / "out.mkv", tmp_path / "r.json"
    common = ["--model", "bicubic", "--scale", "2", "--mode", "frame", "--report", str(report)]
    proc = invoke("enhance", str(damaged), str(out), "-q", *common)
    assert proc.returncode == 1 and "--salvage" in proc.stderr and "damaged" in proc.stderr, proc.stderr
    assert not out.exists()
    proc = invoke("enhance", str(damaged), str(out), *common, "--salvage")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(report.read_text())
    assert data["frames_out"] == 22 and data["frames_lost"] == 2 and all(data["checks"].values())
    assert [(round(d["start"], 3), round(d["end"], 3), d["packets"]) for d in data["damage"]] == [
        (round(times[10], 3), round(times[11], 3), 2)
    ]
    assert "salvaged: 22 frames kept, 2 lost" in proc.stderr
    # Every kept frame at its own source time: the gap stays a gap, nothing is invented.
    kept = [t for i, t in enumerate(times) if i not in (10, 11)]
    assert np.allclose(video_pts_seconds(out), kept, atol=1e-3)
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 1


# -- SIGTERM and SIGHUP end a run like Ctrl-C -----------------------------------------------------------------------
def _writing(folder: Path) -> bool:
    return any(p.suffix == ".part" and p.stat().st_size > 0 for p in folder.iterdir())


@pytest.mark.parametrize(
    "signum, code, words",
    [
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGTERM, 143, "terminated"),
        (signal.SIGHUP, 129, "hung up"),
    ],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_a_stop_signal_leaves_nothing_behind(video_factory, tmp_path, signum, code, words):
    src = video_factory("long.mp4", width=320, height=240, frames=400)
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    # Interpolation at x4: slow enough to be stopped mid-file (1280x960 encodes), quick to start.
    args = [
        str(src),
        str(out),
        "-q",
        "--scale",
        "4",
        "--mode",
        "frame",
        "--model",
        "bicubic",
        "--report",
        str(report),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vsr", "enhance", *args],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None and not _writing(tmp_path):
            time.sleep(0.05)
        assert _writing(tmp_path), "enhance never started writing"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert words in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # only the failure report
    assert json.loads(report.read_text())["exit_code"] == code
    assert os.path.getsize(src) > 0


# -- terminal-safe messages, and the source tree's security rules --------------------------------------------------
def test_untrusted_text_cannot_rewrite_the_terminal(tmp_path):
    assert safe_text("a\x1b[2J\x1b]0;x\x07b\u202ec", 80) == "a\\x1b[2J\\x1b]0;x\\x07b\\u202ec"
    assert safe_text("x" * 100, 10) == "x" * 9 + "\u2026"
    proc = invoke("probe", str(tmp_path / "evil\x1b[31m.mp4"))
    assert proc.returncode == 1 and "\x1b" not in proc.stderr and "evil\\x1b[31m.mp4" in proc.stderr


def test_no_shell_strings_and_no_full_unpickling_anywhere():
    offenders = []
    for path in [*ROOT.glob("vsr/**/*.py"), *ROOT.glob("pipelines/**/*.py"), *ROOT.glob("models/**/*.py")]:
        text = path.read_text()
        if re.search(r"shell\s*=\s*True|os\.system\(|os\.popen\(", text):
            offenders.append(f"{path}: shell string")
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            if "weights_only=True" not in call:
                offenders.append(f"{path}: {call}")
    assert offenders == []


def test_images_get_the_same_care(tmp_path):
    import cv2

    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    proc = invoke("enhance", str(fifo), str(tmp_path / "o.png"), "-q", "--model", "bicubic")
    assert proc.returncode == 1 and "not a regular file" in proc.stderr
    cv2.imwrite(str(tmp_path / "in.png"), np.zeros((64, 64, 3), np.uint8))
    proc = invoke("enhance", str(tmp_path / "in.png"), str(tmp_path / "o.png"), "-q", "--max-pixels", "100")
    assert proc.returncode == 1 and "--max-pixels" in proc.stderr and not (tmp_path / "o.png").exists()
