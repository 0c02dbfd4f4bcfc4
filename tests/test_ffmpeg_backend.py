"""``--ffmpeg-bin``: an external ffmpeg encodes, with the same invariants as the built-in path.

The binary comes from the imageio-ffmpeg wheel (a test dependency), so this runs offline everywhere.
"""

from __future__ import annotations

import json
import shutil

import imageio_ffmpeg
import numpy as np
from conftest import invoke
from media_checks import audio_payloads, video_pts_seconds

from vsr.media.probe import probe

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def test_external_ffmpeg_keeps_timestamps_audio_and_rotation(video_factory, tmp_path):
    for name, spec in [
        ("vfr2.mkv", dict(width=96, height=64, frames=12, vfr=True, audio_tracks=2)),
        ("rot.mov", dict(width=96, height=64, frames=6, rotation=90)),
    ]:
        src = video_factory(name, **spec)
        out = tmp_path / f"ff_{name}"
        report = tmp_path / "r.json"
        proc = invoke("enhance", str(src), str(out), "-q", "--ffmpeg-bin", FFMPEG, "--report", str(report))
        assert proc.returncode == 0, proc.stderr
        data = json.loads(report.read_text())
        assert data["frames_out"] == len(video_pts_seconds(src))
        np.testing.assert_allclose(video_pts_seconds(out), video_pts_seconds(src), atol=1e-3)
        assert audio_payloads(out) == audio_payloads(src)
        assert probe(out).rotation == probe(src).rotation
        assert probe(out).width == 2 * probe(src).width


def test_dash_names_are_not_options(video_factory, tmp_path):
    shutil.copy(video_factory("plain.mp4", width=64, height=48, frames=4), tmp_path / "-in.mp4")
    proc = invoke("enhance", "-q", "--ffmpeg-bin", FFMPEG, "--", "-in.mp4", "-y.mp4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert probe(tmp_path / "-y.mp4").frames == 4


def test_missing_or_failing_ffmpeg(video_factory, tmp_path):
    src = video_factory("plain.mp4", width=64, height=48, frames=4)
    proc = invoke("enhance", str(src), str(tmp_path / "o.mp4"), "-q", "--ffmpeg-bin", "/no/such/ffmpeg")
    assert proc.returncode == 2 and "no such executable" in proc.stderr
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Unknown encoder' >&2\nexit 1\n")
    fake.chmod(0o755)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = invoke("enhance", str(src), str(out_dir / "o.mp4"), "-q", "--ffmpeg-bin", str(fake))
    assert proc.returncode == 1, proc.stderr
    assert "ffmpeg" in proc.stderr and "Traceback" not in proc.stderr
    assert list(out_dir.iterdir()) == []
