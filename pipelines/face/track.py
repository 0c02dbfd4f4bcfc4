"""Face tracks across frames: association, smoothing, gap filling, fade in/out; bounded memory.

The tracker sees detections only on *detection frames* (every ``det_every``-th
frame) and answers, for any frame at least ``lookahead`` frames behind the
newest detection frame, where each face is:

- **Association** is greedy on a cost that combines the centre distance to the
  track's *predicted* position (a straight line through its last few
  observations, so two faces that cross keep their own direction) with the
  size ratio (so a near and a far face that overlap are not swapped).  A
  detection that matches no track starts one; a track unmatched for more than
  ``max_gap`` frames is closed.
- **Smoothing and gap filling** are one step: the state (centre, log side,
  landmarks) at frame t is a local linear fit, Gaussian-weighted over the
  observations within ``smooth_radius`` frames of t, plus the nearest
  observation on each side.  The fit averages jitter away without lagging
  behind steady motion, and between two observations (missed detections, or
  the frames between detection frames) it interpolates.
- **Confirmation**: a track counts once it has ``min_hits`` observations, so a
  one-off false detection is never pasted.
- **Fade**: a face that appears or disappears mid-stream blends in and out
  over ``fade`` frames instead of popping.

Memory: ``prune`` drops what no future query can need, so the state is a few
observations per live track, independent of the stream's length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vsr.pipelines.face.geometry import FaceBox

_LM = 10  # landmark coordinates (5 points x 2) stored after cx, cy, log side
_PREDICT_FROM = 4  # observations used to predict a track's position
_GATE_DISTANCE = 1.0  # max centre distance to the prediction, in face sides
_GATE_SIZE = math.log(1.6)  # max size ratio between a track and a detection
_SIZE_WEIGHT = 1.5


@dataclass(frozen=True)
class Observation:
    """A detection mapped to its crop box: what the tracker consumes."""

    box: FaceBox
    score: float = 1.0
    landmarks: np.ndarray | None = None  # (5, 2) or None


@dataclass(frozen=True)
class TrackedFace:
    """A face at one frame: smoothed crop box and landmarks, and how strongly to paste it (``alpha``)."""

    track_id: int
    box: FaceBox
    score: float
    landmarks: np.ndarray | None
    alpha: float
    detected: bool  # a detection at this very frame (else interpolated or held)


@dataclass
class FaceTrack:
    """One face's observations (frame -> state vector), pruned to what future queries need."""

    track_id: int
    first_frame: int
    frames: list[int] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    hits: int = 0
    closed: bool = False
    ended_with_stream: bool = False

    @property
    def last_frame(self) -> int:
        return self.frames[-1]

    def add(self, frame: int, state: np.ndarray, score: float) -> None:
        self.frames.append(frame)
        self.states.append(state)
        self.scores.append(score)
        self.hits += 1

    def predict(self, frame: int) -> np.ndarray:
        """Centre and log side expected at ``frame``: a line through the last few observations."""
        f = np.asarray(self.frames[-_PREDICT_FROM:], dtype=np.float64)
        s = np.asarray([st[:3] for st in self.states[-_PREDICT_FROM:]], dtype=np.float64)
        if len(f) < 2:
            return s[-1]
        fm, sm = f.mean(), s.mean(axis=0)
        slope = ((f - fm)[:, None] * (s - sm)).sum(axis=0) / ((f - fm) ** 2).sum()
        # Never extrapolate faster than half a face side per frame: one bad box must not fling a track.
        side = math.exp(s[-1, 2])
        slope[:2] = np.clip(slope[:2], -0.5 * side, 0.5 * side)
        slope[2] = float(np.clip(slope[2], -0.1, 0.1))
        return sm + slope * (frame - fm)


def _state_of(obs: Observation) -> np.ndarray:
    state = np.full(3 + _LM, np.nan, dtype=np.float64)
    state[:3] = obs.box.cx, obs.box.cy, math.log(max(obs.box.side, 1e-3))
    if obs.landmarks is not None:
        state[3:] = np.asarray(obs.landmarks, dtype=np.float64).reshape(-1)[:_LM]
    return state


