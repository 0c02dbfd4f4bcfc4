"""Detectors: selection and errors offline; real faces and a real clip from ../shared/data (skipped without it)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from vsr.config import FaceOptions
from vsr.errors import ModelError, UsageError
from vsr.pipelines.face.detect import (
    Detection,
    HaarDetector,
    available_detector,
    make_detector,
    non_max_suppression,
)

HAVE_YUFACE = importlib.util.find_spec("yuface") is not None


def test_auto_picks_the_best_installed_detector():
    expected = "yuface" if HAVE_YUFACE else "haar"
    assert available_detector() == expected
    assert make_detector("auto", 0.5).name == expected


def test_requested_but_unavailable_detectors_name_the_fix(tmp_path):
    with pytest.raises(UsageError, match="yunet:PATH"):
        make_detector("yunet", 0.5)
    with pytest.raises(UsageError, match="no such file"):
        make_detector(f"yunet:{tmp_path / 'missing.onnx'}", 0.5)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        make_detector(f"yunet:{bad}", 0.5)
    with pytest.raises(UsageError, match="choose one of"):
        make_detector("retinaface", 0.5)


def test_yuface_missing_is_a_model_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_yuface(name, *args, **kwargs):
        if name == "yuface":
            raise ImportError("no yuface")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_yuface)
    with pytest.raises(ModelError, match="--detector haar"):
        make_detector("yuface", 0.5)


def test_upsampling_policy_and_blank_frames():
    det = HaarDetector(0.5)
    assert det.factor_for((360, 640, 3)) == 2.0 and det.factor_for((1080, 1920, 3)) == 1.0
    assert HaarDetector(0.5, upsample=1).factor_for((360, 640, 3)) == 1.0
    assert det(np.zeros((48, 64, 3), np.uint8)) == []


def test_nms_drops_overlaps_and_boxes_inside_better_ones():
    a = Detection((0, 0, 100, 100), 0.9)
    b = Detection((10, 5, 105, 100), 0.8)  # same face
    c = Detection((20, 20, 60, 60), 0.7)  # inside a
    d = Detection((150, 0, 200, 50), 0.6)  # another face
    assert non_max_suppression([c, b, d, a]) == [a, d]


def _val_faces(shared_data, count):
    files = sorted((shared_data / "faces" / "val").glob("*.jpg"))[:count]
    if not files:
        pytest.skip("no face images in faces/val")
    return files


@pytest.mark.needs_shared
@pytest.mark.parametrize("name", ["haar", "yuface"])
def test_detectors_find_real_faces(shared_data, name):
    import cv2

    if name == "yuface" and not HAVE_YUFACE:
        pytest.skip("yuface is not installed (no wheel for this Python)")
    detector = make_detector(name, 0.5)
    found = 0
    files = _val_faces(shared_data, 6)
    for path in files:
        chip = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        # Put the 200 px chip into a larger dark frame at a known place.
        frame = np.full((360, 480, 3), 20, np.uint8)
        frame[80:280, 200:400] = chip
        dets = detector(frame)
        hits = [
            d
            for d in dets
            if 200 <= (d.box[0] + d.box[2]) / 2 <= 400 and 80 <= (d.box[1] + d.box[3]) / 2 <= 280
        ]
        if hits:
            found += 1
            box = detector.face_box(hits[0])
            assert 150 < box.side < 420
            if name == "yuface":
                lm = hits[0].landmarks
                assert lm.shape == (5, 2) and lm[0, 0] < lm[1, 0] and lm[:2, 1].mean() < lm[3:, 1].mean()
    assert found >= len(files) - 1


@pytest.mark.needs_shared
def test_stage_on_a_real_clip_finds_and_tracks_faces(shared_data):
    """Ten frames of a real talking-head clip through face mode (OpenCV resizes stand in for the models)."""
    import cv2

    from vsr.media.reader import VideoReader
    from vsr.pipelines.face.stage import FaceStage

    def cubic(frames):
        return [cv2.resize(f, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC) for f in frames]

    clip = shared_data / "videos" / "talking_d0.mp4"
    if not clip.is_file():
        pytest.skip(f"{clip} is absent")
    stage = FaceStage(FaceOptions(det_every=2, det_upsample=1), 2, cubic, cubic)
    out = []
    with VideoReader(clip) as reader:
        size = (reader.info.height * 2, reader.info.width * 2)
        batch = []
        for frame in reader.frames():
            batch.append(frame)
            if len(batch) == 5:
                out += stage.push(batch)
                batch = []
            if frame.index == 9:
                break
    out += stage.push(batch) + stage.flush()
    assert [f.index for f in out] == list(range(10)) and all(f.image.shape[:2] == size for f in out)
    faces = stage.report()["faces"]
    assert faces["tracks"] == 1 and faces["frames_with_faces"] == 10 and faces["crops"] == 10
    assert faces["mean_face_px"] > 100
