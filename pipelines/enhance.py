"""``vsr enhance``: decode, super-resolve and re-encode a video, faithfully and in bounded memory.

    input ──decode thread──► [queue] ──► stage (frame or face) on CPU/GPU ──► [queue] ──encode thread──► temp file
                                                                                               └─ audio/subtitles copied

Steps of ``enhance(config)``:
 1. check the paths (input readable, output writable, not the input, not existing without --overwrite);
 2. open the input and describe it;
 3. load the model(s) and build the stage;
 4. stream every frame through the stage into a temporary file beside the output;
 5. verify the invariants on the written file (frames, duration, audio, rotation);
 6. rename the temporary file onto the output and return the report.
On any failure or Ctrl-C the temporary file is removed and the input is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vsr.config import EnhanceConfig
from vsr.errors import EncodeError, OutputError, UsageError, VsrError
from vsr.progress import Progress


class Stage(Protocol):
    """Frames in, upscaled frames out: every frame exactly once, in order (a stage may delay some)."""

    def push(self, images: list[np.ndarray]) -> list[np.ndarray]: ...
    def flush(self) -> list[np.ndarray]: ...
    def report(self) -> dict[str, Any]: ...


@dataclass
class FrameStage:
    """Whole-frame mode: every frame through the model."""

    upscaler: Any

    def push(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return self.upscaler(images)

    def flush(self) -> list[np.ndarray]:
        return []

    def report(self) -> dict[str, Any]:
        return {"mode": "frame"}


@dataclass
class EnhanceResult:
    """The run's report (also written as JSON with ``--report``)."""

    data: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# -- step 1: paths --------------------------------------------------------------------------------------------
def check_paths(config: EnhanceConfig) -> None:
    """Reject output paths that would lose data or cannot work, before any decoding."""
    from vsr.media.probe import check_input_path
    from vsr.media.writer import container_for

    inp = check_input_path(config.input)
    out = config.output
    container_for(out)
    if out.exists() or out.is_symlink():
        if out.is_dir():
            raise OutputError(f"output is a directory: {out}; give a file name such as {out / 'out.mp4'}")
        if out.exists() and os.path.samefile(inp, out):
            raise OutputError(
                f"output is the input file ({out}); choose another output name: the input is never overwritten"
            )
        if not config.overwrite:
            raise OutputError(f"output exists: {out}; pass --overwrite to replace it")
    elif out.resolve() == inp:
        raise OutputError(f"output is the input file ({out}); choose another output name")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise OutputError(f"output folder does not exist: {parent}; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output folder is not writable: {parent}")
    probe_file = temp_path_for(out)
    try:  # the only reliable check (root ignores permission bits; some filesystems refuse files)
        probe_file.touch(exist_ok=False)
        probe_file.unlink()
    except OSError as exc:
        raise OutputError(
            f"cannot create files in {parent} ({exc.strerror}); choose a writable output folder"
        ) from None


def temp_path_for(output: Path) -> Path:
    """A hidden temporary file beside ``output`` (same filesystem, so the final rename is atomic)."""
    return output.resolve().parent / f".{output.name}.vsr-{os.getpid()}.part"


# -- step 3: model and stage ----------------------------------------------------------------------------------
def build_upscaler(model_name: str, config: EnhanceConfig, device, precision: str):
    from vsr.models.registry import load_model_from
    from vsr.pipelines.upscale import Upscaler

    loaded = load_model_from(model_name, config.scale)
    upscaler = Upscaler(loaded.module, loaded.scale, device, precision, config.batch_size, config.tile)
    if loaded.generative_face_restorer:  # GFPGAN, RestoreFormer: aligned 512 px faces, see face/align.py
        from vsr.pipelines.face.align import FaceRestorer

        return loaded, FaceRestorer(upscaler, loaded.arch, int(loaded.module.face_size))
    return loaded, upscaler


def resolve_mode(config: EnhanceConfig, face_model: str | None) -> str:
    """``auto`` -> face mode when a face detector is installed and there is a face model to use, else frame."""
    if config.mode != "auto":
        return config.mode
    if face_model is None:
        return "frame"  # faces would go through the same model as the background: detection buys nothing
    try:
        from vsr.pipelines.face.detect import available_detector
    except ImportError:
        return "frame"
    return "face" if available_detector() else "frame"


