"""End-to-end ``vsr enhance`` on generated clips: every invariant of a faithful re-encode is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import invoke
from media_checks import audio_payloads, decoded_frames, psnr, video_pts_seconds

from vsr.media.probe import probe
from vsr.models.resample import resize

CASES = {
    # name: (file name, SampleSpec fields)
    "mp4_audio": ("plain.mp4", dict(width=96, height=64, frames=12)),
    "no_audio": ("silent.mp4", dict(width=96, height=64, frames=8, audio_tracks=0)),
    "two_audio_mkv": ("two.mkv", dict(width=96, height=64, frames=8, audio_tracks=2)),
    "vfr_mkv": ("vfr.mkv", dict(width=96, height=64, frames=14, vfr=True)),
    "rotated_mov": ("rot.mov", dict(width=96, height=64, frames=6, rotation=90)),
    "odd_853x480": ("odd.mp4", dict(width=853, height=480, frames=2, audio_tracks=0, pix_fmt="yuv444p")),
    "ten_bit": ("ten.mkv", dict(width=96, height=64, frames=6, pix_fmt="yuv420p10le")),
    "webm": ("clip.webm", dict(width=96, height=64, frames=6)),
}


def _enhance(video_factory, tmp_path, case, *extra, scale="2"):
    name, spec = CASES[case]
    src = video_factory(name, **spec)
    out = tmp_path / f"out{src.suffix}"
    report = tmp_path / "report.json"
    proc = invoke("enhance", str(src), str(out), "--scale", scale, "--report", str(report), "-q", *extra)
    assert proc.returncode == 0, proc.stderr
    return src, out, json.loads(report.read_text())


@pytest.mark.parametrize("case", list(CASES))
def test_invariants_hold(video_factory, tmp_path, case):
    src, out, report = _enhance(video_factory, tmp_path, case)
    info_in, info_out = probe(src), probe(out)
    # frames: every decoded frame is written, none dropped or duplicated
    assert (
        report["frames_in"]
        == report["frames_out"]
        == len(video_pts_seconds(src))
        == len(video_pts_seconds(out))
    )
    # timestamps: each output frame keeps its source time (VFR survives)
    np.testing.assert_allclose(video_pts_seconds(out), video_pts_seconds(src), atol=1e-3)
    period = 1 / info_in.fps
    assert abs(report["duration_out"] - report["duration_in"]) <= period
    # size, rotation, depth
    assert (info_out.width, info_out.height) == (2 * info_in.width, 2 * info_in.height)
    assert info_out.rotation == info_in.rotation
    assert info_out.bit_depth == info_in.bit_depth
    # audio: every stream copied packet for packet, not re-encoded
    assert audio_payloads(out) == audio_payloads(src)
    assert report["output"]["audio_streams"] == len(info_in.audio_streams)
    # report fields
    for key in ("input", "output", "models", "scale", "device", "frames_in", "frames_out", "seconds", "fps"):
        assert key in report
    assert report["models"][0]["precision"] == "fp32" and report["models"][0]["sha256"]
    for key in (
        "path",
        "width",
        "height",
        "fps",
        "frames",
        "duration",
        "audio_streams",
        "rotation",
        "pix_fmt",
    ):
        assert key in report["output"]


@pytest.mark.parametrize("case", ["mp4_audio", "ten_bit"])
def test_pixels_match_reference_upscale(video_factory, tmp_path, case):
    """The picture is the model's upscale of the decoded input: no colour shift, frames in order."""
    src, out, _ = _enhance(video_factory, tmp_path, case, "--model", "bicubic")
    frames_in, frames_out = decoded_frames(src), decoded_frames(out)
    assert len(frames_in) == len(frames_out)
    peak = 65535.0 if frames_in[0].dtype == np.uint16 else 255.0
    for a, b in zip(frames_in, frames_out, strict=True):
        x = torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None] / peak
        ref = (
            resize(x, (b.shape[0], b.shape[1]), "cubic", antialias=False)
            .clamp(0, 1)[0]
            .permute(1, 2, 0)
            .numpy()
            * peak
        )
        assert psnr(ref, b, peak) > 33.0
    # frames are distinct pictures in the right order: each output is closest to its own input
    diffs = [
        [
            np.abs(frames_out[i][::2, ::2].astype(float) - frames_in[j].astype(float)).mean()
            for j in range(len(frames_in))
        ]
        for i in range(len(frames_out))
    ]
    assert [int(np.argmin(row)) for row in diffs] == list(range(len(frames_in)))


