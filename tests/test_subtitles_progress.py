"""Subtitles are copied where the container allows; progress degrades to plain lines off a terminal."""

from __future__ import annotations

import json
import subprocess

import imageio_ffmpeg
from conftest import run_vsr

from vsr.media.probe import probe
from vsr.progress import Progress

SRT = "1\n00:00:00,000 --> 00:00:00,400\nhello\n\n2\n00:00:00,400 --> 00:00:00,900\nworld\n"


def _with_subtitles(video_factory, tmp_path):
    src = video_factory("plain.mp4", width=64, height=48, frames=24)
    srt = tmp_path / "subs.srt"
    srt.write_text(SRT)
    out = tmp_path / "subbed.mkv"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-i",
            str(src),
            "-i",
            str(srt),
            "-map",
            "0",
            "-map",
            "1",
            "-c",
            "copy",
            str(out),
        ],
        check=True,
    )
    return out


def test_subtitles_copied_into_mkv_and_dropped_with_warning_for_mp4(video_factory, tmp_path):
    src = _with_subtitles(video_factory, tmp_path)
    assert [s["codec"] for s in probe(src).subtitle_streams] == ["srt"]
    for ext, kept in ((".mkv", True), (".mp4", False)):
        out, report = tmp_path / f"out{ext}", tmp_path / f"r{ext}.json"
        proc = run_vsr("enhance", str(src), str(out), "-q", "--report", str(report))
        assert proc.returncode == 0, proc.stderr
        data = json.loads(report.read_text())
        assert len(probe(out).subtitle_streams) == (1 if kept else 0)
        if not kept:
            assert any("subtitle" in w for w in data["warnings"])
        assert data["output"]["audio_streams"] == 1


def test_plain_progress_lines_when_not_a_terminal(capsys):
    with Progress("enhance", total=10, every=0.0) as p:
        for _ in range(3):
            p.update(1, loss=0.5)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert err[-1].startswith("enhance: 3/10 frames") and "loss=0.5" in err[-1] and "eta" in err[-1]


def test_quiet_progress_prints_nothing(capsys):
    with Progress("enhance", total=10, every=0.0, quiet=True) as p:
        p.update(5)
        p.line("hello")
    assert capsys.readouterr().err == ""
