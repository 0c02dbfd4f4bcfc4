"""``vsr enhance photo.jpg photo_x4.png`` and ``vsr enhance photos/ out/``: still images through the same stage.

Each image is one frame pushed through the stage ``build_stage`` made for the run (face mode on a single
image is detection without tracking: a fresh stage per image, so no face carries over from the previous
one), written atomically with its bit depth, ICC profile and EXIF carried where the format allows
(``vsr.media.image``).  A folder run enhances every image in it; one bad image is reported and the others
still complete (exit 3).  The report has the same shape as for a video, plus one row per image.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from vsr.config import EnhanceConfig
from vsr.errors import InputError, OutputError, PartialFailure, UsageError, VsrError, one_line
from vsr.pipelines.enhance_report import BusySeconds, EnhanceReport


def image_jobs(config: EnhanceConfig) -> list[tuple[Path, Path, Path | None]]:
    """(input, output, mask or None) per image: one file, or every image of a folder into a folder."""
    from vsr.media.image import IMAGE_SUFFIXES, WRITE_SUFFIXES

    if config.input.is_dir():
        if config.output.exists() and not config.output.is_dir():
            raise UsageError(f"INPUT is a folder, so OUTPUT must be a folder too: {config.output} is a file")
        if not config.output.resolve().parent.is_dir():
            raise OutputError(f"output folder's parent does not exist: {config.output.resolve().parent}")
        if config.output.resolve() == config.input.resolve():
            raise OutputError(
                "OUTPUT is the INPUT folder; choose another folder: inputs are never overwritten"
            )
        files = sorted(
            p for p in config.input.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise InputError(
                f"input is a directory with no images in it: {config.input} (looked for "
                f"{', '.join(IMAGE_SUFFIXES)}); give a video file, an image or a folder of images"
            )
        config.output.mkdir(exist_ok=True)
        if config.altered_mask is not None:
            config.altered_mask.mkdir(exist_ok=True)

        def written_name(p: Path) -> str:  # formats that are read but not written become PNG
            return p.name if p.suffix.lower() in WRITE_SUFFIXES else p.stem + ".png"

        return [
            (
                p,
                config.output / written_name(p),
                config.altered_mask / f"{p.stem}.png" if config.altered_mask else None,
            )
            for p in files
        ]
    if config.output.suffix.lower() not in WRITE_SUFFIXES:
        raise UsageError(
            f"OUTPUT {config.output.name}: an image is written as {', '.join(WRITE_SUFFIXES)}; "
            "give OUTPUT one of those extensions"
        )
    return [(config.input, config.output, config.altered_mask)]


def enhance_images(config: EnhanceConfig, *, models=None, stage=None, on_frames=None) -> EnhanceReport:
    """Enhance one image or a folder of images; the report has one row per image in ``items``."""
    from vsr.digest import sha256_of
    from vsr.media.image import read_image, write_image
    from vsr.media.reader import Frame
    from vsr.pipelines.enhance import build_stage, check_output_path, mask_picture
    from vsr.progress import Progress

    started = time.perf_counter()
    # 1. Check the paths: every output, before any work.
    jobs = image_jobs(config)
    for src, out, mask in jobs:
        for target in (out, mask):
            if target is not None:
                check_output_path(target, src.resolve(), config.overwrite)
    # 2. Load the models and build the stage.  Each image is a push of one frame, which a compiled model
    #    would fill up to a whole batch (one compiled shape): ``--compile auto`` is off here.
    if config.compile == "auto":
        config = dataclasses.replace(config, compile="off")
    built = stage or build_stage(config, models)
    busy = BusySeconds()
    items: list[dict] = []
    warnings = list(built.warnings)
    with Progress("enhance", len(jobs), unit="images", quiet=config.quiet) as progress:
        for w in built.warnings:
            progress.line(f"warning: {w}")
        # 3. Each image: read, one frame through a fresh stage, write (atomically, metadata carried).
        for src, out, mask in jobs:
            try:
                t0 = time.perf_counter()
                image = read_image(src)
                config.limits.check_frame(src, image.pixels.shape[1], image.pixels.shape[0])
                t1 = time.perf_counter()
                one = built.fresh_stage()
                (done,) = one.push([Frame(image.pixels, pts=0, index=0)]) + one.flush()
                t2 = time.perf_counter()
                notes = write_image(out, done.image, like=image)
                if mask is not None:
                    write_image(mask, mask_picture(done, built))
                t3 = time.perf_counter()
            except VsrError as exc:
                if len(jobs) == 1:
                    raise
                items.append(
                    {"input": str(src), "output": str(out), "status": "failed", "error": one_line(exc)}
                )
                progress.line(f"error: {src.name}: {one_line(exc)}")
                continue
            busy.decode += t1 - t0
            busy.encode += t3 - t2
            busy.model += t2 - t1
            warnings += [f"{src.name}: {n}" for n in notes]
            h, w = image.pixels.shape[:2]
            items.append(
                {
                    "input": str(src),
                    "output": str(out),
                    "status": "ok",
                    "size_in": [w, h],
                    "size_out": [done.image.shape[1], done.image.shape[0]],
                    "bit_depth": image.bit_depth,
                    "format": image.format,
                    "sha256_in": sha256_of(src),
                    "sha256_out": sha256_of(out),
                    "faces": (one.report() or {}).get("face_tracks"),
                }
            )
            progress.update(1)
            if on_frames is not None:
                on_frames(1)
    detect = built.detect_seconds
    busy.face_detection = round(detect, 3)
    busy.model = round(max(0.0, busy.model - detect), 3)
    busy.decode, busy.encode = round(busy.decode, 3), round(busy.encode, 3)
    failed = [i for i in items if i["status"] == "failed"]
    report = built.report(
        config,
        status="ok" if not failed else "partial",
        input={"path": str(config.input), "images": len(jobs)},
        output={"path": str(config.output), "images": len(items) - len(failed)},
        frames_in=len(jobs),
        frames_out=len(items) - len(failed),
        busy_seconds=busy,
        seconds=round(time.perf_counter() - started, 3),
        warnings=warnings,
        items=items,
    )
    if config.report:
        report.write(config.report)
    if failed:
        raise PartialFailure(
            f"{len(failed)} of {len(jobs)} images failed (first: {Path(failed[0]['input']).name}: "
            f"{failed[0]['error']}); the others were written",
            report=report,
        )
    return report
