"""Pluggable face detectors: ``yuface`` (libfacedetection CNN), OpenCV Haar cascades, ``yunet:PATH``.

Every detector is a callable ``detector(image_rgb_uint8) -> list[Detection]``.
Nothing is ever downloaded: ``yuface`` ships its CNN inside its wheel, the Haar
cascades ship with OpenCV, and ``yunet:PATH`` reads an ONNX file the user
already has.  ``auto`` picks the best one installed (yuface > haar).

Small faces.  Surveillance faces can have eyes ~8 px apart (a ~30 px box),
below what the Haar cascades (24 px windows) and close to what the CNN find
reliably.  With ``upsample=None`` (auto) a frame whose long side is at most
``AUTO_UPSAMPLE_MAX_SIDE`` pixels is enlarged 2x (bilinear) before detection
and the boxes are scaled back, which roughly halves the smallest detectable
face at about 4x the detection cost; larger frames are searched as they are.
Pass ``upsample=1`` to switch this off, or any factor to force it.

Crop boxes.  Detectors disagree on what a "face box" is (the CNN's box is a
tall rectangle from brows to chin, Haar's a square from brows to mouth), so
each detector maps its boxes to the square ``FaceBox`` used for training crops
(``face_box_from_eyes``) with factors measured on 150 held-out UTKFace chips:
the crop box's side and centre then match the eye-based training crop on
average, and do not collapse when the head turns and the eye distance shrinks.

Throughput.  ``DetectAhead`` runs a detector in worker threads (OpenCV and the CNN release the GIL),
each with its own detector instance, so detection overlaps the models and, with more than one
worker, itself.
"""

from __future__ import annotations

import importlib.util
import math
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vsr.errors import ModelError, UsageError
from vsr.pipelines.face.geometry import FaceBox

DETECTORS = ("auto", "yuface", "haar", "yunet:PATH")
AUTO_UPSAMPLE_MAX_SIDE = 1024
_NMS_IOU = 0.3
_NMS_CONTAINED = 0.6


@dataclass(frozen=True)
class Detection:
    """One detected face: ``box`` (x0, y0, x1, y1) in input pixels, ``score`` in [0, 1], optional landmarks.

    ``landmarks`` is a (5, 2) float32 array (the eye on the image's left, the other eye, nose tip,
    left and right mouth corners) when the detector gives them, else None.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _overlap_of_smaller(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller if smaller > 0 else 0.0


def non_max_suppression(
    detections: list[Detection], iou: float = _NMS_IOU, contained: float = _NMS_CONTAINED
) -> list[Detection]:
    """Keep the best-scoring detection of every group overlapping by more than ``iou``.

    A box lying mostly (``contained``) inside a better one is dropped too: two faces cannot share
    most of their pixels, but a detector often fires twice on one head at two scales.
    """
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: d.score, reverse=True):
        if all(
            box_iou(det.box, k.box) <= iou and _overlap_of_smaller(det.box, k.box) <= contained for k in kept
        ):
            kept.append(det)
    return kept


class Detector:
    """Base class: upsampling policy, the box -> crop-box calibration, and the call signature."""

    name = "detector"
    # Crop-box side = side_factor * sqrt(box w * box h); centre moved down by centre_down * box h.
    side_factor = 1.5
    centre_down = 0.1

    def __init__(self, threshold: float = 0.5, upsample: float | None = None) -> None:
        if not 0 < threshold < 1:
            raise UsageError(f"--det-threshold must be between 0 and 1, got {threshold}")
        if upsample is not None and upsample <= 0:
            raise UsageError(f"detector upsampling must be positive, got {upsample}")
        self.threshold = threshold
        self.upsample = upsample

    def factor_for(self, shape: tuple[int, ...]) -> float:
        """The enlargement used for a frame of this shape (see the module docstring)."""
        if self.upsample is not None:
            return float(self.upsample)
        return 2.0 if max(shape[0], shape[1]) <= AUTO_UPSAMPLE_MAX_SIDE else 1.0

    def __call__(self, image: np.ndarray) -> list[Detection]:
        """Detect faces in an RGB uint8 (or uint16) HxWx3 frame; boxes in the frame's pixels."""
        import cv2

        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        factor = self.factor_for(image.shape)
        if factor != 1.0:
            image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
        found = non_max_suppression(self._detect(np.ascontiguousarray(image)))
        if factor == 1.0:
            return found
        return [_rescale(d, 1.0 / factor) for d in found]

    def _detect(self, image_rgb: np.ndarray) -> list[Detection]:
        raise NotImplementedError

    def face_box(self, det: Detection) -> FaceBox:
        """The square crop box (as ``face_box_from_eyes`` would cut it) for one of this detector's boxes."""
        return face_box_from_detection(det, self.side_factor, self.centre_down)

    def describe(self) -> str:
        """One line for reports (``vsr bench``): the detector and its settings."""
        up = "auto" if self.upsample is None else f"{self.upsample:g}x"
        return f"{self.name} (threshold {self.threshold:g}, upsample {up})"


