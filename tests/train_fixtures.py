"""Generated fixtures for the trainer tests: a tiny ChokePoint tree, face-like images, tiny configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def face_image(w: int, h: int, eyes: tuple[tuple[int, int], tuple[int, int]], seed: int) -> np.ndarray:
    """RGB uint8: textured background, a skin-coloured ellipse and two dark eyes at ``eyes``."""
    rng = np.random.default_rng(seed)
    img = rng.integers(40, 200, size=(h, w, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (5, 5), 1.5)
    (lx, ly), (rx, ry) = eyes
    cx, d = (lx + rx) // 2, abs(rx - lx)
    cv2.ellipse(img, (cx, ly + d // 2), (d, int(d * 1.4)), 0, 0, 360, (224, 172, 140), -1)
    for x, y in eyes:
        cv2.circle(img, (x, y), max(1, d // 6), (30, 20, 20), -1)
    cv2.line(img, (cx - d // 3, ly + d), (cx + d // 3, ly + d), (120, 40, 40), 1)
    return img


def write_rgb(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image[:, :, ::-1])


def make_chokepoint(
    root: Path,
    sequences: tuple[str, ...] = ("P1E_S1_C1", "P1E_S2_C1", "P2L_S1_C1"),
    frames: int = 4,
    empty_every: int = 3,
) -> Path:
    """A ChokePoint-format tree: 64x48 frames with a face, one XML per sequence; every
    ``empty_every``-th frame is written as an empty ``<frame number="..."/>``."""
    gt = root / "groundtruth"
    gt.mkdir(parents=True, exist_ok=True)
    for s, name in enumerate(sequences):
        group = name.rsplit("_", 1)[0]
        lines = [f'<?xml version="1.0"?>\n<dataset name="{name}">\n<frames>']
        for f in range(frames):
            number = f"{1000 + f:08d}"
            eyes = ((24 + f, 17 + s), (38 + f, 17 + s))
            write_rgb(root / group / name / f"{number}.jpg", face_image(64, 48, eyes, seed=100 * s + f))
            if empty_every and f % empty_every == empty_every - 1:
                lines.append(f'<frame number="{number}"/>')
                continue
            (lx, ly), (rx, ry) = eyes
            lines.append(
                f'<frame number="{number}">\n<person id="0001">\n<leftEye x="{lx}" y="{ly}"/>\n'
                f'<rightEye x="{rx}" y="{ry}"/>\n</person>\n</frame>'
            )
        lines.append("</frames>\n</dataset>\n")
        (gt / f"{name}.xml").write_text("\n".join(lines))
    return root


def make_images(root: Path, count: int = 4, size: tuple[int, int] = (40, 40)) -> Path:
    """A folder of face-like JPEG images."""
    w, h = size
    for i in range(count):
        write_rgb(
            root / f"{i:03d}.jpg", face_image(w, h, ((w // 2 - 6, h // 3), (w // 2 + 6, h // 3)), seed=i)
        )
    return root


def tiny_flags(data: Path, out: Path, **extra: Any) -> dict[str, Any]:
    """Dotted config keys for a seconds-long CPU run on a ChokePoint fixture."""
    flags: dict[str, Any] = {
        "data.sources": [f"chokepoint:{data}"],
        "data.hr_size": 32,
        "data.min_face": 16,
        "data.workers": 0,
        "data.val_fraction": 0.34,
        "data.val_samples": 4,
        "scale": 2,
        "steps": 5,
        "batch_size": 2,
        "model.blocks": 2,
        "model.channels": 8,
        "model.disc_channels": 4,
        "model.disc_stages": 2,
        "device": "cpu",
        "out": str(out),
        "log_every": 1,
        "val_every": 2,
        "save_every": 3,
        "sample_count": 2,
        "degrade.h264_prob": 0.3,
    }
    flags.update(extra)
    return flags
