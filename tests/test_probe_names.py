"""``vsr probe``: colour tags by name, field order, and a marked frame-count estimate where the container has none."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from click.testing import CliRunner

from vsr.cli import cli
from vsr.media.probe import color_name, probe


def _write(path, codec="libx264", frames=24, options=None, tags=None):
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=25)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        video.codec_context.options = options or {}
        for key, value in (tags or {}).items():
            setattr(video.codec_context, key, value)
        rng = np.random.default_rng(1)
        for _ in range(frames):
            rgb = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return path


def _text(path) -> dict[str, str]:
    result = CliRunner().invoke(cli, ["probe", str(path)])
    assert result.exit_code == 0, result.output
    return {line.split()[0]: line.split(maxsplit=1)[1] for line in result.output.splitlines()}


def test_colour_tags_are_named(tmp_path):
    tags = {"color_range": 1, "color_primaries": 1, "color_trc": 1, "colorspace": 1}
    info = probe(_write(tmp_path / "tagged.mp4", tags=tags))
    assert info.color_names == {"range": "tv", "primaries": "bt709", "transfer": "bt709", "matrix": "bt709"}
    text = _text(tmp_path / "tagged.mp4")
    assert text["color_range"] == "tv (1)" and text["colorspace"] == "bt709 (1)"
    untagged = probe(_write(tmp_path / "plain.mp4"))
    assert untagged.color_names["primaries"] == "unknown" and untagged.color_names["matrix"] == "unknown"
    assert color_name("range", 2) == "pc" and color_name("matrix", 9) == "bt2020nc"
    assert color_name("primaries", 3) == "reserved (3)"


def test_interlaced_field_order(tmp_path):
    interlaced = probe(_write(tmp_path / "tff.mkv", options={"x264-params": "tff=1"}))
    assert interlaced.field_order == "tt" and interlaced.interlaced
    assert _text(tmp_path / "tff.mkv")["field_order"] == "interlaced, top field first"
    progressive = probe(_write(tmp_path / "p.mp4"))
    assert progressive.field_order == "progressive" and not progressive.interlaced


@pytest.mark.parametrize(("name", "codec"), [("clip.mkv", "libx264"), ("clip.mpg", "mpeg2video")])
def test_frames_estimated_from_duration_when_the_container_has_no_count(tmp_path, name, codec):
    path = _write(tmp_path / name, codec=codec, frames=50)
    info = probe(path)
    # MPEG-PS durations run first to last timestamp, one frame short: an estimate, and said to be one.
    assert info.frames is None and abs(info.frames_estimate - 50) <= 1
    assert (
        _text(path)["frames"]
        == f"~{info.frames_estimate} (estimate: duration x rate; the container has no count)"
    )
    data = json.loads(CliRunner().invoke(cli, ["probe", str(path), "--json"]).output)
    assert data["frames"] is None and data["frames_estimate"] == info.frames_estimate
    counted = probe(_write(tmp_path / "counted.mp4", frames=50))
    assert counted.frames == 50 and counted.frames_estimate is None