def face_box_from_detection(det: Detection, side_factor: float = 1.5, centre_down: float = 0.1) -> FaceBox:
    """Map a detector box to the square crop box used for training crops (calibrated factors)."""
    x0, y0, x1, y1 = det.box
    w, h = max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)
    return FaceBox(cx=(x0 + x1) / 2, cy=(y0 + y1) / 2 + centre_down * h, side=side_factor * math.sqrt(w * h))


def _rescale(det: Detection, k: float) -> Detection:
    box = tuple(float(v) * k for v in det.box)
    lm = None if det.landmarks is None else (det.landmarks * k).astype(np.float32)
    return Detection(box=box, score=det.score, landmarks=lm)  # type: ignore[arg-type]


class YuFaceDetector(Detector):
    """libfacedetection's CNN through the ``yuface`` wheel (model weights compiled into the wheel)."""

    name = "yuface"
    side_factor = 1.5  # side / sqrt(w*h) = 1.51 (sd 0.06) on UTKFace val
    centre_down = 0.1  # centre offset = 0.107 h (sd 0.025)

    def __init__(self, threshold: float = 0.5, upsample: float | None = None) -> None:
        super().__init__(threshold, upsample)
        try:
            from yuface import c_detect
        except ImportError:
            raise ModelError(
                "the yuface detector is not installed; pip install 'vsr-faces[face]' (Python < 3.12) "
                "or use --detector haar"
            ) from None
        self._c_detect = c_detect

    def _detect(self, image_rgb: np.ndarray) -> list[Detection]:
        # The CNN expects BGR.  c_detect (not yuface.detect) skips the wrapper's size warning: the
        # network is fully convolutional, and large frames are only slower.
        bgr = np.ascontiguousarray(image_rgb[:, :, ::-1])
        rows = np.asarray(self._c_detect(bgr)).reshape(-1, 16).astype(np.float32)
        out: list[Detection] = []
        for row in rows:
            score = float(row[0]) / 100.0
            if score < self.threshold:
                continue
            x, y, w, h = (float(v) for v in row[1:5])
            if w <= 1 or h <= 1:
                continue
            out.append(
                Detection(box=(x, y, x + w, y + h), score=min(score, 1.0), landmarks=row[5:15].reshape(5, 2))
            )
        return out


class HaarDetector(Detector):
    """OpenCV's Haar cascades: frontal faces plus profiles (both directions), merged by NMS.

    Haar gives no probability; ``score`` is the neighbour votes relative to the acceptance limit
    ``min_neighbors = round(10 * threshold)`` (so 0.5 at the limit, 1.0 at twice it).  No landmarks.
    """

    name = "haar"
    side_factor = 1.4  # side / w = 1.40 (sd 0.10) on UTKFace val
    centre_down = 0.1  # centre offset = 0.096 h (sd 0.02)

    def __init__(self, threshold: float = 0.5, upsample: float | None = None, profiles: bool = True) -> None:
        super().__init__(threshold, upsample)
        import cv2

        base = Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or "")
        self._frontal = _load_cascade(cv2, base / "haarcascade_frontalface_default.xml")
        self._profile = _load_cascade(cv2, base / "haarcascade_profileface.xml") if profiles else None
        self.min_neighbors = max(2, round(10 * threshold))

    def _run(self, cascade, gray: np.ndarray, flipped: bool) -> list[Detection]:
        boxes, votes = cascade.detectMultiScale2(
            gray, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(20, 20)
        )
        width = gray.shape[1]
        out = []
        for (x, y, w, h), n in zip(
            np.asarray(boxes).reshape(-1, 4), np.asarray(votes).reshape(-1), strict=True
        ):
            x0 = width - (x + w) if flipped else x
            score = min(1.0, 0.5 * float(n) / self.min_neighbors)
            out.append(Detection(box=(float(x0), float(y), float(x0 + w), float(y + h)), score=score))
        return out

    def _detect(self, image_rgb: np.ndarray) -> list[Detection]:
        import cv2

        gray = cv2.equalizeHist(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY))
        found = self._run(self._frontal, gray, flipped=False)
        if self._profile is not None:
            # The profile cascade finds faces looking to the image's left; mirror to find the others.
            # Profiles count a little less than frontal faces of the same votes.
            profiles = self._run(self._profile, gray, False) + self._run(
                self._profile, np.ascontiguousarray(gray[:, ::-1]), True
            )
            found += [Detection(d.box, d.score * 0.9) for d in profiles]
        return [d for d in found if d.score >= self.threshold]


