"""Evaluation protocols: how well a model restores images, faces and video, next to bicubic and Lanczos.

Every protocol follows the same visible steps, chosen so that numbers compare
with published super-resolution tables:

1. HR: the reference, cropped at the bottom/right to a multiple of the scale S
   ("modcrop").
2. LR: MATLAB-style ``imresize`` bicubic downsampling by 1/S *with*
   antialiasing, computed in float on 0..255 and then rounded half up and
   clipped to uint8, exactly as MATLAB's ``imresize`` returns for ``uint8``
   input.  The faces ``real`` protocol degrades instead (``degrade.py``).
3. SR: the model, and always the ``bicubic`` and ``lanczos`` baselines, run on
   the LR through the same ``Upscaler`` that ``vsr enhance`` uses (uint8 out).
4. Scores on S pixels shaved from every border: PSNR and SSIM on the Y
   (BT.601 luma, MATLAB ``rgb2ycbcr``, float, [16, 235]) channel and on RGB
   (PSNR over all channels jointly, SSIM = mean of per-channel SSIMs), and
   ``sharpness``: the output's mean Y gradient magnitude over the reference's
   (1 = as much detail, below 1 = blurrier; PSNR alone rewards blur).  For a
   single-channel (greyscale) source file, Y is the grey level itself, as the
   MATLAB benchmark scripts do (for the SR output: its full-range luma, which is
   the grey level when R = G = B).  The reported value is the mean over images
   (or frames) of the per-image scores.
5. Video adds flicker (``flicker``): the mean over consecutive frame pairs of
   the mean absolute change of the Y error, mean |(SR_t - HR_t) - (SR_t-1 -
   HR_t-1)|, in Y levels (0..255).  It is the temporal change the output has
   that the source does not; 0 = perfectly stable error; lower is better.

PSNR of identical images is ``math.inf`` in Python and ``null`` in JSON
(``to_dict`` keeps JSON strict: no NaN or Infinity tokens).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from vsr.errors import DataError, InputError, UsageError
from vsr.media.image import IMAGE_SUFFIXES, read_image, to_uint8
from vsr.pipelines.evaluate.grid import check_grid_path, write_grid
from vsr.pipelines.evaluate.protocol import (
    MethodSet,
    bicubic_downscale,
    check_size,
    describe_protocol,
    grid_row,
    modcrop,
    score,
)
from vsr.pipelines.evaluate.results import EvalReport, MethodResult, Scores
from vsr.pipelines.metrics import rgb_to_y, shave

__all__ = ["EvalReport", "MethodResult", "Scores", "bicubic_downscale", "evaluate_images", "evaluate_video"]

KINDS = ("images", "faces")
DEGRADATIONS = (None, "real")
VIDEO_CHUNK = 8  # frames decoded, upscaled and scored together; memory stays flat with clip length

# -- images and faces -----------------------------------------------------------------------------------------


def list_images(directory: Path) -> list[Path]:
    """Image files directly in ``directory``, sorted by name; raises if it is missing or has none."""
    if not directory.exists():
        raise InputError(f"not found: {directory}; check the path")
    if not directory.is_dir():
        raise InputError(f"not a directory: {directory}; give a folder of images")
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no images in {directory} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def _image_batches(
    files: list[Path], scale: int, limit: int | None, batch: int, skipped: list[str]
) -> Iterator[list[tuple[str, np.ndarray, bool]]]:
    """Readable, modcropped images in runs of equal size (so they stack), at most ``batch`` long."""
    pending: list[tuple[str, np.ndarray, bool]] = []
    taken = 0
    for path in files:
        if limit is not None and taken >= limit:
            break
        try:
            image = read_image(path)
        except InputError:
            skipped.append(path.name)
            continue
        grey = image.grey
        hr = np.ascontiguousarray(modcrop(to_uint8(image.pixels), scale))
        check_size(hr, scale, path.name)
        taken += 1
        if pending and (pending[0][1].shape != hr.shape or len(pending) >= batch):
            yield pending
            pending = []
        pending.append((path.name, hr, grey))
    if pending:
        yield pending


def evaluate_images(
    directory: Path | str,
    scale: int,
    model: str | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    limit: int | None = None,
    kind: str = "images",
    degrade: str | None = None,
    seed: int = 0,
    precision: str = "auto",
    grid: Path | str | None = None,
    quiet: bool = True,
) -> EvalReport:
    """Score ``model`` and the bicubic/Lanczos baselines on a folder of images (``kind`` images or faces)."""
    from vsr.progress import Progress

    # 1. Check inputs.
    if kind not in KINDS:
        raise UsageError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if degrade not in DEGRADATIONS:
        raise UsageError(f"--degrade must be none or real, got {degrade!r}")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be a positive integer, got {limit}")
    directory = Path(directory)
    files = list_images(directory)
    if grid is not None:
        check_grid_path(Path(grid))
    start = time.perf_counter()
    # 2. Load the model and the baselines.
    methods = MethodSet(model, scale, device, precision, batch_size)
    names: list[str] = []
    skipped: list[str] = []
    examples: list[dict[str, np.ndarray]] = []
    chunk = batch_size or (8 if methods.device.type == "cuda" else 4)
    total = min(len(files), limit) if limit else len(files)
    with Progress(f"eval {kind} x{scale}", total, unit="images", quiet=quiet) as progress:
        for batch in _image_batches(files, scale, limit, chunk, skipped):
            # 3. HR -> LR.
            hrs = [hr for _, hr, _ in batch]
            if degrade == "real":
                from vsr.pipelines.evaluate.degrade import degrade_real

                lrs = [degrade_real(hr, scale, seed, len(names) + i) for i, hr in enumerate(hrs)]
            else:
                lrs = list(bicubic_downscale(hrs, scale))
            # 4. Upscale with every method and score.
            outputs = methods.run(lrs)
            for i, (name, hr, grey) in enumerate(batch):
                for method, result in methods.results.items():
                    result.items.append(score(outputs[method][i], hr, scale, grey))
                if len(examples) < 4:
                    examples.append(grid_row(lrs[i], outputs, hr, i))
                names.append(name)
            progress.update(len(batch))
    if not names:
        raise DataError(
            f"none of the {len(skipped)} image files in {directory} could be read ({', '.join(skipped[:3])} ...)"
        )
    # 5. Report (and the comparison grid).
    if grid is not None:
        write_grid(Path(grid), examples, scale, methods.model_name)
    return EvalReport(
        kind=kind,
        source=str(directory),
        model=methods.model_name,
        scale=scale,
        device=str(methods.device),
        precision=methods.precision,
        protocol=describe_protocol(scale, kind, degrade, seed),
        names=names,
        methods=methods.results,
        skipped=skipped,
        seconds=time.perf_counter() - start,
    )


# -- video ----------------------------------------------------------------------------------------------------


def _chunks(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    pending: list[np.ndarray] = []
    for frame in frames:
        pending.append(frame)
        if len(pending) >= size:
            yield pending
            pending = []
    if pending:
        yield pending


def _to_uint8(image: np.ndarray) -> np.ndarray:
    # High-bit-depth sources are scored on the 8-bit scale, like everything else.
    if image.dtype == np.uint16:
        return np.floor(image / 257.0 + 0.5).astype(np.uint8)
    return image


def evaluate_video(
    clip: Path | str,
    scale: int,
    model: str | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    limit: int | None = None,
    precision: str = "auto",
    grid: Path | str | None = None,
    quiet: bool = True,
) -> EvalReport:
    """Downscale a real clip, upscale it back with the model and the baselines, score each frame and flicker."""
    from vsr.media.reader import VideoReader
    from vsr.progress import Progress

    # 1. Check inputs.
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be a positive integer, got {limit}")
    clip = Path(clip)
    if grid is not None:
        check_grid_path(Path(grid))
    start = time.perf_counter()
    # 2. Load the model and the baselines.
    methods = MethodSet(model, scale, device, precision, batch_size)
    names: list[str] = []
    examples: list[dict[str, np.ndarray]] = []
    previous: dict[str, np.ndarray | None] = {m: None for m in methods.results}
    hr_change: list[float] = []
    prev_hr: np.ndarray | None = None
    with VideoReader(clip) as reader:
        expected = reader.info.frames
        total = min(expected, limit) if expected and limit else (limit or expected)
        stride = max(1, (total or 100) // 4)  # grid examples spread over the clip
        frames = (_to_uint8(f.image) for f in reader.frames())
        with Progress(f"eval video x{scale}", total, unit="frames", quiet=quiet) as progress:
            for batch in _chunks(_limited(frames, limit), VIDEO_CHUNK):
                # 3. HR (cropped frame) -> LR -> every method.
                hrs = [np.ascontiguousarray(modcrop(f, scale)) for f in batch]
                check_size(hrs[0], scale, f"{clip.name} frame")
                lrs = list(bicubic_downscale(hrs, scale))
                outputs = methods.run(lrs)
                # 4. Score each frame and the change of its error since the previous frame.
                for i, hr in enumerate(hrs):
                    index = len(names)
                    y_hr = shave(rgb_to_y(hr), scale)
                    if prev_hr is not None and prev_hr.shape == y_hr.shape:
                        hr_change.append(float(np.mean(np.abs(y_hr - prev_hr))))
                    prev_hr = y_hr
                    for method, result in methods.results.items():
                        sr = outputs[method][i]
                        result.items.append(score(sr, hr, scale))
                        err = shave(rgb_to_y(sr), scale) - y_hr
                        last = previous[method]
                        if last is not None and last.shape == err.shape:
                            result.flicker_pairs.append(float(np.mean(np.abs(err - last))))
                        previous[method] = err
                    if index % stride == 0 and len(examples) < 4:
                        examples.append(grid_row(lrs[i], outputs, hr, i))
                    names.append(str(index))
                progress.update(len(batch))
    if not names:
        raise DataError(f"{clip}: no frames decoded")
    # 5. Report (and the comparison grid).
    if grid is not None:
        write_grid(Path(grid), examples, scale, methods.model_name)
    extra = {"frames": len(names), "hr_temporal_change": float(np.mean(hr_change)) if hr_change else None}
    return EvalReport(
        kind="video",
        source=str(clip),
        model=methods.model_name,
        scale=scale,
        device=str(methods.device),
        precision=methods.precision,
        protocol=describe_protocol(
            scale, "video", None, 0, {"hr_temporal_change": "mean |Y_t - Y_t-1| of the source"}
        ),
        names=names,
        methods=methods.results,
        seconds=time.perf_counter() - start,
        extra=extra,
    )


def _limited(frames: Iterable[np.ndarray], limit: int | None) -> Iterator[np.ndarray]:
    for i, frame in enumerate(frames):
        if limit is not None and i >= limit:
            return
        yield frame