def test_scale_four_and_env_var(video_factory, tmp_path):
    src = video_factory("plain.mp4", **CASES["mp4_audio"][1])
    out = tmp_path / "x4.mp4"
    proc = invoke("enhance", str(src), str(out), "-q", env={"VSR_SCALE": "4", "VSR_CRF": "30"})
    assert proc.returncode == 0, proc.stderr
    assert probe(out).width == 4 * probe(src).width


def test_no_audio_flag_drops_audio(video_factory, tmp_path):
    src, out, report = _enhance(video_factory, tmp_path, "two_audio_mkv", "--no-audio")
    assert probe(out).audio_streams == []
    assert report["encoding"]["audio"] == []


def test_audio_reencoded_only_when_container_cannot_hold_it(video_factory, tmp_path):
    """AAC cannot go into WebM: it is re-encoded to Opus there, and the report says so."""
    src = video_factory("plain.mp4", **CASES["mp4_audio"][1])
    out = tmp_path / "out.webm"
    report = tmp_path / "r.json"
    proc = invoke("enhance", str(src), str(out), "-q", "--report", str(report))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(report.read_text())
    assert data["encoding"]["audio"][0]["action"] == "re-encoded to libopus"
    assert probe(out).audio_streams[0]["codec"] == "opus"
    assert data["frames_out"] == data["frames_in"]


def test_colour_tags_copied(tmp_path):
    """A BT.709, limited-range tagged input keeps those tags."""
    import av

    from vsr.media.sample import sample_frame

    src = tmp_path / "tagged.mp4"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.colorspace, s.codec_context.color_primaries, s.codec_context.color_trc = 1, 1, 1
        s.codec_context.color_range = 1
        for i in range(4):
            f = av.VideoFrame.from_ndarray(sample_frame(i, 64, 48), format="rgb24").reformat(
                format="yuv420p", dst_colorspace="ITU709"
            )
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    out = tmp_path / "out.mp4"
    proc = invoke("enhance", str(src), str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    i, o = probe(src), probe(out)
    assert (
        (o.colorspace, o.color_primaries, o.color_trc, o.color_range)
        == (i.colorspace, i.color_primaries, i.color_trc, i.color_range)
        == (1, 1, 1, 1)
    )


def test_auto_mode_uses_faces_only_where_a_face_model_helps(video_factory, tmp_path):
    """A scale with a default face model (one that measured above Lanczos on faces) runs in face mode;
    a scale without one runs in frame mode (no pointless detection)."""
    from vsr.models.registry import DEFAULT_FACE_MODEL

    for scale in ("4", "2"):
        face_model = DEFAULT_FACE_MODEL.get(int(scale))
        mode = "face" if face_model else "frame"
        folder = tmp_path / scale
        folder.mkdir()
        _, _, report = _enhance(video_factory, folder, "mp4_audio", scale=scale)
        assert report["mode"] == mode
        roles = {m["role"]: m["name"] for m in report["models"]}
        assert roles.get("face") == face_model
        if mode == "face":
            assert roles["background"] == "general-x4"
            assert report["faces"]["faces"]["frames_with_faces"] > 0 and report["faces"]["detector"]


def test_auto_mode_rule_without_a_face_model_or_detector(monkeypatch):
    """auto = face only with both a face model and a detector; an explicit mode is kept as given."""
    from vsr.config import EnhanceConfig
    from vsr.pipelines import enhance
    from vsr.pipelines.face import detect

    auto = EnhanceConfig(input=Path("in.mp4"), output=Path("out.mp4"))
    monkeypatch.setattr(detect, "available_detector", lambda: "stub")
    assert enhance.resolve_mode(auto, None) == "frame"
    assert enhance.resolve_mode(auto, "face-x4-psnr") == "face"
    monkeypatch.setattr(detect, "available_detector", lambda: None)
    assert enhance.resolve_mode(auto, "face-x4-psnr") == "frame"
    forced = EnhanceConfig(input=Path("in.mp4"), output=Path("out.mp4"), mode="face")
    assert enhance.resolve_mode(forced, None) == "face"
