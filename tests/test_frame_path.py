"""The device frame path (``--frame-path yuv``): decoder planes -> device -> RGB -> model -> YUV -> encoder,
checked on the CPU against the host (swscale) path it replaces on a GPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import invoke
from media_checks import audio_payloads, video_pts_seconds

from vsr.media.planes import decode_planes
from vsr.models.registry import ModelCache
from vsr.pipelines.enhance import FrameStage
from vsr.pipelines.upscale import Upscaler
from vsr.pipelines.yuv import YuvFormat


def _run(src, out, path: str, *extra: str) -> dict:
    report = out.with_suffix(".json")
    proc = invoke(
        "enhance", str(src), str(out), "-q", "--mode", "frame", "--frame-path", path, "--crf", "0",
        "--report", str(report), *extra,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(report.read_text())


def _plane_diff(a, b) -> list[tuple[int, float]]:
    pa, pb = list(decode_planes(a)), list(decode_planes(b))
    assert len(pa) == len(pb)
    out = []
    for i in range(3):
        d = np.abs(
            np.stack([p[i] for p in pa]).astype(np.int64) - np.stack([p[i] for p in pb]).astype(np.int64)
        )
        out.append((int(d.max()), float(d.mean())))
    return out


@pytest.mark.parametrize(
    "pix_fmt, model, level",
    [("yuv420p", "general-x2", 1), ("yuv420p10le", "bicubic", 4)],
    ids=["8-bit", "10-bit"],
)
def test_yuv_path_equals_the_host_path(video_factory, tmp_path, pix_fmt, model, level):
    src = video_factory(f"fp_{pix_fmt}.mp4", width=64, height=48, frames=12, fps=24, pix_fmt=pix_fmt)
    rgb = _run(src, tmp_path / "rgb.mkv", "rgb", "--model", model)
    yuv = _run(src, tmp_path / "yuv.mkv", "yuv", "--model", model)
    assert (rgb["frame_path"], yuv["frame_path"]) == ("rgb", "yuv")
    assert yuv["encoding"]["pix_fmt"] == rgb["encoding"]["pix_fmt"] == pix_fmt
    assert all(yuv["checks"].values()) and yuv["frames_out"] == 12
    assert video_pts_seconds(tmp_path / "yuv.mkv") == video_pts_seconds(tmp_path / "rgb.mkv")
    assert audio_payloads(tmp_path / "yuv.mkv") == audio_payloads(src.with_suffix(".mp4"))
    # Lossless encodes, so what differs is the conversions: swscale rounds 8-bit with a bias of about one
    # level (measured: Y 1.07 levels lower on average, 99 % within 2); above 8 bits it lets out-of-gamut
    # colours exceed white where the device clamps them to the model's [0, 1], which the x2 upscale then
    # spreads along the sample's saturated stripes (measured: chroma 99 % within 52 levels of 1023, means
    # up to 4.2).  ``level`` is one 8-bit level in the file's units.
    for p99, mean in _plane_diff(tmp_path / "rgb.mkv", tmp_path / "yuv.mkv"):
        assert p99 <= 16 * level and mean <= 1.5 * level


def test_yuv_path_through_segments(video_factory, tmp_path):
    src = video_factory("fp_long.mp4", width=64, height=48, frames=48, fps=24)
    data = _run(src, tmp_path / "seg.mkv", "yuv", "--model", "bicubic", "--segment-seconds", "0.5")
    assert data["segments"]["count"] == 4 and data["frames_out"] == 48 and data["frame_path"] == "yuv"


def test_yuv_path_is_refused_where_it_cannot_work(video_factory, tmp_path):
    src = video_factory("fp_face.mp4", width=64, height=48, frames=6, fps=24)
    proc = invoke("enhance", str(src), str(tmp_path / "o.mp4"), "-q", "--mode", "face", "--frame-path", "yuv")
    assert proc.returncode == 2 and "--frame-path yuv cannot be used here: face mode" in proc.stderr
    assert not (tmp_path / "o.mp4").exists()
    # auto on a CPU is the host path (measured: the device conversions are about 2x slower on a CPU)
    data = _run(src, tmp_path / "auto.mkv", "auto", "--model", "bicubic", "--device", "cpu")
    assert data["frame_path"] == "rgb"


def test_frame_stage_overlaps_one_batch_and_keeps_order():
    loaded = ModelCache().load("bicubic", 2)
    fmt = YuvFormat("ITU601", False, 8, 2, 2)
    stage = FrameStage(Upscaler(loaded.module, 2, __import__("torch").device("cpu")), yuv=(fmt, fmt))

    class F:
        def __init__(self, i):
            y, c = np.full((8, 8), 16 + 10 * i, np.uint8), np.full((4, 4), 128, np.uint8)
            self.index, self.planes = i, (y, c, c)

        def with_planes(self, planes):
            done = F(self.index)
            done.planes = planes
            return done

    assert stage.push([F(0), F(1)]) == []  # batch 0 in flight
    first = stage.push([F(2)])  # batch 0 lands as batch 1 starts
    last = stage.flush()
    assert [f.index for f in first] == [0, 1] and [f.index for f in last] == [2]
    assert first[0].planes[0].shape == (16, 16) and int(first[1].planes[0][4, 4]) == 26
    assert stage.flush() == []