def _local_linear(frames: np.ndarray, states: np.ndarray, t: float, sigma: float) -> np.ndarray:
    """Gaussian-weighted local linear fit of every state column, evaluated at ``t``.

    The box columns are always present; the landmark columns are fitted on the rows that have them.
    With one usable row (or all rows at one frame) the fit is a weighted mean.
    """
    d = frames.astype(np.float64) - t
    w = np.exp(-0.5 * (d / sigma) ** 2) + 1e-9
    out = np.full(states.shape[1], np.nan)
    has_lm = ~np.isnan(states[:, 3:]).any(axis=1)
    for cols, rows in ((slice(0, 3), np.ones(len(d), dtype=bool)), (slice(3, None), has_lm)):
        if not rows.any():
            continue
        wd, dd, y = w[rows], d[rows], states[rows, cols]
        s0, s1, s2 = wd.sum(), (wd * dd).sum(), (wd * dd * dd).sum()
        t0 = (wd[:, None] * y).sum(axis=0)
        det = s0 * s2 - s1 * s1
        if det <= 1e-9 * s0 * max(s2, 1e-9):
            out[cols] = t0 / s0
            continue
        t1 = (wd[:, None] * dd[:, None] * y).sum(axis=0)
        out[cols] = (s2 * t0 - s1 * t1) / det
    return out


