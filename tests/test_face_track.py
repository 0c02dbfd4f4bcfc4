"""Tracking on synthetic box sequences: jitter smoothing, gap filling, det_every, crossing faces, memory."""

from __future__ import annotations

import numpy as np

from vsr.pipelines.face.geometry import FaceBox
from vsr.pipelines.face.track import FaceTracker, Observation, TrackedFace


def run(
    tracker: FaceTracker, detections: dict[int, list[Observation]], frames: int
) -> list[list[TrackedFace]]:
    """Drive the tracker as the stage does: update on detection frames, query t once t + lookahead is in."""
    out: list[list[TrackedFace]] = []
    for i in range(frames):
        if i % tracker.det_every == 0:
            tracker.update(i, detections.get(i, []))
        while len(out) + tracker.lookahead <= i:
            out.append(tracker.faces_at(len(out)))
            tracker.prune(len(out))
    tracker.finish()
    while len(out) < frames:
        out.append(tracker.faces_at(len(out)))
        tracker.prune(len(out))
    return out


def obs(cx: float, cy: float, side: float) -> Observation:
    return Observation(FaceBox(cx, cy, side), 0.9)


def moving_face(frames: int, rng, noise: float = 2.0):
    truth = [(100 + 2.0 * t, 80 + 0.5 * t, 40.0) for t in range(frames)]
    noisy = {
        t: [obs(cx + rng.normal(0, noise), cy + rng.normal(0, noise), side * np.exp(rng.normal(0, 0.05)))]
        for t, (cx, cy, side) in enumerate(truth)
    }
    return truth, noisy


def test_smoothing_reduces_jitter_without_lag():
    rng = np.random.default_rng(1)
    truth, noisy = moving_face(80, rng)
    result = run(FaceTracker(det_every=1), noisy, 80)
    assert all(len(faces) == 1 for faces in result)
    assert len({faces[0].track_id for faces in result}) == 1
    raw = np.array([noisy[t][0].box.cx - truth[t][0] for t in range(80)])
    smooth = np.array([result[t][0].box.cx - truth[t][0] for t in range(80)])
    raw_side = np.array([np.log(noisy[t][0].box.side / 40) for t in range(80)])
    smooth_side = np.array([np.log(result[t][0].box.side / 40) for t in range(80)])
    assert smooth[5:-5].var() < 0.35 * raw[5:-5].var()
    assert smooth_side[5:-5].var() < 0.35 * raw_side[5:-5].var()
    assert abs(smooth.mean()) < 0.5  # no lag behind the steady motion
    # Frame-to-frame flicker of the box (what shows as a wobbling paste) drops too.
    assert np.abs(np.diff(smooth)).mean() < 0.4 * np.abs(np.diff(raw)).mean()


def test_short_gaps_are_interpolated_long_gaps_are_not():
    truth = {t: [obs(50 + 3.0 * t, 60, 30)] for t in range(40) if t not in (10, 11, 12) and not 25 <= t < 35}
    result = run(FaceTracker(det_every=1), truth, 40)
    for t in (10, 11, 12):
        assert len(result[t]) == 1 and not result[t][0].detected
        assert abs(result[t][0].box.cx - (50 + 3.0 * t)) < 0.5
    assert all(result[t] == [] for t in range(25, 35))  # 11 frames: too long to bridge
    assert result[9][0].detected and result[13][0].detected


def test_det_every_fills_frames_between_detections():
    dets = {t: [obs(40 + 2.0 * t, 50, 30)] for t in range(0, 41, 4)}
    tracker = FaceTracker(det_every=4)
    result = run(tracker, dets, 42)
    for t in range(42):
        assert len(result[t]) == 1, t
        assert abs(result[t][0].box.cx - (40 + 2.0 * min(t, 40))) < 0.6
    assert tracker.lookahead >= 8


