"""Face mode as a streaming stage: detect, track, super-resolve faces, paste them into the upscaled frame.

The enhance pipeline pushes low-resolution frames (``vsr.media.reader.Frame``:
pixels with their timestamp) in order, and the stage returns every frame exactly
once, in order, whole: the upscaled pixels replace the low-resolution ones and,
when asked (``--altered-mask``), ``Frame.altered`` says where the face model's
pixels went.  It holds frames back only as long as the tracker needs to
look ahead (``FaceTracker.lookahead``, a few frames: enough to smooth the
boxes, bridge a missed detection and know whether a face is leaving), plus the
frames whose detection is still running: detection runs in worker threads
(``DetectAhead``) on frames as they arrive, while the models work on earlier
ones, and the tracker takes the results in frame order, so the output is the
same as detecting inline.  Memory does not grow with the stream.

For each frame that is ready:

1. the whole frame goes through the background upscaler (batched over frames);
2. each tracked face's crop (face box plus context, reflected at the frame
   borders) goes through the face upscaler, batched across faces and frames;
3. the upscaled crop's low frequencies are replaced by the background's (no
   colour shift), and it is blended in under a feathered rounded-square mask
   whose soft edge grows with the face (no seam), faded in and out as tracks
   start and end;
4. optionally the boxes are drawn (``--draw-boxes``).
"""

from __future__ import annotations

import typing
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vsr.config import FaceOptions
from vsr.pipelines.face.detect import DetectAhead, Detection, face_box_from_detection, make_detector
from vsr.pipelines.face.geometry import (
    COLOUR_SIGMA,
    CROP_MARGIN,
    CropWindow,
    crop_square,
    crop_window,
    feather_mask,
    match_low_frequencies,
    paste_back,
    paste_weight,
)
from vsr.pipelines.face.track import FaceTracker, Observation, TrackedFace

if typing.TYPE_CHECKING:
    from vsr.media.reader import Frame

_MAX_PAD = 16  # LR context pixels around a crop for the model's receptive field, trimmed afterwards
_BOX_COLOUR = (0, 255, 0)


@dataclass
class FaceStats:
    """Counts for the report."""

    frames: int = 0
    frames_with_faces: int = 0
    crops: int = 0
    face_px_sum: float = 0.0
    detections: int = 0
    detector_runs: int = 0
    detect_seconds: float = 0.0


@dataclass
class _Crop:
    frame: int  # index in the batch being finished
    face: TrackedFace
    window: CropWindow
    image: np.ndarray
    coverage: np.ndarray | None = None  # HR; where an aligned face restorer saw the crop (face/align.py)