def _load_cascade(cv2, path: Path):
    cascade = cv2.CascadeClassifier(str(path)) if path.is_file() else None
    if cascade is None or cascade.empty():
        raise ModelError(f"OpenCV's Haar cascade {path.name} is missing; reinstall opencv-python-headless")
    return cascade


class YuNetDetector(Detector):
    """OpenCV's ``FaceDetectorYN`` with a YuNet ONNX file the user provides (``--detector yunet:PATH``)."""

    name = "yunet"

    def __init__(self, model_path: str | Path, threshold: float = 0.5, upsample: float | None = None) -> None:
        super().__init__(threshold, upsample)
        import cv2

        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise UsageError(
                f"--detector yunet:{model_path}: no such file; give the path of a YuNet .onnx model "
                "(e.g. face_detection_yunet_2023mar.onnx from the OpenCV model zoo) or use --detector auto"
            )
        if not hasattr(cv2, "FaceDetectorYN"):
            raise ModelError(
                "this OpenCV build has no FaceDetectorYN; upgrade opencv-python-headless to >= 4.8"
            )
        try:
            self._net = cv2.FaceDetectorYN.create(str(self.model_path), "", (320, 320), threshold, 0.3, 5000)
        except cv2.error as exc:
            raise ModelError(
                f"cannot load the YuNet model {self.model_path}: {' '.join(str(exc).split())}"
            ) from None
        self.name = f"yunet:{self.model_path.name}"

    def _detect(self, image_rgb: np.ndarray) -> list[Detection]:
        h, w = image_rgb.shape[:2]
        self._net.setInputSize((w, h))
        _, faces = self._net.detect(np.ascontiguousarray(image_rgb[:, :, ::-1]))
        out = []
        for row in np.asarray(faces if faces is not None else []).reshape(-1, 15):
            x, y, bw, bh = (float(v) for v in row[:4])
            lm = row[4:14].reshape(5, 2).astype(np.float32)
            out.append(Detection(box=(x, y, x + bw, y + bh), score=float(row[14]), landmarks=lm))
        return out


def _yuface_installed() -> bool:
    try:
        return importlib.util.find_spec("yuface") is not None
    except (ImportError, ValueError):
        return False


def _haar_installed() -> bool:
    try:
        import cv2
    except ImportError:
        return False
    base = Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or "")
    return (base / "haarcascade_frontalface_default.xml").is_file()


def available_detector() -> str | None:
    """The detector ``auto`` would pick here (``yuface`` or ``haar``), or None when there is none."""
    if _yuface_installed():
        return "yuface"
    if _haar_installed():
        return "haar"
    return None


def make_detector(spec: str = "auto", threshold: float = 0.5, upsample: float | None = None) -> Detector:
    """Build a detector from a ``--detector`` value: ``auto``, ``yuface``, ``haar`` or ``yunet:PATH``."""
    spec = spec.strip()
    if spec == "auto":
        name = available_detector()
        if name is None:
            raise ModelError(
                "no face detector is available; pip install 'vsr-faces[face]' or opencv-python-headless"
            )
        spec = name
    if spec == "yuface":
        return YuFaceDetector(threshold, upsample)
    if spec == "haar":
        return HaarDetector(threshold, upsample)
    if spec.startswith("yunet:"):
        return YuNetDetector(spec.split(":", 1)[1], threshold, upsample)
    if spec == "yunet":
        raise UsageError("--detector yunet needs the model file: --detector yunet:PATH/TO/yunet.onnx")
    raise UsageError(f"--detector {spec!r}: choose one of {', '.join(DETECTORS)}")


def detect_workers(cores: int | None = None) -> int:
    """Detection threads by default: one (it overlaps the models), one per four cores up to four."""
    from vsr.config import usable_cores

    return max(1, min(4, (cores or usable_cores()) // 4))


class DetectAhead:
    """Face detection in worker threads: ``submit(image)`` returns a future of (detections, seconds).

    With ``build`` (a detector factory) each worker thread builds its own detector the first time it
    runs (detectors keep per-call state and are not thread-safe); without, ``detector`` is used by a
    single worker.  ``ahead`` is how many detections a stage keeps running while it works on older
    frames: enough to keep every worker busy.
    """

    def __init__(
        self,
        detector: Callable[[np.ndarray], list[Detection]],
        build: Callable[[], Callable[[np.ndarray], list[Detection]]] | None = None,
        workers: int | None = None,
    ) -> None:
        self.detector = detector
        self.workers = 1 if build is None else (workers or detect_workers())
        self.ahead = 2 * self.workers
        self._build = build
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="detect")
        weakref.finalize(self, self._pool.shutdown, wait=False)

    def submit(self, image: np.ndarray) -> Future:
        return self._pool.submit(self._detect, image)

    def _detect(self, image: np.ndarray) -> tuple[list[Detection], float]:
        detector = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = self._build() if self._build is not None else self.detector
        started = time.perf_counter()
        found = detector(image)
        return found, time.perf_counter() - started
