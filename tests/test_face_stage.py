"""The face stage with a stub detector: frames out once and in order, bounded buffer, pasting, overlay, report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vsr.config import FaceOptions
from vsr.media.reader import Frame
from vsr.models.resample import Interpolation
from vsr.pipelines.face.detect import Detection
from vsr.pipelines.face.geometry import FaceBox
from vsr.pipelines.face.stage import FaceStage
from vsr.pipelines.upscale import Upscaler


class StubDetector:
    """Faces from a plan: ``plan(frame_index)`` -> list of (cx, cy, side); boxes map 1:1 to crop boxes."""

    name = "stub"

    def __init__(self, plan, det_every: int = 1) -> None:
        self.plan = plan
        self.det_every = det_every
        self.calls = 0

    def __call__(self, image: np.ndarray) -> list[Detection]:
        index = self.calls * self.det_every
        self.calls += 1
        return [
            Detection((cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2), 0.9) for cx, cy, s in self.plan(index)
        ]

    def face_box(self, det: Detection) -> FaceBox:
        x0, y0, x1, y1 = det.box
        return FaceBox((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0)


class NearestUpscaler:
    """A fast stand-in upscaler that records the batch sizes it was given; optionally adds a texture."""

    def __init__(self, scale: int, texture: int = 0) -> None:
        self.scale = scale
        self.texture = texture
        self.batches: list[int] = []
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        self.batches.append(len(frames))
        out = []
        for f in frames:
            self.shapes.append(f.shape)
            up = np.repeat(np.repeat(f, self.scale, 0), self.scale, 1)
            if self.texture:
                yy, xx = np.mgrid[0 : up.shape[0], 0 : up.shape[1]]
                chk = ((yy + xx) % 2 * 2 - 1)[..., None] * self.texture
                up = np.clip(up.astype(np.int32) + chk, 0, 255).astype(f.dtype)
            out.append(up)
        return out


def push(stage: FaceStage, images: list[np.ndarray]) -> list[np.ndarray]:
    """Feed images as frames (pts = index), check they come back whole and in order; return the images."""
    first = getattr(stage, "fed", 0)
    stage.fed = first + len(images)
    out = stage.push([Frame(im, pts=first + i, index=first + i) for i, im in enumerate(images)])
    return _images(stage, out)


def flush(stage: FaceStage) -> list[np.ndarray]:
    return _images(stage, stage.flush())


def _images(stage: FaceStage, frames: list[Frame]) -> list[np.ndarray]:
    done = getattr(stage, "done", 0)
    assert [f.pts for f in frames] == list(range(done, done + len(frames)))  # whole, in order
    stage.done = done + len(frames)
    return [f.image for f in frames]


def _stage(plan, scale=2, det_every=1, face=None, background=None, **options) -> FaceStage:
    opts = FaceOptions(det_every=det_every, min_face=options.pop("min_face", 8), **options)
    return FaceStage(
        opts,
        scale,
        face or NearestUpscaler(scale),
        background or NearestUpscaler(scale),
        detector=StubDetector(plan, det_every),
    )


def _tagged(i: int, h: int = 40, w: int = 56) -> np.ndarray:
    frame = np.full((h, w, 3), 128, dtype=np.uint8)
    frame[..., 0] = i % 256
    frame[..., 1] = i // 256
    return frame


@pytest.mark.parametrize("det_every", [1, 3])
def test_every_frame_comes_out_once_in_order_with_a_bounded_buffer(det_every):
    def plan(t):
        return [(20 + t % 7, 18, 16)] if t % 11 < 8 else []

    stage = _stage(plan, det_every=det_every)
    out, pushed, largest = [], 0, 0
    for size in [1, 3, 7, 2, 5, 1, 1, 9, 4, 6, 8, 3] * 2:
        out += push(stage, [_tagged(pushed + k) for k in range(size)])
        pushed += size
        largest = max(largest, size)
        assert stage.buffered <= stage.lookahead + largest
        assert len(out) == pushed - stage.buffered
    out += flush(stage)
    assert flush(stage) == []
    assert len(out) == pushed
    # Decode the tag from a corner no face crop reaches.
    assert [int(f[-1, -1, 0]) + 256 * int(f[-1, -1, 1]) for f in out] == list(range(pushed))
    assert all(f.shape == (80, 112, 3) for f in out)
    assert stage.max_buffered <= stage.lookahead + largest


def test_frames_without_faces_are_the_background_upscale():
    stage = _stage(lambda t: [], face=NearestUpscaler(2, texture=40))
    frames = [_tagged(i) for i in range(5)]
    out = push(stage, frames) + flush(stage)
    for lr, hr in zip(frames, out, strict=True):
        np.testing.assert_array_equal(hr, np.repeat(np.repeat(lr, 2, 0), 2, 1))
    assert stage.report()["faces"]["frames_with_faces"] == 0


def test_many_faces_in_a_frame_are_batched_and_pasted_where_tracked():
    grid = [(12 + 24 * c, 12 + 24 * r, 14) for r in range(4) for c in range(5)]  # 20 faces
    face_up = NearestUpscaler(2, texture=40)
    stage = _stage(lambda t: grid if t >= 3 else [], face=face_up)
    rng = np.random.default_rng(0)
    base = np.full((100, 124, 3), 120, dtype=np.uint8)
    frames = [np.clip(base + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8) for _ in range(8)]
    out = push(stage, frames[:4]) + push(stage, frames[4:]) + flush(stage)
    assert len(out) == 8
    report = stage.report()["faces"]
    assert report["crops"] == 20 * 5 and report["tracks"] == 20 and report["frames_with_faces"] == 5
    assert max(face_up.batches) >= 20  # crops of one size from many faces and frames share a call
    hr, bg = out[6].astype(np.int32), np.repeat(np.repeat(frames[6], 2, 0), 2, 1).astype(np.int32)
    for cx, cy, _ in grid:
        centre = (slice(2 * cy - 6, 2 * cy + 6), slice(2 * cx - 6, 2 * cx + 6))
        assert np.abs(hr[centre] - bg[centre]).mean() > 25  # the face model's texture is there
    assert np.abs(out[1].astype(np.int32) - np.repeat(np.repeat(frames[1], 2, 0), 2, 1)).max() == 0


def test_identity_face_model_reproduces_the_background_upscale():
    """With the face upscaler equal to the background upscaler, face mode changes nothing (within rounding)."""
    cpu = torch.device("cpu")

    def bicubic():
        return Upscaler(Interpolation(2, "cubic"), 2, cpu)

    faces = [(10, 10, 14), (40, 30, 18), (70, 44, 16)]  # one crosses the top-left border, one the bottom
    stage = _stage(lambda t: faces, face=bicubic(), background=bicubic())
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:48, 0:80]
    smooth = np.stack([100 + 60 * np.sin(xx / 7), 120 + 50 * np.cos(yy / 5), 90 + xx], -1)
    frames = [np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8) for _ in range(4)]
    out = push(stage, frames) + flush(stage)
    expected = bicubic()(frames)
    assert stage.report()["faces"]["crops"] == 12
    for a, b in zip(out, expected, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_small_faces_are_left_alone_and_uint16_is_kept():
    stage = _stage(lambda t: [(20, 20, 6), (40, 20, 16)], face=NearestUpscaler(2, texture=40), min_face=10)
    frames = [(np.full((40, 60, 3), 30000, dtype=np.uint16)) for _ in range(3)]
    out = push(stage, frames) + flush(stage)
    assert out[0].dtype == np.uint16
    assert stage.report()["faces"]["crops"] == 3 and stage.report()["faces"]["mean_face_px"] == 16


def test_draw_boxes_overlays_the_tracked_boxes():
    stage = _stage(lambda t: [(28, 20, 20)], draw_boxes=True)
    out = push(stage, [_tagged(0, 40, 56) for _ in range(3)]) + flush(stage)
    green = (out[1][..., 1] == 255) & (out[1][..., 0] == 0)
    assert green[2 * 10 : 2 * 30, 2 * 18].any()  # left edge of the box (x0 = 18 in LR)
    assert not green[:, :10].any()


def test_report_names_the_detector_and_counts():
    stage = _stage(lambda t: [(28, 20, 20)], det_every=2)
    push(stage, [_tagged(i) for i in range(6)])
    flush(stage)
    report = stage.report()
    assert report["detector"] == "stub"
    assert set(report["faces"]) >= {"frames_with_faces", "tracks", "crops", "mean_face_px"}
    assert report["faces"]["frames_with_faces"] == 6 and report["faces"]["tracks"] == 1
    assert report["faces"]["detector_runs"] == 3


def test_fixed_face_size_models_get_resized_crops():
    face_up = NearestUpscaler(2, texture=10)
    stage = FaceStage(
        FaceOptions(min_face=8),
        2,
        face_up,
        NearestUpscaler(2),
        detector=StubDetector(lambda t: [(28, 20, 22)]),
        face_size=32,
    )
    out = push(stage, [_tagged(0) for _ in range(3)]) + flush(stage)
    assert len(out) == 3 and all(shape[:2] == (32, 32) for shape in face_up.shapes)


class TaggedDetector:
    """A thread-hungry stand-in: reads the frame index from the tag pixel (no call-order state), sleeps
    like a real detector, and records how many calls overlap and how many instances were built."""

    name = "tagged"

    def __init__(self, registry: dict) -> None:
        self.registry = registry
        with registry["lock"]:
            registry["instances"] += 1

    def __call__(self, image: np.ndarray) -> list[Detection]:
        import time

        reg = self.registry
        with reg["lock"]:
            reg["running"] += 1
            reg["peak"] = max(reg["peak"], reg["running"])
        time.sleep(0.01)
        with reg["lock"]:
            reg["running"] -= 1
        t = int(image[-1, -1, 0]) + 256 * int(image[-1, -1, 1])
        cx, cy, s = (20 + t % 7, 18, 16) if t % 11 < 8 else (0, 0, 0)
        return [Detection((cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2), 0.9)] if s else []

    def face_box(self, det: Detection) -> FaceBox:
        x0, y0, x1, y1 = det.box
        return FaceBox((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0)


@pytest.mark.parametrize("det_every", [1, 2])
def test_detection_in_worker_threads_gives_the_same_output_as_one(det_every):
    import threading

    from vsr.pipelines.face.detect import DetectAhead

    def run(workers: int):
        reg = {"lock": threading.Lock(), "instances": 0, "running": 0, "peak": 0}
        detection = DetectAhead(TaggedDetector(reg), build=lambda: TaggedDetector(reg), workers=workers)
        stage = FaceStage(
            FaceOptions(det_every=det_every, min_face=8), 2, NearestUpscaler(2, texture=30), NearestUpscaler(2),
            detection=detection,
        )  # fmt: skip
        out, pushed = [], 0
        for size in [1, 3, 7, 2, 5, 1, 9, 4]:
            out += push(stage, [_tagged(pushed + k) for k in range(size)])
            pushed += size
            assert stage.buffered <= stage.lookahead + size
        out += flush(stage)
        return out, stage.report(), reg

    one, report_one, reg_one = run(1)
    many, report_many, reg_many = run(3)
    assert len(one) == len(many) == 32
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)
    assert report_one["face_tracks"] == report_many["face_tracks"] and report_one["face_tracks"]
    assert reg_one["peak"] == 1 and reg_many["peak"] >= 2  # the workers did detect at the same time
    assert reg_many["instances"] <= 1 + 3  # the stage's own, and one per worker thread at most
