"""Training and validation data: index the sources, split by sequence, cut HR crops, degrade them.

Three kinds of source (``--data KIND:PATH``):

- ``chokepoint``: sequence folders of frames plus eye-position XML; one face crop per annotated
  person (``face_box_from_eyes``, the geometry face mode uses at inference).  Sequences without
  XML fall back to a face detector.
- ``images``: folders of images (UTKFace/CelebA face chips, scenes); random ``hr_size`` crops.
- ``videos``: video files (or a folder of them) whose every Nth frame is sampled (whole-frame
  patches, or detected faces with ``data.video_faces``).

Sample order and every random choice are a pure function of (seed, position), where position
``step * batch_size + i`` is the i-th sample of a step: a resumed run reads exactly the samples
an uninterrupted one would, with any number of workers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from vsr.errors import DataError, InputError, VsrError
from vsr.media.image import IMAGE_SUFFIXES, read_image, to_uint8
from vsr.pipelines.face.geometry import FaceBox, face_box_from_eyes
from vsr.pipelines.train.chokepoint import find_sequences, parse_groundtruth
from vsr.pipelines.train.config import TrainConfig, parse_source
from vsr.pipelines.train.degrade import degrade

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts")
# A task's batch maker: (dataset, item index, decoded RGB image, rng, train) -> the sample's tensors.
SampleMaker = Callable[["_Samples", int, np.ndarray, np.random.Generator, bool], dict]
# numpy SeedSequence streams, so training, validation and the data order never share draws.
_TRAIN, _VAL, _ORDER = 0, 1, 2


@dataclass(frozen=True)
class Item:
    """One HR source: an image file or a stored video frame, optionally with a face box in it."""

    group: str  # what train/val is split by: the sequence, video or image it belongs to
    path: Path | None = None
    frame: int = -1  # index into Index.frames (videos)
    box: FaceBox | None = None


@dataclass
class Index:
    """Items of one or more sources, the sampled video frames they point at (PNG bytes), and what was skipped."""

    items: list[Item] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def extend(self, other: Index) -> None:
        offset = len(self.frames)
        self.items += [
            Item(i.group, i.path, i.frame + offset if i.frame >= 0 else -1, i.box) for i in other.items
        ]
        self.frames += other.frames
        self.skipped += other.skipped


class UnreadableImage(Exception):
    """An image file could not be decoded (the data set skips it and counts it)."""


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as upright RGB uint8 (H, W, 3), raising ``UnreadableImage``."""
    try:
        return to_uint8(read_image(path).pixels)
    except InputError:
        raise UnreadableImage(str(path)) from None


def _detector_boxes(detector, image: np.ndarray) -> list[FaceBox]:
    """Face crop boxes for one frame, with the face mode's box calibration (``Detector.face_box``)."""
    to_box = getattr(detector, "face_box", None)
    if to_box is None:  # a plain callable detector: the face module's default calibration
        from vsr.pipelines.face.detect import face_box_from_detection as to_box
    return [to_box(det) for det in detector(image)]


def make_detector(name: str, why: str, upsample: float | None = None):
    """The face helper's detector, imported lazily; a DataError saying ``why`` it was needed if there is none."""
    try:
        from vsr.pipelines.face.detect import make_detector as make
    except ImportError as exc:
        raise DataError(f"{why}, but no face detector is available ({exc})") from None
    try:
        return make(name, upsample=upsample)
    except VsrError as exc:
        raise DataError(f"{why}, but the face detector {name!r} cannot be used ({exc})") from None


def index_chokepoint(root: Path, cfg: TrainConfig) -> Index:
    """One item per annotated person per frame; sequences without XML go through the face detector.

    Items are grouped by session, so all cameras of one recording go to the same side of a split.
    """
    index = Index()
    detector = None
    for seq in find_sequences(root):
        group = f"chokepoint:{seq.session}"
        if seq.xml is None:
            if detector is None:
                detector = make_detector(
                    cfg.data.detector, f"sequence {seq.frames_dir} has no ground-truth XML"
                )
            for frame in seq.frame_files()[:: cfg.data.frame_every]:
                try:
                    boxes = _detector_boxes(detector, read_rgb(frame))
                except UnreadableImage:
                    index.skipped.append(str(frame))
                    continue
                index.items += [Item(group, frame, box=b) for b in boxes if b.side >= cfg.data.min_face]
            continue
        for ann in parse_groundtruth(seq.xml):
            path = seq.frame_path(ann.frame)
            if not path.is_file():
                raise DataError(f"{seq.xml}: frame {ann.frame} is annotated but {path} does not exist")
            try:
                box = face_box_from_eyes(ann.left, ann.right)
            except ValueError:
                raise DataError(
                    f"{seq.xml}: frame {ann.frame} person {ann.person}: both eyes at one point"
                ) from None
            if box.side >= cfg.data.min_face:
                index.items.append(Item(group, path, box=box))
    return index