def build_stage(config: EnhanceConfig, model_name: str, device, precision: str, result: EnhanceResult):
    """The frame or face stage with its models loaded: (stage, the main loaded model, every upscaler)."""
    from vsr.models.registry import DEFAULT_FACE_MODEL

    loaded, upscaler = build_upscaler(model_name, config, device, precision)
    if loaded.generative_face_restorer:
        raise UsageError(f"--model {model_name} is a {loaded.arch} face restorer: pass it as --face-model")
    face_name = config.face.face_model or DEFAULT_FACE_MODEL.get(config.scale)
    if resolve_mode(config, face_name) == "frame":
        return FrameStage(upscaler), loaded, [upscaler]
    from vsr.pipelines.face.stage import FaceStage

    if face_name is None:  # --mode face asked for explicitly
        face_name = model_name
        result.warnings.append(
            f"no face model is the default at x{config.scale} (none measured better than Lanczos); faces use {model_name}"
        )
    result.data["face_model"] = face_name
    face_loaded, face_upscaler = (
        (loaded, upscaler)
        if face_name == model_name
        else build_upscaler(face_name, config, device, precision)
    )
    if face_loaded.generative_face_restorer:
        result.data["face_restorer"] = {"arch": face_loaded.arch, "generative": True}
        result.warnings.append(
            f"faces restored by {face_loaded.arch}, a generative face restorer: it invents facial detail, "
            "so the output must not be used to identify people"
        )
    if config.face.background in ("lanczos", "bicubic"):
        _, background = build_upscaler(config.face.background, config, device, precision)
    else:
        background = upscaler
    stage = FaceStage(config.face, config.scale, face_upscaler, background)
    return stage, loaded, [upscaler, getattr(face_upscaler, "restorer", face_upscaler)]


# -- step 5: invariants ---------------------------------------------------------------------------------------
def measure_video_stream(path: Path) -> dict[str, Any]:
    """Count the video packets of a written file and its first/last timestamps (no decoding)."""
    from vsr.media.probe import main_video_stream, open_input

    container = open_input(path)
    try:
        stream = main_video_stream(container)
        count, first, end = 0, None, None
        for pkt in container.demux(stream):
            if pkt.pts is None:
                continue
            count += 1
            t0 = float(pkt.pts * pkt.time_base)
            t1 = t0 + float((pkt.duration or 0) * pkt.time_base)
            first = t0 if first is None else min(first, t0)
            end = t1 if end is None else max(end, t1)
        return {
            "frames": count,
            "start": first or 0.0,
            "end": end or 0.0,
            "audio": len(container.streams.audio),
        }
    finally:
        container.close()


def check_invariants(
    frames_in: int,
    frames_out: int,
    span_in: tuple[float, float],
    out: dict,
    info_in,
    info_out,
    config: EnhanceConfig,
    frame_period: float,
) -> dict[str, Any]:
    """Frames, duration, audio and rotation of the written file against the source; raise on violation."""
    checks = {
        "frames": frames_in == frames_out == out["frames"],
        "duration": abs((out["end"] - out["start"]) - (span_in[1] - span_in[0])) <= frame_period + 1e-3,
        "audio": (not config.audio) or out["audio"] == len(info_in.audio_streams),
        "rotation": info_out.rotation == info_in.rotation,
    }
    failed = [k for k, ok in checks.items() if not ok]
    if failed:
        raise EncodeError(
            f"output failed its checks ({', '.join(failed)}): frames in {frames_in}, encoded {frames_out}, "
            f"in file {out['frames']}; duration in {span_in[1] - span_in[0]:.3f}s, out {out['end'] - out['start']:.3f}s; "
            "nothing was written; please report this"
        )
    return checks