class FaceStage:
    """Detect, track, super-resolve and paste back faces; every frame comes out once, in order.

    ``detector`` overrides ``options.detector`` (any callable image -> list of ``Detection``; tests
    pass stubs).  ``face_size`` is the side a face model with a fixed input wants its crops resized
    to (default: the face module's ``face_size`` attribute if it has one, else crops keep their
    native resolution, which suits fully convolutional models best).  With ``altered`` every frame
    that comes out carries the face model's paste-back weight (``Frame.altered``).  ``detection`` is the
    ``DetectAhead`` pool to detect with (``fresh`` stages share it); by default one is made, with a
    detector per worker thread when the detector comes from ``options`` (a given one gets one worker).
    """

    def __init__(
        self,
        options: FaceOptions,
        scale: int,
        face_upscaler: Callable[[list[np.ndarray]], list[np.ndarray]],
        background_upscaler: Callable[[list[np.ndarray]], list[np.ndarray]],
        detector: Callable[[np.ndarray], list[Detection]] | None = None,
        face_size: int | None = None,
        altered: bool = False,
        detection: DetectAhead | None = None,
    ) -> None:
        self.options = options
        self.scale = scale
        self.face_upscaler = face_upscaler
        self.background_upscaler = background_upscaler
        if detection is None:
            build = None
            if detector is None:
                upsample = getattr(options, "det_upsample", None) or None

                def build():
                    return make_detector(options.detector, options.det_threshold, upsample)

                detector = build()
            detection = DetectAhead(detector, build)
        self.detection = detection
        self.detector = detector if detector is not None else detection.detector
        self._face_box = getattr(detector, "face_box", face_box_from_detection)
        self.tracker = FaceTracker(det_every=options.det_every)
        module = getattr(face_upscaler, "module", None)
        self.face_size = face_size if face_size is not None else getattr(module, "face_size", None)
        overlap = int(getattr(face_upscaler, "overlap", 4))
        self.pad = max(2, min(overlap, _MAX_PAD))
        self.altered = altered
        self._pending: deque[Frame] = deque()
        self._detecting: deque[tuple[Frame, typing.Any]] = deque()  # (frame, its detection or None)
        self._next_submit = 0
        self._tracks: dict[int, list[list[int]]] = {}  # track id -> [frame index, x0, y0, x1, y1] per frame
        self._next_in = 0
        self._next_out = 0
        self._flushed = False
        self.stats = FaceStats()
        self.max_buffered = 0

    def fresh(self) -> FaceStage:
        """A new stage for an independent stream (the next image) with the same models and detector."""
        return FaceStage(
            self.options, self.scale, self.face_upscaler, self.background_upscaler,
            detector=self.detector, face_size=self.face_size, altered=self.altered, detection=self.detection,
        )  # fmt: skip

    # -- the stage contract ---------------------------------------------------------------------------------
    @property
    def lookahead(self) -> int:
        """Frames held back after the newest pushed frame (at most; fewer at the end of the stream): the
        tracker's look-ahead, and the frames whose detection may still be running."""
        return self.tracker.lookahead + self.detection.ahead * self.options.det_every

    @property
    def buffered(self) -> int:
        """Frames pushed but not yet returned."""
        return len(self._pending) + len(self._detecting)

    def push(self, frames: list[Frame]) -> list[Frame]:
        """Take LR frames; return the finished HR frames that no longer need look-ahead (maybe none)."""
        if self._flushed:
            raise RuntimeError("FaceStage.push after flush")
        for frame in frames:
            self._submit(frame)
        while len(self._detecting) > self.detection.ahead * self.options.det_every:
            self._observe_next()
        # Frame t is final once detections up to t + the tracker's look-ahead are in: the buffer never
        # holds more than lookahead + len(frames) frames, and the upscalers see the whole ready run as
        # one batch.
        return self._finish(self._next_in - self.tracker.lookahead - self._next_out)

    def flush(self) -> list[Frame]:
        """End of stream: return every frame still held."""
        if self._flushed:
            return []
        self._flushed = True
        while self._detecting:
            self._observe_next()
        self.tracker.finish()
        return self._finish(len(self._pending))

    def report(self) -> dict:
        """What face mode found, for the run report."""
        s = self.stats
        return {
            "detector": getattr(self.detector, "name", type(self.detector).__name__),
            "det_every": self.options.det_every,
            "lookahead": self.lookahead,
            "faces": {
                "frames_with_faces": s.frames_with_faces,
                "tracks": len(self.tracker.confirmed_ids),
                "crops": s.crops,
                "mean_face_px": round(s.face_px_sum / s.crops, 1) if s.crops else 0.0,
                "detections": s.detections,
                "detector_runs": s.detector_runs,
            },
            "face_tracks": [
                {"id": tid, "first_frame": boxes[0][0], "last_frame": boxes[-1][0], "boxes": boxes}
                for tid, boxes in sorted(self._tracks.items())
            ],
        }

    # -- steps ----------------------------------------------------------------------------------------------
    def _submit(self, frame: Frame) -> None:
        """Start detecting on a detection frame (every ``det_every``-th) in the pool."""
        detect = self._next_submit % self.options.det_every == 0
        self._detecting.append((frame, self.detection.submit(frame.image) if detect else None))
        self._next_submit += 1

    def _observe_next(self) -> None:
        """Give the tracker the oldest submitted frame's detections (waiting for them)."""
        frame, running = self._detecting.popleft()
        index = self._next_in
        if running is not None:
            detections, seconds = running.result()
            self.stats.detect_seconds += seconds
            self.stats.detector_runs += 1
            self.stats.detections += len(detections)
            obs = [
                Observation(box=self._face_box(d), score=d.score, landmarks=d.landmarks) for d in detections
            ]
            self.tracker.update(index, obs)
        self._pending.append(frame)
        self._next_in += 1
        self.max_buffered = max(self.max_buffered, len(self._pending))

    def _finish(self, count: int) -> list[Frame]:
        if count <= 0:
            return []
        frames = [self._pending.popleft() for _ in range(count)]
        lr = [f.image for f in frames]
        first = self._next_out
        self._next_out += count
        # 1. Backgrounds, batched over frames.
        hr = self.background_upscaler(lr)
        # 2. Face crops of every frame, batched through the face model.
        faces = [self._faces_to_enhance(first + j) for j in range(count)]
        crops = [
            _Crop(j, face, window, crop_square(lr[j], window.x0, window.y0, window.side))
            for j in range(count)
            for face in faces[j]
            for window in [crop_window(face.box, CROP_MARGIN, self.pad)]
        ]
        upscaled = self._upscale_crops(crops)
        # 3. Colour-match every crop against the untouched background first, then paste.
        blends = [self._prepared(crop, sr, hr[crop.frame]) for crop, sr in zip(crops, upscaled, strict=True)]
        weights = [np.zeros(im.shape[:2], np.float32) for im in hr] if self.altered else None
        for crop, (face_hr, mask, x0, y0) in zip(crops, blends, strict=True):
            paste_back(hr[crop.frame], face_hr, x0, y0, mask, crop.face.alpha)
            if weights is not None:
                paste_weight(weights[crop.frame], x0, y0, mask, crop.face.alpha)
        # 4. Overlay and bookkeeping.
        for j in range(count):
            if self.options.draw_boxes and faces[j]:
                hr[j] = self._draw(hr[j], faces[j])
            self.stats.frames += 1
            self.stats.frames_with_faces += bool(faces[j])
        for crop in crops:
            self.stats.crops += 1
            self.stats.face_px_sum += crop.face.box.side
            self._tracks.setdefault(crop.face.track_id, []).append(
                [frames[crop.frame].index, *crop.face.box.bounds()]
            )
        self.tracker.prune(self._next_out)
        return [
            f.with_image(image, weights[j] if weights is not None else None)
            for j, (f, image) in enumerate(zip(frames, hr, strict=True))
        ]

    def _faces_to_enhance(self, t: int) -> list[TrackedFace]:
        return [f for f in self.tracker.faces_at(t) if f.box.side >= self.options.min_face and f.alpha > 0]

    def _upscale_crops(self, crops: list[_Crop]) -> list[np.ndarray]:
        """Face-upscale every crop, batching crops of one size together; results in crop order."""
        import cv2

        restore = getattr(self.face_upscaler, "restore", None)
        if restore is not None:  # an aligned face restorer (GFPGAN, RestoreFormer): align, restore, warp back
            from vsr.pipelines.face.align import crop_landmarks

            points = [crop_landmarks(c.face.landmarks, c.face.box, c.window.x0, c.window.y0) for c in crops]
            results = restore([c.image for c in crops], points, self.scale)
            for crop, (_, coverage) in zip(crops, results, strict=True):
                crop.coverage = coverage
            return [face for face, _ in results]
        out: list[np.ndarray | None] = [None] * len(crops)
        groups: dict[int, list[int]] = {}
        for i, crop in enumerate(crops):
            groups.setdefault(crop.window.side, []).append(i)
        for side, members in groups.items():
            images = [crops[i].image for i in members]
            if self.face_size and self.face_size != side:
                interp = cv2.INTER_AREA if side > self.face_size else cv2.INTER_CUBIC
                images = [
                    cv2.resize(im, (self.face_size, self.face_size), interpolation=interp) for im in images
                ]
            results = self.face_upscaler(images)
            target = side * self.scale
            for i, sr in zip(members, results, strict=True):
                if sr.shape[0] != target:
                    sr = cv2.resize(sr, (target, target), interpolation=cv2.INTER_CUBIC)
                out[i] = sr
        return out  # type: ignore[return-value]

    def _prepared(
        self, crop: _Crop, sr: np.ndarray, background: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, int, int]:
        """Trim the context, match colours to the background, build the mask: (face, mask, x0, y0) in HR."""
        s = self.scale
        x0, y0, side = crop.window.inner
        trim = crop.window.pad * s
        face = sr[trim : sr.shape[0] - trim, trim : sr.shape[1] - trim]
        bg = crop_square(background, x0 * s, y0 * s, side * s)
        face_side_hr = crop.face.box.side * s
        face = match_low_frequencies(face, bg, sigma=max(1.0, COLOUR_SIGMA * face_side_hr))
        mask = feather_mask(side * s, face_side_hr)
        if crop.coverage is not None:
            mask = mask * crop.coverage[trim : trim + side * s, trim : trim + side * s]
        return face, mask, x0 * s, y0 * s

    def _draw(self, image: np.ndarray, faces: list[TrackedFace]) -> np.ndarray:
        import cv2

        s = self.scale
        image = np.ascontiguousarray(image)
        peak = np.iinfo(image.dtype).max
        colour = tuple(int(c / 255 * peak) for c in _BOX_COLOUR)
        thickness = max(1, s // 2 + image.shape[0] // 720)
        for face in faces:
            x0, y0, x1, y1 = face.box.bounds()
            cv2.rectangle(image, (x0 * s, y0 * s), (x1 * s, y1 * s), colour, thickness)
            cv2.putText(
                image,
                f"#{face.track_id}",
                (x0 * s, max(12, y0 * s - 4)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4 + 0.1 * s,
                colour,
                thickness,
                cv2.LINE_AA,
            )
            if face.landmarks is not None:
                for x, y in face.landmarks:
                    cv2.circle(image, (int(x * s), int(y * s)), thickness + 1, colour, -1)
        return image
