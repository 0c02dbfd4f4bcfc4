"""Pre-cut HR patch sets (``vsr train prep``): what travels to a GPU machine instead of whole data sets.

``prep_patches`` indexes ordinary training sources with the trainer's own indexing (``images:``,
``videos:`` through ``vsr.media.transcode.sample_frames``, ``chokepoint:``; face boxes when
``video_faces`` is on) and cuts every item into square ``size`` x ``size`` tiles: face items give one
centred face crop, images of exactly that size are copied byte for byte when they are JPEG already
(no second generation of JPEG loss), larger images and frames give a grid of tiles, flat ones dropped.
The tiles are taken in a seeded order, each source getting an even share of what is left of a byte
budget (list small sources first: what they cannot fill goes to the next), and written
as JPEG (4:4:4) with a manifest::

    DIR/patches.json   {"format": 1, "size", "quality", "count", "bytes", "seed",
                        "sources": {spec: {"patches", "bytes"}}, "patches": [{"file", "group"}, ...]}
    DIR/NNNNNN.jpg

``--data patches:DIR`` trains from it: ``index_patches`` gives one item per tile (grouped by the
image or video it was cut from, so a validation split never shares a source with training), and
the loop holds the decoded tiles on the device (``vsr.pipelines.train.resident``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vsr.atomic import temp_path_for
from vsr.errors import ConfigError, DataError, OutputError
from vsr.pipelines.train.config import TrainConfig
from vsr.pipelines.train.data import Index, Item, UnreadableImage, build_index, face_crop, read_rgb

MANIFEST = "patches.json"
FORMAT = 1
JPEG_SUFFIXES = (".jpg", ".jpeg")


@dataclass
class PrepConfig:
    """What ``vsr train prep`` cuts: sources, tile side, byte budget, JPEG quality, seed."""

    sources: list[str]
    out: Path
    size: int = 192
    budget_mb: float = 16.0  # MiB of JPEG in all, split evenly between the sources
    quality: int = 95
    seed: int = 0
    min_std: float = 6.0  # drop tiles whose grey standard deviation is below this (flat sky, walls)
    frame_every: int = 15
    frames_per_video: int = 40
    video_faces: bool = False
    min_face: int = 48
    detector: str = "auto"
    overwrite: bool = False


@dataclass
class PrepReport:
    """What a prep wrote."""

    out: Path
    count: int
    bytes: int
    size: int
    seconds: float
    sources: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _index_config(cfg: PrepConfig) -> TrainConfig:
    """The trainer config the sources are indexed with (frames sampled, faces found as training would)."""
    t = TrainConfig()
    t.data.sources = list(cfg.sources)
    t.data.frame_every, t.data.frames_per_video = cfg.frame_every, cfg.frames_per_video
    t.data.video_faces, t.data.min_face, t.data.detector = cfg.video_faces, cfg.min_face, cfg.detector
    return t


def _load(index: Index, item: Item) -> np.ndarray:
    if item.frame >= 0:
        return cv2.imdecode(np.frombuffer(index.frames[item.frame], np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert item.path is not None
    return read_rgb(item.path)


def _candidates(index: Index, item_id: int, size: int, min_std: float) -> list[tuple[int, int, int]]:
    """(item, y, x) tiles of one item; y = -1 marks a face crop, y = -2 a byte-for-byte copy."""
    item = index.items[item_id]
    try:
        image = _load(index, item)
    except UnreadableImage:
        index.skipped.append(str(item.path))
        return []
    if item.box is not None:
        return [(item_id, -1, 0)]
    h, w = image.shape[:2]
    if (h, w) == (size, size) and item.frame < 0 and item.path.suffix.lower() in JPEG_SUFFIXES:
        return [(item_id, -2, 0)]
    if min(h, w) < size:
        return []
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    # a grid of tiles, centred so the margins are even
    y0, x0 = (h % size) // 2, (w % size) // 2
    out = []
    for y in range(y0, h - size + 1, size):
        for x in range(x0, w - size + 1, size):
            if float(grey[y : y + size, x : x + size].std()) >= min_std:
                out.append((item_id, y, x))
    return out


def _encode(index: Index, cand: tuple[int, int, int], size: int, quality: int, cache: dict) -> bytes:
    item_id, y, x = cand
    item = index.items[item_id]
    if y == -2:
        return Path(item.path).read_bytes()
    if item_id not in cache:
        cache.clear()
        cache[item_id] = _load(index, item)
    image = cache[item_id]
    tile = face_crop(image, item.box, size, None, 0.0) if y == -1 else image[y : y + size, x : x + size]
    params = [
        cv2.IMWRITE_JPEG_QUALITY,
        quality,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    ]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(tile[:, :, ::-1]), params)
    if not ok:
        raise DataError(f"OpenCV could not JPEG-encode a tile of {item.path}")
    return buf.tobytes()


def prep_patches(cfg: PrepConfig) -> PrepReport:
    """Cut ``cfg.sources`` into a patch folder at ``cfg.out`` (written beside it, then renamed into place)."""
    t0 = time.monotonic()
    if cfg.size < 16:
        raise ConfigError(f"--size must be at least 16 pixels, got {cfg.size}")
    if not 1 <= cfg.quality <= 100:
        raise ConfigError(f"--quality must be in [1, 100], got {cfg.quality}")
    if cfg.budget_mb <= 0:
        raise ConfigError(f"--budget-mb must be positive, got {cfg.budget_mb}")
    if not cfg.sources:
        raise ConfigError("--data is empty: give at least one KIND:PATH")
    out = Path(cfg.out)
    if out.exists() and not cfg.overwrite:
        raise OutputError(f"--out {out} already exists; add --overwrite or choose another folder")
    tcfg = _index_config(cfg)
    budget = int(cfg.budget_mb * 2**20)
    rng = np.random.default_rng([cfg.seed, 7])
    tmp = temp_path_for(out)  # the project's temporary-name shape, so stale ones are recognised
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    report = PrepReport(out=out, count=0, bytes=0, size=cfg.size, seconds=0.0)
    patches: list[dict[str, str]] = []
    try:
        for k, spec in enumerate(cfg.sources):
            # an even share of what is left: a source too small for its share leaves the rest to the next
            share = (budget - sum(s["bytes"] for s in report.sources.values())) // (len(cfg.sources) - k)
            index = build_index([spec], tcfg, "--data")
            cands = [c for i in range(len(index.items)) for c in _candidates(index, i, cfg.size, cfg.min_std)]
            if not cands:
                raise DataError(f"--data {spec}: no tile of {cfg.size} px (images smaller, or all flat)")
            order = rng.permutation(len(cands))
            # Estimate the tiles that fit from the first few, encode those grouped by item (each
            # image is decoded once), then top up or trim in the seeded order to meet the share.
            cache: dict = {}
            probe = [len(_encode(index, cands[j], cfg.size, cfg.quality, cache)) for j in order[:32]]
            take = min(len(cands), max(1, int(share / (sum(probe) / len(probe)) * 0.97)))
            chosen = sorted(order[:take], key=lambda j: (cands[j][0], j))
            blobs = {int(j): _encode(index, cands[j], cfg.size, cfg.quality, cache) for j in chosen}
            ranked = [int(j) for j in order[:take]]
            used = sum(len(b) for b in blobs.values())
            for j in order[take:]:
                if used >= share:
                    break
                blob = _encode(index, cands[j], cfg.size, cfg.quality, cache)
                if used + len(blob) > share:
                    break
                blobs[int(j)] = blob
                ranked.append(int(j))
                used += len(blob)
            while used > share and len(ranked) > 1:
                used -= len(blobs.pop(ranked.pop()))
            for j in ranked:
                name = f"{len(patches):06d}.jpg"
                (tmp / name).write_bytes(blobs[j])
                patches.append({"file": name, "group": index.items[cands[j][0]].group})
            report.sources[spec] = {"patches": len(ranked), "bytes": used, "candidates": len(cands)}
            report.skipped += index.skipped
        report.count = len(patches)
        report.bytes = sum(s["bytes"] for s in report.sources.values())
        manifest = {
            "format": FORMAT,
            "size": cfg.size,
            "quality": cfg.quality,
            "count": report.count,
            "bytes": report.bytes,
            "seed": cfg.seed,
            "sources": report.sources,
            "patches": patches,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=0) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.seconds = time.monotonic() - t0
    return report


def read_manifest(root: Path) -> dict:
    """A patch folder's manifest, checked; DataError naming the folder otherwise."""
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"patches folder {root} has no {MANIFEST}: make it with 'vsr train prep'") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable patch manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or "patches" not in manifest:
        raise DataError(f"{path}: not a vsr patch manifest (format {FORMAT})")
    return manifest


def index_patches(root: Path) -> Index:
    """One item per tile of a patch folder, grouped by the image or video it was cut from."""
    manifest = read_manifest(root)
    items = []
    for p in manifest["patches"]:
        path = Path(root) / p["file"]
        if not path.is_file():
            raise DataError(f"{root}/{MANIFEST} lists {p['file']}, which is missing")
        items.append(Item(f"patches:{p['group']}", path))
    return Index(items=items)


def folder_bytes(root: Path) -> int:
    """Bytes of all files under ``root`` (what a carry of it costs)."""
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
