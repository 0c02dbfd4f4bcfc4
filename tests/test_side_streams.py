"""Side streams: subtitles copied where the container allows; cover art is not mistaken for the video."""

from __future__ import annotations

import json
import subprocess

import imageio_ffmpeg
from conftest import invoke

from vsr.media.probe import probe

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
        proc = invoke("enhance", str(src), str(out), "-q", "--report", str(report))
        assert proc.returncode == 0, proc.stderr
        data = json.loads(report.read_text())
        assert len(probe(out).subtitle_streams) == (1 if kept else 0)
        if not kept:
            assert any("subtitle" in w for w in data["warnings"])
        assert data["output"]["audio_streams"] == 1


def test_cover_art_is_not_the_video(video_factory, tmp_path):
    """An attached picture (cover art) is skipped: the real video stream is enhanced, and a song with a
    cover is still 'audio-only'."""
    import cv2
    import numpy as np
    from media_checks import video_pts_seconds

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    cover = tmp_path / "cover.png"
    cv2.imwrite(str(cover), np.full((32, 32, 3), 200, np.uint8))
    src = video_factory("plain.mp4", width=64, height=48, frames=24)

    def with_cover_art(out, video_map):
        args = ["-i", str(cover), "-i", str(src), "-map", "0", "-map", video_map, "-c", "copy"]
        subprocess.run(
            [ffmpeg, "-loglevel", "error", *args, "-disposition:v:0", "attached_pic", str(out)], check=True
        )
        return out

    with_cover = with_cover_art(tmp_path / "with_cover.mp4", "1")
    assert probe(with_cover).width == 64
    out = tmp_path / "out.mp4"
    proc = invoke("enhance", str(with_cover), str(out), "-q", "--mode", "frame")
    assert proc.returncode == 0, proc.stderr
    assert probe(out).width == 128 and len(video_pts_seconds(out)) == 24
    song = with_cover_art(tmp_path / "song.m4a", "1:a")
    proc = invoke("enhance", str(song), str(tmp_path / "o.mp4"), "-q")
    assert proc.returncode == 1 and "audio-only" in proc.stderr
