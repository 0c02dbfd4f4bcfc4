"""``--deinterlace``: interlaced inputs are deinterlaced (bwdif, in the tagged field order) before upscaling.

The interlaced samples weave two fields half a frame apart (``vsr.media.sample.interlaced_frame``), so
the progressive picture at the first field's time is known: a deinterlaced frame must be close to it
(and farther from the second field's), and have the vertical smoothness of a progressive frame rather
than the woven frame's combing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import invoke

from vsr.media.reader import Clip, VideoReader
from vsr.media.sample import sample_frame

W, H = 160, 120


def _combing(img: np.ndarray) -> float:
    """Mean distance of each row from the mean of its neighbours: high for woven fields that moved."""
    f = img.astype(np.float64).mean(axis=2)
    return float(np.abs(f[1:-1] - (f[:-2] + f[2:]) / 2).mean())


def _error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).mean())


def _frames(path, **kwargs) -> list:
    with VideoReader(path, **kwargs) as reader:
        return list(reader.frames())


@pytest.mark.parametrize(
    ("name", "codec", "first", "order", "parity"),
    [
        ("tff.mkv", "libx264", "tff", "tt", "top field first"),
        ("bff.mp4", "libx264", "bff", "bb", "bottom field first"),
        ("mpeg2.mkv", "mpeg2video", "bff", "bb", "bottom field first"),  # DVD, broadcast archives
    ],
)
def test_interlaced_input_is_deinterlaced_to_the_first_fields_picture(
    video_factory, name, codec, first, order, parity
):
    path = video_factory(name, width=W, height=H, frames=16, codec=codec, interlaced=first, audio_tracks=0)
    with VideoReader(path, deinterlace="auto") as reader:
        frames = list(reader.frames())
        assert reader.info.field_order == order and reader.deinterlacer.describe == f"bwdif ({parity})"
    woven = _frames(path)  # the library default: as decoded
    assert [f.pts for f in frames] == [f.pts for f in woven]  # one frame per frame, at its own time
    for i in (5, 10):
        early, late = sample_frame(i, W, H), sample_frame(i + 0.5, W, H)
        # (measured on these samples, whose whole picture moves: combing 1.6-3.1x lower; the error to
        # the first field's picture 0.4-0.73 of that to the second's)
        assert _combing(woven[i].image) > 1.4 * _combing(frames[i].image)
        # the first field's picture, not the second's: the field order was followed
        assert _error(frames[i].image, early) < 0.8 * _error(frames[i].image, late)
        assert _error(frames[i].image, early) < _error(woven[i].image, early)


def test_a_clip_and_a_resume_give_the_frames_a_whole_run_gives(video_factory):
    """Each deinterlaced frame takes the frames beside it as context; a --start clip or a --resume that
    begins at a keyframe still feeds the frame before it, so the frames are the whole run's, exactly."""
    path = video_factory("gop.mkv", width=W, height=H, frames=24, interlaced="tff", gop=6, audio_tracks=0)
    whole = _frames(path, deinterlace="auto")
    with VideoReader(path) as reader:
        keyframes = [p.pts for p in reader._container.demux(video=0) if p.is_keyframe and p.pts is not None]
    assert whole[6].pts in keyframes and whole[12].pts in keyframes  # the cases that need the lead
    for k in (6, 7, 12):
        part = _frames(path, clip=Clip(start=k / 24), deinterlace="auto")
        assert [f.pts for f in part] == [f.pts for f in whole[k:]]
        assert all(np.array_equal(a.image, b.image) for a, b in zip(part, whole[k:], strict=True)), k
    for done in (6, 11):  # the last frame an interrupted run finished: at a keyframe, and before one
        with VideoReader(path, deinterlace="auto") as reader:
            t0, t1 = float(whole[0].pts * reader.time_base), float(whole[done].pts * reader.time_base)
            reader.continue_from(whole[done].pts, done + 1, t0, t1)
            rest = list(reader.frames())
        assert [f.pts for f in rest] == [f.pts for f in whole[done + 1 :]]
        assert all(np.array_equal(a.image, b.image) for a, b in zip(rest, whole[done + 1 :], strict=True))


