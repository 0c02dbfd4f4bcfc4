"""Long videos in committed segments: the join is lossless, an interrupted run resumes to the same file.

A 4 s clip with ``--segment-seconds 1`` has four segments.  Runs are killed or interrupted after a known
number of segments is in the manifest (Ctrl-C in-process, SIGKILL of a real process, an interruption
while joining), then resumed in-process; the result is compared with an uninterrupted run packet for
packet (pts, dts, bytes), frame for frame, and in its audio.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import invoke
from media_checks import audio_payloads, decoded_frames

from vsr.config import EnhanceConfig
from vsr.errors import OutputError, UsageError
from vsr.pipelines.enhance import build_stage, enhance
from vsr.pipelines.segments import MANIFEST, Manifest, work_folder_for

CLIP = dict(width=64, height=48, frames=96, fps=24)  # 4 s: four 1 s segments
SEGMENTS = 4


def _config(src: Path, out: Path, **kw) -> EnhanceConfig:
    kw = {"model": "bicubic", "mode": "frame", "quiet": True, "segment_seconds": 1.0, **kw}
    return EnhanceConfig(src, out, **kw)


def _video_packets(path: Path) -> list[tuple[int | None, int | None, bool, bytes]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(p.pts, p.dts, p.is_keyframe, bytes(p)) for p in c.demux(s) if p.size]


def _manifest(out: Path) -> Manifest | None:
    return Manifest.load(work_folder_for(out))


def _wait_for_segments(out: Path, n: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = _manifest(out)
        if m is not None and len(m.segments) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"the run never committed {n} segments")


class InterruptAt:
    """A frame stage that passes frames through ``inner`` and, at the first frame of segment ``at``,
    waits until ``at - 1`` segments are committed (the encoder thread lags) and raises Ctrl-C."""

    def __init__(self, inner, out: Path, at: int) -> None:
        self.inner, self.out, self.at = inner, out, at

    def push(self, frames):
        if any(f.index >= CLIP["fps"] * self.at for f in frames):
            _wait_for_segments(self.out, self.at - 1)
            raise KeyboardInterrupt
        return self.inner.push(frames)

    def flush(self):
        return self.inner.flush()

    def report(self):
        return {}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from vsr.media.sample import SampleSpec, write_sample

    return write_sample(tmp_path_factory.mktemp("resume") / "in.mp4", SampleSpec(**CLIP))


@pytest.fixture(scope="module")
def reference(clip, tmp_path_factory):
    """An uninterrupted segmented run (with --resume and nothing to resume: it just runs)."""
    out = tmp_path_factory.mktemp("ref") / "ref.mp4"
    report = enhance(_config(clip, out, resume=True))
    return out, report


def _assert_same_output(a: Path, b: Path) -> None:
    pa, pb = _video_packets(a), _video_packets(b)
    assert [p[:3] for p in pa] == [p[:3] for p in pb]  # pts, dts, keyframes
    assert [p[3] for p in pa] == [p[3] for p in pb]  # x264 is deterministic here: the same bytes
    assert all(np.array_equal(x, y) for x, y in zip(decoded_frames(a), decoded_frames(b), strict=True))
    assert audio_payloads(a) == audio_payloads(b)


def test_segmented_run_is_complete_and_lossless_to_join(clip, reference, tmp_path):
    out, report = reference
    assert report.segments is not None and report.segments.count == SEGMENTS
    assert report.segments.resumed_from is None and report.segments.join_seconds >= 0
    assert report.frames_in == report.frames_out == CLIP["frames"] and all(report.checks.values())
    assert not work_folder_for(out).exists()  # removed once the output is published
    packets = _video_packets(out)
    keyframes = [i for i, p in enumerate(packets) if p[2]]
    assert keyframes == [0, 24, 48, 72]  # every segment starts with its own keyframe
    assert audio_payloads(out) == audio_payloads(clip)  # audio copied packet for packet across the joins
    # A lossless encode shows the join neither drops, repeats nor alters a frame: the one-pass output
    # and the segmented one decode to the same pictures at the same times.
    one = enhance(_config(clip, tmp_path / "one.mp4", crf=0, segment_seconds=0))
    seg = enhance(_config(clip, tmp_path / "seg.mp4", crf=0))
    assert one.segments is None and seg.segments.count == SEGMENTS
    pts = [sorted(p[0] for p in _video_packets(tmp_path / name)) for name in ("one.mp4", "seg.mp4")]
    assert pts[0] == pts[1]
    for x, y in zip(decoded_frames(tmp_path / "one.mp4"), decoded_frames(tmp_path / "seg.mp4"), strict=True):
        assert np.array_equal(x, y)


@pytest.mark.parametrize(
    "name, spec, ext",
    [
        ("vfr", dict(vfr=True), ".mkv"),  # variable frame rate into Matroska's millisecond clock
        ("rotated", dict(rotation=90, audio_tracks=2), ".mov"),
        ("webm", dict(), ".webm"),  # VP9 segments; the AAC audio is re-encoded to Opus by the join
    ],
)
def test_segments_keep_timing_rotation_and_audio(video_factory, tmp_path, name, spec, ext):
    src = video_factory(f"{name}.mp4", width=64, height=48, frames=72, fps=24, **spec)
    one, seg = tmp_path / f"one{ext}", tmp_path / f"seg{ext}"
    r_one = enhance(_config(src, one, segment_seconds=0))
    r_seg = enhance(_config(src, seg))
    assert r_one.segments is None and r_seg.segments.count == 3 and all(r_seg.checks.values())
    assert sorted(p[0] for p in _video_packets(one)) == sorted(p[0] for p in _video_packets(seg))
    assert r_seg.output["rotation"] == r_one.output["rotation"] == spec.get("rotation", 0)
    assert r_seg.encoding["audio"] == r_one.encoding["audio"]
    assert audio_payloads(seg) == audio_payloads(one)
    # The joined stream states the source's frame rate as the one-pass output does (a Matroska join
    # once said 1000 fps, its clock's rate, and read back as truncated when given to vsr again).
    assert r_seg.output["fps"] == r_one.output["fps"] and len(decoded_frames(seg)) == 72


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_reader_continues_after_a_frame_exactly(video_factory, ext):
    """Seeking back to the keyframe before the last frame done, then skipping to it, gives exactly the
    frames an uninterrupted decode gives after it (pts and pixels), counted on from the frames done."""
    from vsr.media.reader import VideoReader

    src = video_factory(f"cont{ext}", width=64, height=48, frames=60, fps=24)
    with VideoReader(src) as r:
        full = [(f.pts, f.image, f.index) for f in r.frames()]
    for done in (1, 25, 59):
        with VideoReader(src) as r:
            r.continue_from(full[done - 1][0], done, 0.0, 0.0)
            rest = [(f.pts, f.image, f.index) for f in r.frames()]
            assert r.frames_decoded == len(full)
        assert [(p, i) for p, _, i in rest] == [(p, i) for p, _, i in full[done:]]
        assert all(np.array_equal(a[1], b[1]) for a, b in zip(rest, full[done:], strict=True))


def test_short_input_runs_in_one_pass(clip, tmp_path):
    report = enhance(_config(clip, tmp_path / "o.mp4", segment_seconds=10.0))
    assert report.segments is None and report.frames_out == CLIP["frames"]


def test_ctrl_c_keeps_segments_and_resume_matches(clip, reference, tmp_path):
    out = tmp_path / "out.mp4"
    config = _config(clip, out)
    built = build_stage(config)
    built.stage = InterruptAt(built.stage, out, at=3)
    with pytest.raises(KeyboardInterrupt, match="--resume"):
        enhance(config, stage=built)
    manifest = _manifest(out)
    assert [s.index for s in manifest.segments] == [0, 1] and manifest.frames == 48
    assert not out.exists() and [p.name for p in out.parent.iterdir()] == [work_folder_for(out).name]
    assert sorted(p.name for p in work_folder_for(out).iterdir()) == [
        MANIFEST,
        "seg-000000.mp4",
        "seg-000001.mp4",
    ]
    # a changed option or input refuses to resume, naming the field; the folder is left as it was
    with pytest.raises(UsageError, match=r"options\.crf: None -> 20"):
        enhance(dataclasses.replace(config, resume=True, crf=20))
    assert len(_manifest(out).segments) == 2
    # a damaged segment file is redone, not trusted
    seg1 = work_folder_for(out) / "seg-000001.mp4"
    seg1.write_bytes(seg1.read_bytes()[:-100] + bytes(100))
    report = enhance(dataclasses.replace(config, resume=True))
    assert report.segments.resumed_from == 1 and report.segments.frames_resumed == 24
    assert any("segment 1" in w and "damaged" in w for w in report.warnings)
    assert report.frames_in == report.frames_out == CLIP["frames"] and all(report.checks.values())
    assert not work_folder_for(out).exists()
    _assert_same_output(out, reference[0])


def test_interrupted_while_joining_resumes_by_joining_only(clip, reference, tmp_path, monkeypatch):
    from vsr.media import writer

    out = tmp_path / "out.mp4"

    def interrupted(self):
        self.abort()
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(writer.SegmentJoiner, "join", interrupted)
        with pytest.raises(KeyboardInterrupt):
            enhance(_config(clip, out))
    assert len(_manifest(out).segments) == SEGMENTS and not out.exists()
    report = enhance(_config(clip, out, resume=True))
    assert report.segments.resumed_from == SEGMENTS and report.segments.frames_resumed == CLIP["frames"]
    assert report.busy_seconds.model == 0  # nothing was computed again
    _assert_same_output(out, reference[0])


@pytest.mark.parametrize("after", [1, 3])
def test_sigkill_then_resume_matches(clip, reference, tmp_path, after):
    """A real process killed with SIGKILL (no handler runs: a power cut or an OOM kill looks the same)."""
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vsr", "enhance", str(clip), str(out), "-q", "--model", "bicubic",
         "--mode", "frame", "--segment-seconds", "1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_for_segments(out, after)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done = len(_manifest(out).segments)  # more may have been committed between the poll and the kill
    assert done >= after and not out.exists()
    report = enhance(_config(clip, out, resume=True))
    assert report.segments.resumed_from == done and report.segments.frames_resumed == 24 * done
    _assert_same_output(out, reference[0])


def test_stale_folder_reported_and_removed_without_resume(clip, tmp_path):
    out = tmp_path / "out.mp4"
    folder = work_folder_for(out)
    folder.mkdir()
    Manifest({"input": {}}, pid=2**22 + 12345, boot_id=None).save(folder)  # a pid that is not running
    (folder / "seg-000000.mp4").write_bytes(b"half")
    proc = invoke(
        "enhance", str(clip), str(out), "--model", "bicubic", "--mode", "frame", "--segment-seconds", "1"
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "work folder" in line]
    assert len(lines) == 1 and "removed" in lines[0] and "--resume" in lines[0]
    assert out.exists() and not folder.exists()


def test_live_process_folder_is_never_touched(clip, tmp_path):
    out = tmp_path / "out.mp4"
    folder = work_folder_for(out)
    folder.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        Manifest({"input": {}}, pid=sleeper.pid, boot_id=None).save(folder)
        (folder / "seg-000000.mp4").write_bytes(b"being written")
        for resume in (False, True):
            with pytest.raises(OutputError, match=f"another vsr process \\(pid {sleeper.pid}\\)"):
                enhance(_config(clip, out, resume=resume))
            assert (folder / "seg-000000.mp4").read_bytes() == b"being written"
        # a one-pass run of the same output (short segments off) refuses too
        with pytest.raises(OutputError, match="another vsr process"):
            enhance(_config(clip, out, segment_seconds=0))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert json.loads((folder / MANIFEST).read_text())["pid"] == sleeper.pid


def test_resume_refuses_options_it_cannot_continue(clip, tmp_path):
    proc = invoke("enhance", str(clip), str(tmp_path / "o.mp4"), "--resume", "--start", "1")
    assert proc.returncode == 2 and "--start" in proc.stderr
    proc = invoke("enhance", str(clip), str(tmp_path / "o.mp4"), "--segment-seconds", "0.1")
    assert proc.returncode == 2 and "--segment-seconds" in proc.stderr


def test_input_change_refuses_resume(clip, tmp_path):
    src = tmp_path / "in.mp4"
    src.write_bytes(clip.read_bytes())
    out = tmp_path / "out.mp4"
    config = _config(src, out)
    built = build_stage(config)
    built.stage = InterruptAt(built.stage, out, at=2)
    with pytest.raises(KeyboardInterrupt):
        enhance(config, stage=built)
    os.utime(src, ns=(0, 0))
    with pytest.raises(UsageError, match=r"input\.mtime_ns"):
        enhance(dataclasses.replace(config, resume=True))