class FaceTracker:
    """Streaming tracker.  Call ``update`` on each detection frame in order, ``finish`` at the end of the
    stream, and ``faces_at(t)`` once frames up to ``t + lookahead`` have been updated (or after ``finish``).
    """

    def __init__(
        self,
        det_every: int = 1,
        smooth_radius: int | None = None,
        max_gap: int | None = None,
        fade: int = 3,
        min_hits: int = 2,
    ) -> None:
        if det_every < 1:
            raise ValueError("det_every must be at least 1")
        self.det_every = det_every
        self.smooth_radius = smooth_radius if smooth_radius is not None else max(3, 2 * det_every)
        self.max_gap = max_gap if max_gap is not None else max(6, 2 * det_every)
        self.fade = max(1, fade)
        self.min_hits = min_hits
        self.tracks: list[FaceTrack] = []
        self.runs: list[int] = []  # detection frames still in the window
        self.total_runs = 0
        self.total_tracks = 0  # tracks ever started
        self.confirmed_ids: set[int] = set()
        self.first_run: int | None = None
        self.ended = False

    @property
    def lookahead(self) -> int:
        """How many frames past t must have been seen before ``faces_at(t)`` is final."""
        # Smoothing needs smooth_radius frames ahead; a fade-out needs to know the track has closed,
        # which takes a detection frame later than last + max_gap.
        return max(self.smooth_radius, self.max_gap + self.fade + self.det_every - 1)

    # -- updating -------------------------------------------------------------------------------------------
    def update(self, frame: int, observations: list[Observation]) -> None:
        """Associate this detection frame's observations with the tracks (frames must increase)."""
        if self.runs and frame <= self.runs[-1]:
            raise ValueError(f"detection frames must increase: {frame} after {self.runs[-1]}")
        if self.first_run is None:
            self.first_run = frame
        self.runs.append(frame)
        self.total_runs += 1
        for track in self.tracks:
            if not track.closed and frame - track.last_frame > self.max_gap:
                track.closed = True
        live = [t for t in self.tracks if not t.closed]
        states = [_state_of(o) for o in observations]
        pairs = []
        for ti, track in enumerate(live):
            pred = track.predict(frame)
            side = math.exp(pred[2])
            for oi, st in enumerate(states):
                dist = math.hypot(st[0] - pred[0], st[1] - pred[1]) / side
                size = abs(st[2] - pred[2])
                if dist <= _GATE_DISTANCE and size <= _GATE_SIZE:
                    pairs.append((dist + _SIZE_WEIGHT * size, ti, oi))
        used_t, used_o = set(), set()
        for _, ti, oi in sorted(pairs):
            if ti in used_t or oi in used_o:
                continue
            used_t.add(ti)
            used_o.add(oi)
            live[ti].add(frame, states[oi], observations[oi].score)
        for oi, st in enumerate(states):
            if oi not in used_o:
                track = FaceTrack(track_id=self.total_tracks, first_frame=frame)
                track.add(frame, st, observations[oi].score)
                self.tracks.append(track)
                self.total_tracks += 1

    def finish(self) -> None:
        """End of stream: every track closes (without a fade-out: the face was there until the end)."""
        self.ended = True
        for track in self.tracks:
            if not track.closed:
                track.closed = True
                track.ended_with_stream = True

    # -- querying -------------------------------------------------------------------------------------------
    def faces_at(self, t: int) -> list[TrackedFace]:
        """The confirmed faces at frame ``t``, smoothed, interpolated across gaps, with their fade weight."""
        faces = []
        need_hits = min(self.min_hits, self.total_runs)
        for track in self.tracks:
            if track.hits < need_hits:
                continue
            face = self._face_of(track, t)
            if face is not None:
                self.confirmed_ids.add(track.track_id)
                faces.append(face)
        return faces

    def _face_of(self, track: FaceTrack, t: int) -> TrackedFace | None:
        frames = np.asarray(track.frames)
        before = frames[frames <= t]
        after = frames[frames >= t]
        if not len(before):
            return None
        prev = int(before[-1])
        if len(after):
            nxt = int(after[0])
            if nxt - prev > self.max_gap:
                return None
        else:
            # Past the last observation: hold only across frames no detector looked at (det_every > 1)
            # once nothing more can come (the stream ended, or a later detection frame missed it).
            if t - prev >= self.det_every or any(prev < r <= t for r in self.runs):
                return None
            if not track.closed:
                return None
        lo, hi = t - self.smooth_radius, t + self.smooth_radius
        pick = (frames >= lo) & (frames <= hi)
        pick[np.searchsorted(frames, prev)] = True
        if len(after):
            pick[np.searchsorted(frames, int(after[0]))] = True
        states = np.asarray(track.states)[pick]
        t_fit = min(t, track.last_frame) if not len(after) else t
        state = _local_linear(frames[pick], states, t_fit, sigma=max(1.0, self.smooth_radius / 2))
        score = float(np.mean(np.asarray(track.scores)[pick]))
        alpha = 1.0
        if track.first_frame != self.first_run:
            alpha = min(alpha, (t - track.first_frame + 1) / self.fade)
        if track.closed and not track.ended_with_stream:
            alpha = min(alpha, (track.last_frame - t + 1) / self.fade)
        box = FaceBox(cx=float(state[0]), cy=float(state[1]), side=float(math.exp(state[2])))
        landmarks = None if np.isnan(state[3:]).any() else state[3:].reshape(5, 2).astype(np.float32)
        return TrackedFace(
            track_id=track.track_id,
            box=box,
            score=score,
            landmarks=landmarks,
            alpha=float(np.clip(alpha, 0.0, 1.0)),
            detected=prev == t,
        )

    # -- memory ---------------------------------------------------------------------------------------------
    def prune(self, t: int) -> None:
        """Forget what no query for frames >= ``t`` (nor association) can need."""
        cutoff = t - max(self.smooth_radius, self.max_gap)
        kept = []
        for track in self.tracks:
            if track.closed and track.last_frame < cutoff:
                continue
            # Older observations cannot be a query's neighbour any more (a gap longer than max_gap is
            # never bridged), but the last few still predict where the track goes next.
            keep_from = 0
            while keep_from < len(track.frames) - _PREDICT_FROM and track.frames[keep_from] < cutoff:
                keep_from += 1
            if keep_from:
                del track.frames[:keep_from], track.states[:keep_from], track.scores[:keep_from]
            kept.append(track)
        self.tracks = kept
        self.runs = [r for r in self.runs if r >= cutoff]

    def buffered_observations(self) -> int:
        """Observations held in memory (for tests of boundedness)."""
        return sum(len(track.frames) for track in self.tracks)