# -- the pipeline -----------------------------------------------------------------------------------------------
def enhance(config: EnhanceConfig) -> dict[str, Any]:
    """Run ``vsr enhance`` for ``config`` and return the report dict (also written to ``config.report``)."""
    from vsr.media.probe import probe
    from vsr.media.reader import VideoReader
    from vsr.media.writer import EncodeSettings, VideoWriter, container_for, default_codec
    from vsr.models.registry import DEFAULT_MODEL, REGISTRY
    from vsr.pipelines.stream import BackgroundConsumer, BackgroundIterator
    from vsr.pipelines.upscale import resolve_device, resolve_precision

    started = time.perf_counter()
    result = EnhanceResult()
    config.validate()
    # 1. paths
    check_paths(config)
    fmt = container_for(config.output)
    codec = config.codec or default_codec(config.output)
    if fmt == "webm" and codec not in ("libvpx-vp9", "libsvtav1"):
        raise UsageError(
            f"--codec {codec} cannot go into .webm; use libvpx-vp9 or libsvtav1, or an .mp4/.mkv output"
        )
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    model_name = config.model or DEFAULT_MODEL[config.scale]
    if config.model is None and REGISTRY[model_name].weights is None:
        result.warnings.append(
            f"using {model_name} interpolation, the best-measured default for x{config.scale} "
            "(see 'vsr models'; choose another with --model)"
        )

    tmp = temp_path_for(config.output)
    stop = threading.Event()
    producer = consumer = writer = None
    with Progress("enhance", None, quiet=config.quiet) as progress:
        for w in result.warnings:
            progress.line(f"warning: {w}")
        try:
            # 2. input
            with VideoReader(config.input) as reader:
                info = reader.info
                progress.total = info.frames
                # 3. model and stage
                stage, loaded, upscalers = build_stage(config, model_name, device, precision, result)
                # 4. stream
                out_w, out_h = info.width * config.scale, info.height * config.scale
                settings = EncodeSettings(
                    codec=codec,
                    crf=config.crf,
                    preset=config.preset,
                    pix_fmt=config.pix_fmt,
                    audio=config.audio,
                )
                time_base = reader.time_base
                if config.ffmpeg_bin:
                    from vsr.media.ffmpeg_writer import FfmpegWriter

                    writer = FfmpegWriter(
                        tmp, fmt, info, out_w, out_h, settings, time_base, ffmpeg_bin=config.ffmpeg_bin
                    )
                else:
                    writer = VideoWriter(tmp, fmt, info, out_w, out_h, settings, time_base)
                gather = max(1, upscalers[0].batch_size)
                producer = BackgroundIterator(
                    reader.frames(), maxsize=2 * gather + 2, stop=stop, name="decode"
                )
                consumer = BackgroundConsumer(
                    lambda item: writer.write(*item), maxsize=2 * gather + 2, stop=stop, name="encode"
                )
                timing: deque[tuple[int, Fraction]] = deque()
                span = [None, None]
                frames_in = frames_out = 0
                batch: list[np.ndarray] = []

                def emit(images: list[np.ndarray]) -> None:
                    nonlocal frames_out
                    for image in images:
                        pts, tb = timing.popleft()
                        consumer.put((image, pts, tb))
                        frames_out += 1
                    progress.update(len(images))

                for frame in producer:
                    frames_in += 1
                    timing.append((frame.pts, frame.time_base))
                    t = float(frame.pts * frame.time_base)
                    span[0] = t if span[0] is None else min(span[0], t)
                    span[1] = t if span[1] is None else max(span[1], t)
                    batch.append(frame.image)
                    if len(batch) >= gather:
                        emit(stage.push(batch))
                        batch = []
                if batch:
                    emit(stage.push(batch))
                emit(stage.flush())
                consumer.close()
                writer.close()
                decode_errors = reader.decode_errors
            # 5. invariants
            period = 1 / info.fps if info.fps else 0.0
            span_in = (span[0] or 0.0, (span[1] or 0.0) + period)
            measured = measure_video_stream(tmp)
            info_out = probe(tmp)
            checks = check_invariants(
                frames_in, frames_out, span_in, measured, info, info_out, config, period
            )
            # 6. publish
            os.replace(tmp, config.output)
        except BaseException:
            stop.set()
            for worker in (producer, consumer):
                if worker is not None:
                    worker.join()
            if writer is not None:
                writer.abort()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        finally:
            stop.set()

    seconds = time.perf_counter() - started
    info_out.path = str(config.output)
    for u in {id(u): u for u in upscalers}.values():  # face mode may share one upscaler
        result.warnings.extend(u.stats.warnings)
    result.warnings.extend(writer.report.warnings)
    if decode_errors:
        result.warnings.append(f"{decode_errors} corrupt packet(s) in the input were skipped")
    report = {
        "status": "ok",
        "input": info.summary(),
        "output": info_out.summary(),
        "model": loaded.name,
        "model_sha256": loaded.sha256,
        "model_params": loaded.params,
        "scale": config.scale,
        "device": str(device),
        "precision": precision if loaded.params else "fp32",
        "batch_size": upscalers[0].stats.batch_size,
        "tile": upscalers[0].stats.tile,
        **stage.report(),
        **result.data,
        "codec": writer.report.codec,
        "container": writer.report.container,
        "padded": writer.report.padded,
        "audio": writer.report.audio,
        "subtitles": writer.report.subtitles,
        "frames_in": frames_in,
        "frames_out": frames_out,
        "decode_errors": decode_errors,
        "duration_in": round(span_in[1] - span_in[0], 6),
        "duration_out": round(measured["end"] - measured["start"], 6),
        "checks": checks,
        "seconds": round(seconds, 3),
        "fps": round(frames_out / seconds, 3) if seconds > 0 else None,
        "warnings": result.warnings,
    }
    if config.report:
        write_report(config.report, report)
    return report


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the JSON report atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise OutputError(f"cannot write the report {path}: {exc.strerror}") from None


def failure_report(config: EnhanceConfig, exc: BaseException) -> None:
    """With ``--report``, record a failed run too (batch jobs read it)."""
    if config.report:
        from vsr.errors import one_line

        code = exc.exit_code if isinstance(exc, VsrError) else 130
        write_report(
            config.report,
            {
                "status": "failed",
                "input": {"path": str(config.input)},
                "output": {"path": str(config.output)},
                "error": one_line(exc),
                "exit_code": code,
            },
        )
