"""``vsr compare``: side-by-side and split videos with the output's timing and audio, snapshots, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from vsr.cli.compare import compare as compare_cmd
from vsr.errors import OutputError
from vsr.pipelines.compare import compose, snapshot_indices


def _enhanced(src: Path, dst: Path, scale: int = 2) -> Path:
    """A stand-in for ``vsr enhance``: every frame upscaled (cubic), same timestamps, audio copied."""
    import cv2

    from vsr.media.reader import VideoReader
    from vsr.media.writer import EncodeSettings, VideoWriter

    with VideoReader(src) as reader:
        writer = None
        for frame in reader.frames():
            image = cv2.resize(frame.image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            if writer is None:
                writer = VideoWriter(
                    dst, "mp4", reader.info, image.shape[1], image.shape[0], EncodeSettings(),
                    reader.time_base, rotation=reader.info.rotation, side_source=src,
                )  # fmt: skip
            writer.write(frame.with_image(image))
        writer.close()
    return dst


@pytest.fixture(scope="module")
def clip_pair(video_factory, tmp_path_factory):
    src = video_factory("compare_in.mp4", width=96, height=64, frames=12, fps=12)
    return src, _enhanced(src, tmp_path_factory.mktemp("compare") / "enhanced.mp4")


def _decode(path: Path) -> list[np.ndarray]:
    from vsr.media.reader import VideoReader

    with VideoReader(path) as reader:
        return [f.image for f in reader.frames()]


def test_side_by_side_video_with_snapshots_and_audio(clip_pair, tmp_path):
    from vsr.media.probe import probe

    src, out = clip_pair
    result = tmp_path / "cmp.mp4"
    res = CliRunner().invoke(
        compare_cmd,
        [
            str(src),
            str(out),
            str(result),
            "--snapshots",
            "2",
            "--snapshot-dir",
            str(tmp_path / "s"),
            "--json",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["frames"] == 12 and report["size"] == [384, 128]
    info = probe(result)
    assert (info.width, info.height, info.frames) == (384, 128, 12)
    assert len(info.audio_streams) == len(probe(out).audio_streams) == 1
    pngs = sorted((tmp_path / "s").glob("*.png"))
    assert len(pngs) == 4 and pngs[0].name.endswith("_after.png")
    # The right half is the enhanced output (away from the label), the left its Lanczos counterpart.
    frames, enhanced = _decode(result), _decode(out)
    diff = np.abs(frames[5][40:, 192 + 8 :].astype(int) - enhanced[5][40:, 8:].astype(int))
    assert diff.mean() < 4


def test_split_layout_and_refusals(clip_pair, tmp_path):
    src, out = clip_pair
    result = tmp_path / "split.mp4"
    runner = CliRunner()
    assert (
        runner.invoke(compare_cmd, [str(src), str(out), str(result), "--layout", "split", "-q"]).exit_code
        == 0
    )
    frames = _decode(result)
    assert len(frames) == 12 and frames[0].shape == (128, 192, 3)
    again = runner.invoke(compare_cmd, [str(src), str(out), str(result), "-q"])
    assert isinstance(again.exception, OutputError) and "--overwrite" in str(again.exception)
    same = runner.invoke(compare_cmd, [str(src), str(out), str(out), "-q"])
    assert isinstance(same.exception, OutputError)


def test_compose_layouts_and_width_limit():
    before = np.zeros((60, 80, 3), np.uint8)
    after = np.full((60, 80, 3), 200, np.uint8)
    side = compose(before, after, "side")
    assert side.shape == (60, 160, 3) and side[50, 60].max() == 0 and side[50, 140].min() == 200
    split = compose(before, after, "split")
    assert split.shape == (60, 80, 3) and split[50, 10].max() == 0 and split[50, 70].min() == 200
    assert compose(before, after, "side", max_width=100).shape[1] == 100
    deep = compose(before.astype(np.uint16), after.astype(np.uint16) * 257, "split")
    assert deep.dtype == np.uint16


def test_snapshot_indices_are_spread_and_unique():
    assert snapshot_indices(100, 4) == [12, 37, 62, 87]
    assert snapshot_indices(3, 5) == [0, 1, 2]
    assert snapshot_indices(None, 0) == []


def test_rotated_clips_are_compared_upright(video_factory, tmp_path):
    from vsr.config import CompareConfig
    from vsr.media.probe import probe
    from vsr.pipelines.compare import compare

    src = video_factory("compare_rot.mp4", width=96, height=64, frames=4, rotation=90)
    out = _enhanced(src, tmp_path / "rot_x2.mp4")
    report = compare(CompareConfig(src, out, tmp_path / "rot_cmp.mp4"))
    info = probe(tmp_path / "rot_cmp.mp4")
    assert report.size == (256, 192) and (info.width, info.height, info.rotation) == (256, 192, 0)
