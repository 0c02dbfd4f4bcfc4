"""Before/after comparison: a side-by-side or split-screen video and PNG snapshot pairs.

"Before" is the input upscaled to the enhanced output's size with Lanczos (what
any player would show); "after" is the enhanced output.  Frames are paired by
order (``vsr enhance`` writes exactly one output frame per input frame) and the
comparison keeps the output's timestamps and audio.  Frames are rotated to
display orientation first, so a portrait phone clip compares side by side as
it is seen, and the result is written unrotated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vsr.config import LAYOUTS, CompareConfig
from vsr.errors import InputError, UsageError

BEFORE_LABEL = "Lanczos"
AFTER_LABEL = "Enhanced"


@dataclass
class CompareReport:
    """What was written."""

    result: str
    layout: str
    frames: int = 0
    size: tuple[int, int] = (0, 0)
    snapshots: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def to_display(image: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate a decoded frame by its display-matrix rotation (degrees counter-clockwise)."""
    k = int(round(rotation / 90)) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def upscale_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Lanczos resize of ``image`` to width x height (the "before" picture)."""
    import cv2

    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LANCZOS4)


def label(image: np.ndarray, text: str, x: int, y: int) -> None:
    """Write ``text`` at (x, y) in white with a dark outline, sized for the picture, in place."""
    import cv2

    peak = np.iinfo(image.dtype).max
    size = max(0.5, image.shape[0] / 720)
    thickness = max(1, int(round(2 * size)))
    args = (text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, size)
    cv2.putText(image, *args, (0, 0, 0), thickness + 2 * max(1, thickness // 2), cv2.LINE_AA)
    cv2.putText(image, *args, (peak, peak, peak), thickness, cv2.LINE_AA)


def compose(before: np.ndarray, after: np.ndarray, layout: str, max_width: int = 0) -> np.ndarray:
    """One comparison frame: ``side`` puts before | after; ``split`` shows the left half before, right after."""
    import cv2

    h, w = after.shape[:2]
    margin = max(8, h // 40)
    baseline = margin + int(24 * max(0.5, h / 720))
    if layout == "side":
        left, right = before.copy(), after.copy()
        label(left, BEFORE_LABEL, margin, baseline)
        label(right, AFTER_LABEL, margin, baseline)
        frame = np.concatenate([left, right], axis=1)
    elif layout == "split":
        frame = after.copy()
        half = w // 2
        frame[:, :half] = before[:, :half]
        peak = np.iinfo(frame.dtype).max
        frame[:, max(0, half - 1) : half + 1] = peak
        label(frame, BEFORE_LABEL, margin, baseline)
        text_w = cv2.getTextSize(AFTER_LABEL, cv2.FONT_HERSHEY_SIMPLEX, max(0.5, h / 720), 2)[0][0]
        label(frame, AFTER_LABEL, max(half + margin, w - margin - text_w), baseline)
    else:
        raise UsageError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if max_width and frame.shape[1] > max_width:
        k = max_width / frame.shape[1]
        frame = cv2.resize(
            frame, (max_width, max(2, int(round(frame.shape[0] * k)))), interpolation=cv2.INTER_AREA
        )
    return frame


def snapshot_indices(frames: int | None, count: int) -> list[int]:
    """``count`` frame indices spread evenly through the video (away from its very ends)."""
    if count <= 0:
        return []
    total = frames or count
    return sorted({min(total - 1, (2 * k + 1) * total // (2 * count)) for k in range(count)})


def _write_png(path: Path, image: np.ndarray) -> None:
    """One snapshot, atomically (``vsr.media.image``: no half-written PNG is ever left)."""
    from vsr.media.image import write_image

    write_image(path, np.ascontiguousarray(image))


def compare(config: CompareConfig) -> CompareReport:
    """Write the comparison video (and snapshots) for ``config``; returns what was written."""
    from vsr.atomic import atomic_path
    from vsr.media.reader import VideoReader
    from vsr.media.writer import EncodeSettings, VideoWriter, container_for

    # 1. Check inputs and outputs.
    config.validate()
    fmt = container_for(config.result)
    settings = EncodeSettings.for_output(config.result, crf=config.crf)
    if config.snapshots and config.snapshot_dir is None:
        config.snapshot_dir = config.result.with_name(config.result.stem + "_snapshots")
    report = CompareReport(result=str(config.result), layout=config.layout)
    writer = None
    with (
        VideoReader(config.input) as before_reader,
        VideoReader(config.output) as after_reader,
        atomic_path(config.result) as tmp,
    ):
        src, out = before_reader.info, after_reader.info
        if src.frames and out.frames and src.frames != out.frames:
            report.warnings.append(
                f"INPUT has {src.frames} frames, OUTPUT {out.frames}: compared the first frames in order"
            )
        wanted = set(snapshot_indices(out.frames or src.frames, config.snapshots))
        if wanted:
            config.snapshot_dir.mkdir(parents=True, exist_ok=True)
        # 2. Pair frames by order, compose, encode with the output's timing (and audio).
        try:
            pairs = zip(before_reader.frames(), after_reader.frames(), strict=False)
            for before_frame, after_frame in pairs:
                after = to_display(after_frame.image, out.rotation)
                before = to_display(before_frame.image, src.rotation)
                if before.dtype != after.dtype:
                    before = _match_depth(before, after.dtype)
                before = upscale_to(before, after.shape[1], after.shape[0])
                frame = compose(before, after, config.layout, config.max_width)
                if writer is None:  # the composite is upright already: rotation 0; audio from OUTPUT
                    writer = VideoWriter(
                        tmp, fmt, out, frame.shape[1], frame.shape[0], settings, after_reader.time_base,
                        rotation=0, side_source=config.output,
                    )  # fmt: skip
                    report.size = (frame.shape[1], frame.shape[0])
                writer.write(after_frame.with_image(frame))
                report.frames += 1
                # 3. Snapshots: before/after PNG pairs at full output resolution.
                if after_frame.index in wanted:
                    stem = config.snapshot_dir / f"frame{after_frame.index:06d}"
                    _write_png(stem.with_name(stem.name + "_before.png"), before)
                    _write_png(stem.with_name(stem.name + "_after.png"), after)
                    report.snapshots += [str(stem) + "_before.png", str(stem) + "_after.png"]
            if writer is None:
                raise InputError(f"{config.output} has no frames to compare")
            report.warnings += writer.report.warnings
            writer.close()
            writer = None
        finally:
            if writer is not None:
                writer.abort()
    return report


def _match_depth(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Convert between 8- and 16-bit RGB so both sides of the comparison share a depth."""
    if dtype == np.uint16:
        return image.astype(np.uint16) * 257
    return (image >> 8).astype(np.uint8)