def index_images(root: Path) -> Index:
    """Every image file under ``root`` (or ``root`` itself), each its own group."""
    if root.is_file():
        return Index(items=[Item(f"images:{root.name}", root)])
    if not root.is_dir():
        raise DataError(f"images data folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return Index(items=[Item(f"images:{p.relative_to(root)}", p) for p in files])


def index_videos(root: Path, cfg: TrainConfig) -> Index:
    """Sample every ``frame_every``-th frame (at most ``frames_per_video``) of each video; store them as PNG."""
    from vsr.media.transcode import sample_frames

    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    elif root.is_file():
        files = [root]
    else:
        raise DataError(f"videos data path not found: {root}")
    index = Index()
    detector = make_detector(cfg.data.detector, "data.video_faces is on") if cfg.data.video_faces else None
    for path in files:
        group = f"videos:{path.relative_to(root) if root.is_dir() else path.name}"
        try:
            for image in sample_frames(path, cfg.data.frame_every, cfg.data.frames_per_video):
                boxes = _detector_boxes(detector, image) if detector is not None else [None]
                boxes = [b for b in boxes if b is None or b.side >= cfg.data.min_face]
                if not boxes:
                    continue
                ok, png = cv2.imencode(".png", image[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
                if not ok:
                    continue
                index.frames.append(png.tobytes())
                index.items += [Item(group, path, frame=len(index.frames) - 1, box=b) for b in boxes]
        except VsrError:
            index.skipped.append(str(path))  # a broken file costs its own frames only
    return index


def build_index(specs: Sequence[str], cfg: TrainConfig, key: str) -> Index:
    """Index every 'KIND:PATH' source of a config key (``data.sources`` or ``data.val``)."""
    index = Index()
    for spec in specs:
        kind, path = parse_source(spec, key)
        if kind == "chokepoint":
            part = index_chokepoint(path, cfg)
        elif kind == "images":
            part = index_images(path)
        elif kind == "patches":
            from vsr.pipelines.train.patches import index_patches

            part = index_patches(path)
        else:
            part = index_videos(path, cfg)
        if not part.items:
            raise DataError(
                f"{key} {spec}: no usable samples found (empty folder, or every face below data.min_face)"
            )
        index.extend(part)
    return index


def split_by_group(index: Index, fraction: float) -> tuple[list[Item], list[Item]]:
    """(train, val) items; whole groups (sequences, videos, images) go to one side, chosen by a stable hash."""
    groups = sorted({i.group for i in index.items}, key=lambda g: hashlib.sha1(g.encode()).hexdigest())
    n_val = (
        0 if fraction <= 0 or len(groups) < 2 else min(len(groups) - 1, max(1, round(fraction * len(groups))))
    )
    val_groups = set(groups[:n_val])
    return [i for i in index.items if i.group not in val_groups], [
        i for i in index.items if i.group in val_groups
    ]


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator | None) -> np.ndarray:
    """A size x size crop (centre when ``rng`` is None); images smaller than ``size`` are first enlarged."""
    h, w = image.shape[:2]
    if min(h, w) < size:
        f = size / min(h, w)
        image = cv2.resize(
            image, (max(size, round(w * f)), max(size, round(h * f))), interpolation=cv2.INTER_CUBIC
        )
        h, w = image.shape[:2]
    if rng is None:
        y, x = (h - size) // 2, (w - size) // 2
    else:
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return image[y : y + size, x : x + size]


def face_crop(
    image: np.ndarray, box: FaceBox, size: int, rng: np.random.Generator | None, jitter: float
) -> np.ndarray:
    """Cut a face box (randomly shifted/scaled by ``jitter`` when ``rng`` is given), padded by reflection, resized."""
    cx, cy, side = box.cx, box.cy, box.side
    if rng is not None and jitter > 0:
        dx, dy, ds = rng.uniform(-jitter, jitter, size=3)
        cx, cy, side = cx + dx * side, cy + dy * side, side * (1 + ds)
    x0, y0, x1, y1 = FaceBox(cx, cy, side).bounds()
    h, w = image.shape[:2]
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        image = cv2.copyMakeBorder(
            image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101 if pad < min(h, w) else cv2.BORDER_REPLICATE
        )
    crop = image[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255)


class _Samples(torch.utils.data.Dataset):
    """Shared loading: item -> HR crop -> degraded LR, tensors in [0, 1]."""

    def __init__(
        self, items: list[Item], frames: list[bytes], cfg: TrainConfig, make: SampleMaker | None = None
    ) -> None:
        if not items:
            raise DataError("no samples to train or validate on")
        self.items, self.frames, self.cfg = items, frames, cfg
        self.make = make  # a task's batch maker (vsr.pipelines.train.task); None = crop, flip, degrade

    def image_at(self, index: int) -> np.ndarray:
        """The decoded RGB image of item ``index`` (``UnreadableImage`` when it cannot be read)."""
        return self._image(self.items[index])

    def _image(self, item: Item) -> np.ndarray:
        if item.frame >= 0:
            image = cv2.imdecode(np.frombuffer(self.frames[item.frame], np.uint8), cv2.IMREAD_COLOR)
            return image[:, :, ::-1].copy()
        assert item.path is not None
        return read_rgb(item.path)

    def _sample(self, idx: int, rng: np.random.Generator, train: bool) -> dict:
        """Load item ``idx`` (or the next readable one), crop, flip, degrade."""
        size = self.cfg.data.hr_size
        skipped = []
        for attempt in range(len(self.items)):
            item = self.items[(idx + attempt) % len(self.items)]
            try:
                image = self._image(item)
                break
            except UnreadableImage:
                skipped.append(str(item.path))
        else:
            raise DataError(f"none of the {len(self.items)} images could be read (first: {skipped[0]})")
        if self.make is not None:
            sample = self.make(self, (idx + attempt) % len(self.items), image, rng, train)
            return {**sample, "skipped": "\n".join(skipped)}
        crop_rng = rng if train else None
        if item.box is not None:
            hr = face_crop(image, item.box, size, crop_rng, self.cfg.data.face_jitter)
        else:
            hr = random_crop(image, size, crop_rng)
        if train and self.cfg.data.flip and rng.random() < 0.5:
            hr = hr[:, ::-1]
        if train and self.cfg.data.rot90 and rng.random() < 0.5:
            hr = hr.transpose(1, 0, 2)
        hr = np.ascontiguousarray(hr)
        out = degrade(hr, self.cfg.scale, self.cfg.degrade, rng)
        return {
            "lr": _to_tensor(out.lr),
            "hr": _to_tensor(hr),
            "mask": torch.from_numpy(out.mask)[None],
            "skipped": "\n".join(skipped),
        }


class EpochOrder:
    """Which of ``count`` items the sample at a position reads: epochs are seeded permutations."""

    def __init__(self, seed: int, count: int) -> None:
        self.seed, self.count = seed, count
        self._epoch, self._perm = -1, np.empty(0, np.int64)

    def __call__(self, position: int) -> int:
        epoch, offset = divmod(position, self.count)
        if epoch != self._epoch:
            self._perm = np.random.default_rng([self.seed, _ORDER, epoch]).permutation(self.count)
            self._epoch = epoch
        return int(self._perm[offset])


class TrainSamples(_Samples):
    """Indexed by sample position (``step * batch_size + i``); epochs are seeded permutations of the items."""

    def __init__(
        self, items: list[Item], frames: list[bytes], cfg: TrainConfig, make: SampleMaker | None = None
    ) -> None:
        super().__init__(items, frames, cfg, make)
        self._order = EpochOrder(cfg.seed, len(items))

    def __len__(self) -> int:
        return len(self.items)

    def item_index(self, position: int) -> int:
        """Which item the sample at ``position`` reads: a pure function of (seed, position)."""
        return self._order(position)

    def __getitem__(self, position: int) -> dict:
        rng = np.random.default_rng([self.cfg.seed, _TRAIN, position])
        return self._sample(self.item_index(position), rng, train=True)


class ValSamples(_Samples):
    """Fixed crops of up to ``data.val_samples`` items spread over the validation set, degraded with fixed seeds."""

    def __init__(
        self, items: list[Item], frames: list[bytes], cfg: TrainConfig, make: SampleMaker | None = None
    ) -> None:
        n = min(len(items), cfg.data.val_samples)
        picks = np.linspace(0, len(items) - 1, n).round().astype(int) if n else []
        super().__init__([items[i] for i in picks], frames, cfg, make)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self._sample(i, np.random.default_rng([self.cfg.seed, _VAL, i]), train=False)


def build_datasets(
    cfg: TrainConfig, make: SampleMaker | None = None
) -> tuple[TrainSamples, ValSamples | None, list[str]]:
    """(train set, validation set or None, files skipped while indexing) for a validated config.

    ``make`` is a task's batch maker (``make(dataset, item_index, image, rng, train) -> tensors``),
    used instead of the default crop, flip and degrade.
    """
    index = build_index(cfg.data.sources, cfg, "data.sources")
    skipped = list(index.skipped)
    if cfg.data.val:
        val_index = build_index(cfg.data.val, cfg, "data.val")
        skipped += val_index.skipped
        val = ValSamples(val_index.items, val_index.frames, cfg, make) if cfg.data.val_samples else None
        return TrainSamples(index.items, index.frames, cfg, make), val, skipped
    train_items, val_items = split_by_group(index, cfg.data.val_fraction)
    val = ValSamples(val_items, index.frames, cfg, make) if val_items and cfg.data.val_samples else None
    return TrainSamples(train_items, index.frames, cfg, make), val, skipped


def worker_init(worker_id: int) -> None:
    """DataLoader workers: one thread each for OpenCV and torch (the workers are the parallelism)."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    info = torch.utils.data.get_worker_info()
    seed = info.seed if info is not None else worker_id
    np.random.seed(
        seed % 2**32
    )  # nothing here draws from the global generators; seeded anyway for user hooks
