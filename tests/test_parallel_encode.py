"""Several encoders at once on keyframe-aligned chunks (``--encoders``, ``vsr.media.encoders``).

The output of a parallel run must be the same video as one encoder's: every frame at its source time,
the same pixels (checked losslessly, crf 0), the audio copied, one valid file whose only difference is a
keyframe at every chunk start; a failing chunk encoder fails the run cleanly; memory stays bounded.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import invoke
from media_checks import audio_payloads, decoded_frames

import vsr.media.encoders as encoders_module
from vsr.config import EnhanceConfig
from vsr.errors import ConfigError, EncodeError
from vsr.media.encoders import EncoderPlan, parse_encoders, plan_encoders
from vsr.media.reader import VideoReader
from vsr.media.writer import EncodeSettings, VideoWriter
from vsr.pipelines.enhance import enhance

CLIP = dict(width=64, height=48, frames=50, fps=24)


def _packets(path: Path) -> list[tuple[int, int, bool]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(p.pts, p.dts, p.is_keyframe) for p in c.demux(s) if p.size]


def _write(src: Path, out: Path, plan: EncoderPlan | None, crf: int = 0) -> VideoWriter:
    with VideoReader(src) as r:
        info, time_base, frames = r.info, r.time_base, list(r.frames())
    settings = EncodeSettings.for_output(out, crf=crf)
    writer = VideoWriter(out, "mp4", info, info.width, info.height, settings, time_base, 0, src, False, plan)
    try:
        for f in frames:
            writer.write(f)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return writer


def test_parallel_chunks_are_the_same_video_as_one_encoder(video_factory, tmp_path):
    src = video_factory("par.mp4", **CLIP, vfr=True)
    one = _write(src, tmp_path / "one.mp4", None)
    par = _write(src, tmp_path / "par.mp4", EncoderPlan(encoders=3, chunk_frames=8, threads=1))
    assert one.report.frames == par.report.frames == CLIP["frames"]
    assert par.report.encoders == {"encoders": 3, "chunk_frames": 8, "threads": 1}
    a, b = _packets(tmp_path / "one.mp4"), _packets(tmp_path / "par.mp4")
    assert sorted(p for p, _, _ in a) == sorted(p for p, _, _ in b)  # every frame at its own (VFR) time
    dts = [d for _, d, _ in b]
    assert dts == sorted(dts) and len(set(dts)) == len(dts)  # one valid stream: decode order increases
    keyframes = [i for i, (_, _, key) in enumerate(sorted(b)) if key]
    assert keyframes == list(range(0, CLIP["frames"], 8))  # a fresh encoder at every chunk
    for x, y in zip(decoded_frames(tmp_path / "one.mp4"), decoded_frames(tmp_path / "par.mp4"), strict=True):
        assert np.array_equal(x, y)  # lossless encodes: the chunked join changed no pixel
    assert audio_payloads(tmp_path / "par.mp4") == audio_payloads(src)


def test_enhance_with_encoders_keeps_every_timestamp_and_reports_the_plan(
    video_factory, tmp_path, monkeypatch
):
    monkeypatch.setattr(encoders_module, "CHUNK_SECONDS", 0.5)  # several chunks on a 50-frame clip
    src = video_factory("par_e2e.mp4", **CLIP, vfr=True)
    out, report = tmp_path / "out.mp4", tmp_path / "out.json"
    result = invoke(
        "enhance", str(src), str(out), "--scale", "2", "--model", "bicubic", "--mode", "frame",
        "--encoders", "2", "--report", str(report), "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["encoding"]["parallel"]["encoders"] == 2
    n = data["encoding"]["parallel"]["chunk_frames"]
    assert round(data["input"]["fps"] * 0.5) == n < CLIP["frames"]
    assert all(data["checks"].values()) and data["frames_out"] == CLIP["frames"]
    with av.open(str(src)) as c:
        want = [f.time for f in c.decode(video=0)]
    with av.open(str(out)) as c:
        got = [f.time for f in c.decode(video=0)]
    assert got == pytest.approx([t - want[0] for t in want], abs=1e-6)
    assert [i for i, (_, _, k) in enumerate(sorted(_packets(out))) if k] == list(range(0, CLIP["frames"], n))


def test_segmented_run_with_parallel_encoders_joins_losslessly(video_factory, tmp_path, monkeypatch):
    """Each committed segment is itself written by chunk encoders; the join and the checks still hold."""
    monkeypatch.setattr(encoders_module, "CHUNK_SECONDS", 0.25)
    src = video_factory("par_seg.mp4", width=64, height=48, frames=96, fps=24)
    cfg = EnhanceConfig(
        src, tmp_path / "seg.mp4", model="bicubic", mode="frame", quiet=True, segment_seconds=1.0, encoders=2
    )
    report = enhance(cfg)
    assert report.segments is not None and report.segments.count == 4
    assert report.encoding["parallel"]["chunk_frames"] == 6
    assert report.frames_out == 96 and all(report.checks.values())
    keys = [i for i, (_, _, k) in enumerate(sorted(_packets(tmp_path / "seg.mp4"))) if k]
    assert keys == list(range(0, 96, 6))


def test_a_failing_chunk_encoder_fails_the_write_and_stops_every_worker(video_factory, tmp_path):
    src = video_factory("par_fail.mp4", **CLIP)
    with VideoReader(src) as r:
        info, time_base, frames = r.info, r.time_base, list(r.frames())
    out = tmp_path / "fail.mp4"
    writer = VideoWriter(
        out, "mp4", info, info.width, info.height, EncodeSettings.for_output(out), time_base, 0, None,
        False, EncoderPlan(encoders=2, chunk_frames=5, threads=1),
    )  # fmt: skip
    good = writer._engine.picture

    def picture(frame, reformatter):
        if frame.index == 13:  # in the third chunk
            raise EncodeError("encoding failed at frame 13: injected")
        return good(frame, reformatter)

    writer._engine.picture = picture
    with pytest.raises(EncodeError, match="frame 13: injected"):
        for f in frames:
            writer.write(f)
        writer.close()
    writer.abort()
    assert not [t for t in threading.enumerate() if t.name.startswith("encoder-") and t.is_alive()]


def test_frames_held_are_bounded_by_the_chunks_in_flight(video_factory, tmp_path):
    """A slow encoder makes ``write`` wait: at most one queued chunk per worker (plus the frames being
    encoded) is ever held, however long the video."""
    src = video_factory("par_mem.mp4", width=64, height=48, frames=60, fps=24)
    with VideoReader(src) as r:
        info, time_base, frames = r.info, r.time_base, list(r.frames())
    out = tmp_path / "mem.mp4"
    plan = EncoderPlan(encoders=2, chunk_frames=4, threads=1)
    writer = VideoWriter(
        out,
        "mp4",
        info,
        info.width,
        info.height,
        EncodeSettings.for_output(out),
        time_base,
        0,
        None,
        False,
        plan,
    )
    good, converted = writer._engine.picture, []

    def slow(frame, reformatter):
        time.sleep(0.005)
        converted.append(frame.index)
        return good(frame, reformatter)

    writer._engine.picture = slow
    held = []
    for f in frames:
        writer.write(f)
        held.append(writer.report.frames - len(converted))
    writer.close()
    assert max(held) <= plan.encoders * (plan.chunk_frames + 1) + plan.encoders
    assert max(held) > plan.chunk_frames  # and it did run ahead of the slow workers (in parallel)
    assert len(_packets(out)) == 60


@pytest.mark.parametrize(
    ("requested", "kw", "want"),
    [
        (None, dict(fast_source=False), EncoderPlan()),  # a CPU model: the encoder is never the bottleneck
        (None, dict(fast_source=True), EncoderPlan(4, 96, 4)),  # behind a GPU, 16 cores: 4 x 4 threads
        (None, dict(fast_source=True, codec="h264_nvenc"), EncoderPlan()),  # a hardware encoder runs alone
        (3, dict(fast_source=False), EncoderPlan(3, 96, 5)),
        (1, dict(fast_source=True), EncoderPlan()),
        # 4K RGB frames (24.9 MB), 2 GiB to queue (16 GiB free): 4 encoders would get 21-frame chunks, under
        # the 24-frame minimum (a second); 3 get 28.  8K frames leave even 2 encoders under it: one runs.
        (4, dict(fast_source=True, frame_bytes=3840 * 2160 * 3, free_memory=16 << 30), EncoderPlan(3, 28, 5)),
        (4, dict(fast_source=True, frame_bytes=7680 * 4320 * 3, free_memory=16 << 30), EncoderPlan()),
    ],
)
def test_plan_encoders(requested, kw, want):
    args = dict(codec="libx264", fps=24.0, frame_bytes=1920 * 1080 * 3, cores=16, free_memory=64 << 30)
    assert plan_encoders(requested, **{**args, **kw}) == want


def test_encoders_option_is_checked(video_factory, tmp_path):
    src = video_factory("par_cli.mp4", **CLIP)
    for bad in ("0", "9", "many"):
        result = invoke("enhance", str(src), str(tmp_path / "x.mp4"), "--encoders", bad)
        assert result.returncode == 2 and "--encoders" in result.stderr
        assert not (tmp_path / "x.mp4").exists()
    assert parse_encoders("auto") is None and parse_encoders("3") == 3
    with pytest.raises(ConfigError, match="--ffmpeg-bin"):
        EnhanceConfig(src, tmp_path / "y.mp4", encoders=2, ffmpeg_bin="ffmpeg").validate()


_MEASURE = """
import resource, sys
from pathlib import Path
import vsr.media.encoders
vsr.media.encoders.CHUNK_SECONDS = 1.0
from vsr.config import EnhanceConfig
from vsr.pipelines.enhance import enhance
r = enhance(EnhanceConfig(input=Path(sys.argv[1]), output=Path(sys.argv[2]), model="bicubic", mode="frame",
                          quiet=True, batch_size=2, encoders=2))
assert r.encoding["parallel"]["chunk_frames"] == 24, r.encoding
print(r.frames_out, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_memory_with_parallel_encoders_does_not_grow_with_video_length(video_factory, tmp_path):
    """Chunks of 24 frames on 2 encoders: a 4x longer video holds the same frames (subprocesses, peak RSS)."""
    import subprocess
    import sys

    peaks = {}
    for frames in (120, 480):
        src = video_factory(f"par_mem_{frames}.mkv", width=320, height=240, frames=frames, fps=24)
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(src), str(tmp_path / f"{frames}.mkv")],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        done, rss = proc.stdout.split()
        assert int(done) == frames
        peaks[frames] = int(rss)
    extra_frames_kib = 360 * 640 * 480 * 3 // 1024  # ~324 MiB if the 360 extra output frames were kept
    assert peaks[480] - peaks[120] < extra_frames_kib // 8, peaks