def test_progressive_input_is_left_alone_unless_asked(video_factory):
    path = video_factory("progressive.mp4", width=W, height=H, frames=6, audio_tracks=0)
    with VideoReader(path, deinterlace="auto") as reader:
        auto = list(reader.frames())
        assert reader.deinterlacer is None and not reader.info.interlaced
    assert all(np.array_equal(a.image, b.image) for a, b in zip(auto, _frames(path), strict=True))
    with VideoReader(path, deinterlace="on") as reader:  # an untagged interlaced capture, say
        forced = list(reader.frames())
        assert reader.deinterlacer.describe == "bwdif (field order as flagged)"
    assert any(not np.array_equal(a.image, b.image) for a, b in zip(forced, auto, strict=True))


def test_enhance_deinterlaces_reports_it_and_warns_when_told_not_to(video_factory, tmp_path):
    path = video_factory("enh_tff.mkv", width=W, height=H, frames=8, interlaced="tff")
    report = tmp_path / "r.json"
    out = tmp_path / "o.mkv"
    common = ["--scale", "2", "--model", "bicubic", "--mode", "frame"]
    r = invoke("enhance", str(path), str(out), *common, "--report", str(report))
    assert r.returncode == 0, r.stderr
    rep = json.loads(report.read_text())
    assert rep["deinterlaced"] == "bwdif (top field first)" and "deinterlaced by bwdif" in r.stderr
    assert rep["input"]["field_order"] == "tt" and rep["output"]["field_order"] == "progressive"
    assert all(rep["checks"].values()) and rep["frames_out"] == rep["frames_in"] == 8
    assert "interlaced" not in " ".join(rep["warnings"])

    r = invoke("enhance", str(path), str(tmp_path / "woven.mkv"), *common, "--deinterlace", "off",
               "--report", str(report))  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(report.read_text())
    assert rep["deinterlaced"] is None and rep["options"]["deinterlace"] == "off"
    assert any("interlaced and --deinterlace is off" in w for w in rep["warnings"])
    assert "interlaced and --deinterlace is off" in r.stderr

    r = invoke("enhance", str(path), str(tmp_path / "x.mkv"), *common, "--deinterlace", "sometimes")
    assert r.returncode == 2 and "--deinterlace" in r.stderr


class _InterruptAt:
    """A frame stage passing frames through ``inner`` until the first frame of ``frame``: then, once
    ``segments`` segments are committed, Ctrl-C."""

    def __init__(self, inner, out, frame: int, segments: int) -> None:
        self.inner, self.out, self.frame, self.segments = inner, out, frame, segments

    def push(self, frames):
        import time

        from vsr.pipelines.segments import Manifest, work_folder_for

        if any(f.index >= self.frame for f in frames):
            deadline = time.time() + 120
            while time.time() < deadline:
                manifest = Manifest.load(work_folder_for(self.out))
                if manifest is not None and len(manifest.segments) >= self.segments:
                    raise KeyboardInterrupt
                time.sleep(0.02)
            raise AssertionError("the segments were never committed")
        return self.inner.push(frames)

    def flush(self):
        return self.inner.flush()

    def report(self):
        return {}


def test_an_interrupted_deinterlaced_run_resumes_to_the_uninterrupted_output(video_factory, tmp_path):
    import dataclasses

    from media_checks import decoded_frames

    from vsr.config import EnhanceConfig
    from vsr.pipelines.enhance import build_stage, enhance

    # 1 s segments, keyframes every 12 frames: the resumed segment starts at one (frame 24), and the
    # deinterlacer must see the frame before it, done by the interrupted run, again as context.
    src = video_factory("seg_tff.mkv", width=64, height=48, frames=72, fps=24, interlaced="tff", gop=12)
    kw = dict(model="bicubic", mode="frame", quiet=True, segment_seconds=1.0, crf=0)
    reference = enhance(EnhanceConfig(src, tmp_path / "ref.mkv", **kw))
    assert reference.deinterlaced == "bwdif (top field first)" and reference.segments.count == 3
    config = EnhanceConfig(src, tmp_path / "out.mkv", **kw)
    built = build_stage(config)
    # (segment 1 closes only when frame 48 reaches the writer, so exactly segment 0 is committed)
    built.stage = _InterruptAt(built.stage, config.output, frame=48, segments=1)
    with pytest.raises(KeyboardInterrupt):
        enhance(config, stage=built)
    resumed = enhance(dataclasses.replace(config, resume=True))
    assert resumed.segments.resumed_from == 1 and resumed.deinterlaced == reference.deinterlaced
    a, b = decoded_frames(tmp_path / "ref.mkv"), decoded_frames(tmp_path / "out.mkv")
    assert len(a) == len(b) == 72 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
