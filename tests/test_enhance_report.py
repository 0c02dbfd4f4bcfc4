"""The enhance report as provenance, the orchestrator's parts, and the options users reach for first."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import invoke
from media_checks import audio_payloads, decoded_frames, video_pts_seconds

from vsr.config import EnhanceConfig, FaceOptions
from vsr.digest import sha256_of
from vsr.errors import ConfigError, DecodeError, EncodeError
from vsr.media.probe import probe
from vsr.media.writer import WriterReport
from vsr.models.registry import REGISTRY, ModelCache
from vsr.pipelines.enhance import build_stage, check_output, enhance

CLIP = dict(width=96, height=64, frames=24, fps=24)


def test_report_is_provenance(video_factory, tmp_path):
    src = video_factory("prov.mp4", **CLIP)
    out, report_path = tmp_path / "out.mp4", tmp_path / "r.json"
    config = EnhanceConfig(src, out, model="general-x2", mode="frame", quiet=True, report=report_path)
    result = enhance(config)
    data = json.loads(report_path.read_text())
    assert data == json.loads(json.dumps(result.to_dict(), default=str))  # one serialisation
    assert data["input"]["sha256"] == sha256_of(src) and data["output"]["sha256"] == sha256_of(out)
    assert {"vsr", "python", "torch", "av", "ffmpeg", "numpy"} <= set(data["versions"])
    assert data["options"]["model"] == "general-x2" and data["options"]["scale"] == 2
    (model,) = data["models"]
    spec = REGISTRY["general-x2"].weights
    assert (model["role"], model["name"], model["sha256"]) == ("frame", "general-x2", spec.sha256)
    assert model["licence"] == spec.licence and data["non_commercial_weights"] is True
    busy = data["busy_seconds"]
    assert busy["decode"] > 0 and busy["model"] > 0 and busy["encode"] > 0 and busy["face_detection"] == 0
    assert data["bottleneck"] in busy
    assert data["frames_in"] == data["frames_out"] == 24


class RecordingCache(ModelCache):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def load(self, name_or_path, scale):
        self.names.append(name_or_path)
        return super().load(name_or_path, scale)


def test_face_mode_report_describes_what_ran_and_the_altered_mask(video_factory, tmp_path):
    """--background lanczos: the general model is never loaded; each model reports its own settings;
    the altered mask is white on faces, black where interpolation made the pixels."""
    src = video_factory("faces.mp4", width=160, height=120, frames=6, fps=24)
    out, mask = tmp_path / "out.mp4", tmp_path / "mask.mkv"
    config = EnhanceConfig(
        src, out, scale=4, mode="face", quiet=True, altered_mask=mask,
        face=FaceOptions(background="lanczos", face_model="face-x4-psnr"),
    )  # fmt: skip
    cache = RecordingCache()
    result = enhance(config, models=cache)
    assert cache.names == ["lanczos", "face-x4-psnr"]
    roles = {m.role: m for m in result.models}
    assert set(roles) == {"background", "face"} and roles["background"].params == 0
    assert roles["face"].sha256 == REGISTRY["face-x4-psnr"].weights.sha256
    tracks = result.faces["face_tracks"]
    assert tracks and tracks[0]["boxes"] and tracks[0]["first_frame"] <= tracks[0]["last_frame"]
    masks, frames = decoded_frames(mask), decoded_frames(out)
    assert len(masks) == len(frames) == 6
    assert np.allclose(video_pts_seconds(mask), video_pts_seconds(out), atol=1e-3)
    frame, x0, y0, x1, y1 = tracks[0]["boxes"][0]
    grey = masks[frame][..., 0].astype(int)
    cy, cx = 4 * (y0 + y1) // 2, 4 * (x0 + x1) // 2
    assert grey[cy, cx] > 230  # the face model's pixels
    assert grey[:8, :8].max() < 16 and grey.mean() < 128  # interpolated background stays black


def test_start_and_duration_cut_video_and_audio(video_factory, tmp_path):
    src = video_factory("long.mp4", width=64, height=48, frames=72, fps=24)
    out = tmp_path / "piece.mp4"
    proc = invoke(
        "enhance", str(src), str(out), "-q", "--model", "bicubic", "--start", "1", "--duration", "1"
    )
    assert proc.returncode == 0, proc.stderr
    pts = video_pts_seconds(out)
    assert len(pts) == 24 and abs(pts[0]) < 1e-6  # output timestamps start at 0
    source = video_pts_seconds(src)
    np.testing.assert_allclose(np.array(pts), np.array(source[24:48]) - source[24], atol=1e-3)
    audio = probe(out).audio_streams
    assert len(audio) == 1
    copied, original = audio_payloads(out), audio_payloads(src)
    assert 0 < len(copied[0]) < len(original[0]) / 2  # about a third of the audio packets


def test_start_past_the_end_is_a_usage_error(video_factory, tmp_path):
    src = video_factory("short.mp4", width=64, height=48, frames=12, fps=24)
    proc = invoke("enhance", str(src), str(tmp_path / "o.mp4"), "-q", "--model", "bicubic", "--start", "5")
    assert proc.returncode == 2 and "--start 5" in proc.stderr
    assert not (tmp_path / "o.mp4").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--crf", "52"], 2, "--crf for libx264 must be between 0 and 51"),
        (["--codec", "libx265", "--crf", "60"], 2, "between 0 and 51"),
        (["--encoder-opt", "nosuch=1"], 2, "--encoder-opt nosuch: not an option of libx264"),
        (["--encoder-opt", "tune"], 2, "KEY=VALUE"),
    ],
)
def test_encoder_values_checked_per_codec(video_factory, tmp_path, args, code, words):
    src = video_factory("short.mp4", width=64, height=48, frames=12, fps=24)
    proc = invoke("enhance", str(src), str(tmp_path / "o.mp4"), "-q", "--model", "bicubic", *args)
    assert proc.returncode == code and words in proc.stderr, proc.stderr


def test_encoder_option_reaches_the_encoder_and_vp9_takes_crf_63(video_factory, tmp_path):
    src = video_factory("short.mp4", width=64, height=48, frames=12, fps=24)
    out, report = tmp_path / "o.mp4", tmp_path / "r.json"
    proc = invoke(
        "enhance", str(src), str(out), "-q", "--model", "bicubic", "--encoder-opt", "tune=grain",
        "--report", str(report),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(report.read_text())["encoding"]["options"] == {"tune": "grain"}
    assert (
        b"deblock=1:-2:-2" in out.read_bytes()
    )  # x264's settings SEI: tune=grain's deblocking (default 1:0:0)
    webm = tmp_path / "o.webm"  # the library default codec follows the container, as the CLI's does
    enhance(EnhanceConfig(src, webm, model="bicubic", crf=63, quiet=True))
    assert probe(webm).codec == "vp9"


def test_checks_catch_a_lost_frame_and_a_shifted_timestamp():
    info = SimpleNamespace(audio_streams=[], rotation=0)
    reader = SimpleNamespace(info=info, frames_decoded=10, first_time=0.0, last_time=0.36)
    writer = SimpleNamespace(time_base=0.001, report=WriterReport(frames=10))
    good = SimpleNamespace(
        frames=10, start=0.0, last_start=0.36, info=SimpleNamespace(**vars(info), time_base="1/1000")
    )
    config = EnhanceConfig(Path("in.mp4"), Path("out.mp4"), audio=False)
    assert check_output(reader, writer, good, config) == dict.fromkeys(
        ("frames", "timestamps", "audio", "rotation"), True
    )
    with pytest.raises(EncodeError, match=r"\(frames\)"):
        check_output(reader, writer, SimpleNamespace(**{**vars(good), "frames": 9}), config)
    with pytest.raises(EncodeError, match=r"\(timestamps\)"):
        check_output(reader, writer, SimpleNamespace(**{**vars(good), "last_start": 0.40}), config)
    # Audio packets of a damaged input the writer could not copy: refused, unless salvaging.
    damaged = SimpleNamespace(
        time_base=0.001, report=WriterReport(frames=10, side_dropped=2, side_damage="x")
    )
    with pytest.raises(DecodeError, match="2 audio/subtitle packet.*--salvage"):
        check_output(reader, damaged, good, config)
    config.salvage = True
    assert all(check_output(reader, damaged, good, config).values())


def test_summary_names_mode_models_warnings_and_licence(video_factory, tmp_path):
    src = video_factory("short.mp4", width=64, height=48, frames=12, fps=24)  # untagged: a warning
    proc = invoke("enhance", str(src), str(tmp_path / "o.mp4"), "--model", "general-x2", "--mode", "frame")
    assert proc.returncode == 0, proc.stderr
    assert "frame mode: general-x2 on cpu" in proc.stderr
    assert "vsr: warning: input has no colour matrix tag" in proc.stderr
    assert "non-commercial use only" in proc.stderr


def test_build_stage_shares_one_upscaler_when_face_and_background_are_one_model(monkeypatch):
    from vsr.pipelines.face import detect

    monkeypatch.setattr(detect, "make_detector", lambda *a, **k: lambda image: [])
    config = EnhanceConfig(
        Path("in.mp4"), Path("out.mp4"), scale=4, mode="face", model="face-x4-psnr",
        face=FaceOptions(face_model="face-x4-psnr"),
    )  # fmt: skip
    built = build_stage(config)
    assert built.upscalers["face"] is built.upscalers["background"]
    assert [m.role for m in built.model_uses()] == ["background", "face"]
    with pytest.raises(ConfigError, match="--precision fp16 needs a CUDA"):
        build_stage(EnhanceConfig(Path("in.mp4"), Path("out.mp4"), precision="fp16"))