def test_crossing_faces_keep_their_tracks():
    """Two same-size faces cross head-on; during the overlap the detector sees only the front one."""
    dets: dict[int, list[Observation]] = {}
    for t in range(60):
        a = obs(40 + 4.0 * t, 100, 40)  # moving right
        b = obs(280 - 4.0 * t, 104, 40)  # moving left, a little lower
        dets[t] = [a] if 28 <= t <= 31 else [a, b]  # b hidden behind a at the crossing
    result = run(FaceTracker(det_every=1), dets, 60)
    ids = {}
    for t in range(60):
        for face in result[t]:
            ids.setdefault(face.track_id, []).append((t, face.box.cx))
    assert len(ids) == 2
    for track in ids.values():
        xs = np.array([x for _, x in track])
        steps = np.diff(xs)
        assert (steps > 0).all() or (steps < 0).all()  # each track keeps one direction: no swap
        assert len(track) == 60  # the hidden frames were bridged


def test_crossing_faces_of_different_sizes_are_not_swapped():
    dets = {t: [obs(60 + 3.0 * t, 100, 60), obs(200 - 1.0 * t, 110, 24)] for t in range(70)}
    result = run(FaceTracker(det_every=1), dets, 70)
    sides = {}
    for faces in result:
        for face in faces:
            sides.setdefault(face.track_id, []).append(face.box.side)
    assert len(sides) == 2
    for values in sides.values():
        assert max(values) / min(values) < 1.1


def test_one_off_false_detection_is_not_pasted_and_fades():
    dets = {t: [obs(50, 50, 30)] for t in range(30)}
    dets[7] = dets[7] + [obs(200, 200, 30)]  # a single spurious detection
    for t in range(12, 30):
        dets[t] = dets[t] + [obs(150, 60, 30)]  # a face that appears mid-stream
    tracker = FaceTracker(det_every=1, fade=3)
    result = run(tracker, dets, 30)
    assert all(f.box.cx != 200 for faces in result for f in faces)
    late = [next(f for f in result[t] if abs(f.box.cx - 150) < 5).alpha for t in (12, 13, 14, 15)]
    assert late == [1 / 3, 2 / 3, 1.0, 1.0]
    assert all(f.alpha == 1.0 for f in result[0])  # present from the start: no fade-in
    assert len(tracker.confirmed_ids) == 2


def test_face_leaving_mid_stream_fades_out():
    dets = {t: [obs(50, 50, 30)] for t in range(20)}
    result = run(FaceTracker(det_every=1, fade=3), dets, 40)
    assert [result[t][0].alpha for t in (16, 17, 18, 19)] == [1.0, 1.0, 2 / 3, 1 / 3]
    assert result[20] == []


def test_landmarks_are_smoothed_along_with_the_box():
    rng = np.random.default_rng(3)
    base = np.array([[40, 40], [60, 40], [50, 50], [42, 60], [58, 60]], dtype=np.float64)
    dets = {
        t: [Observation(FaceBox(50, 52, 36), 0.9, (base + rng.normal(0, 1.5, base.shape)).astype(np.float32))]
        for t in range(40)
    }
    result = run(FaceTracker(det_every=1), dets, 40)
    raw = np.stack([dets[t][0].landmarks for t in range(5, 35)]) - base
    smooth = np.stack([result[t][0].landmarks for t in range(5, 35)]) - base
    assert smooth.var() < 0.35 * raw.var()


def test_memory_stays_bounded_on_a_long_stream():
    rng = np.random.default_rng(2)
    tracker = FaceTracker(det_every=1)
    peak = 0
    emitted = 0
    for i in range(600):
        faces = [obs(100 + 20 * np.sin(i / 30) + rng.normal(), 100, 40)]
        if i % 100 < 50:  # a second face that comes and goes: tracks are created and retired
            faces.append(obs(300, 120, 30))
        tracker.update(i, faces)
        while emitted + tracker.lookahead <= i:
            tracker.faces_at(emitted)
            emitted += 1
            tracker.prune(emitted)
        peak = max(peak, tracker.buffered_observations())
    assert peak <= 3 * (tracker.lookahead + tracker.smooth_radius + 8)
    assert len(tracker.tracks) <= 3
