"""``vsr enhance``: decode, super-resolve and re-encode a video, faithfully and in bounded memory.

    input ──decode thread──► [queue] ──► stage (frame or face) on CPU/GPU ──► [queue] ──encode thread──► temp file
                                                                                               └─ audio/subtitles copied

``enhance(config)`` is a list of numbered steps; each part it uses is built by a function of its own
(``build_stage`` for the models and the stage, ``open_writer`` for the encoder, ``run_stage`` for the
threads) and can be passed in instead (tests pass a stub stage; batch workers pass a model cache).
On any failure or interruption the temporary files are removed and the input is never touched.
An input longer than ``--segment-seconds`` is committed in segments that an interrupted run keeps and
``--resume`` continues (``stream_segments``, ``vsr.pipelines.segments``).
Images (a file or a folder) go through the same stage: ``vsr.pipelines.enhance_image``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from vsr.config import EnhanceConfig
from vsr.errors import DecodeError, EncodeError, OutputError, UsageError, VsrError
from vsr.pipelines.enhance_report import BusySeconds, EnhanceReport, ModelUse, resolved_options
from vsr.pipelines.stream import Stage


@dataclass
class FrameStage:
    """Whole-frame mode: every frame through the model.

    Frames that carry YUV planes (the device frame path, ``yuv`` = the source's and the encoder's
    ``YuvFormat``) stay planes: each push starts its batch on the device and returns the batch before it,
    whose download has finished meanwhile, so copies overlap compute; ``flush`` returns the last one.
    """

    upscaler: Any
    yuv: tuple[Any, Any] | None = None
    _in_flight: tuple[list, Any] | None = None

    def push(self, frames: list) -> list:
        if frames and frames[0].planes is not None:
            started = self.upscaler.start_planes([f.planes for f in frames], *self.yuv)
            done, self._in_flight = self._landed(), (frames, started)
            return done
        images = self.upscaler([f.image for f in frames])
        return [f.with_image(image) for f, image in zip(frames, images, strict=True)]

    def _landed(self) -> list:
        if self._in_flight is None:
            return []
        frames, pending = self._in_flight
        self._in_flight = None
        return [f.with_planes(p) for f, p in zip(frames, pending.wait(), strict=True)]

    def flush(self) -> list:
        return self._landed()

    def report(self) -> dict[str, Any]:
        return {}


@dataclass
class BuiltStage:
    """What ``build_stage`` made: the stage, the upscalers it runs (by role) and what to warn about."""

    stage: Stage
    mode: str
    upscalers: dict[str, Any]  # role ("frame", "background", "face") -> the Upscaler running its model
    models: dict[str, Any]  # role -> LoadedModel
    warnings: list[str] = field(default_factory=list)

    spent_stages: list[Stage] = field(default_factory=list)

    def fresh_stage(self) -> Stage:
        """A stage for a new, independent stream (the next image of a folder) sharing the loaded models:
        face mode starts with no tracks; frame mode keeps no state, so its stage is reused."""
        stage = self.stage.fresh() if self.spent_stages and hasattr(self.stage, "fresh") else self.stage
        self.spent_stages.append(stage)
        return stage

    @property
    def batch_size(self) -> int:
        """Frames gathered before each push: the batch of the model that sees every frame."""
        first = self.upscalers.get("frame") or self.upscalers.get("background")
        return max(1, first.batch_size) if first is not None else 1

    def model_uses(self) -> list[ModelUse]:
        return [
            ModelUse(
                role=role,
                name=loaded.name,
                sha256=loaded.sha256,
                licence=loaded.licence,
                params=loaded.params,
                precision=up.precision if loaded.learned else "fp32",
                batch_size=up.stats.batch_size,
                tile=up.stats.tile,
                compiled=up.stats.compiled_batches > 0,
                compile_seconds=round(up.stats.compile_seconds, 3),
                generative_face_restorer=loaded.generative_face_restorer,
            )
            for role, loaded in self.models.items()
            for up in [self.upscalers[role]]
        ]

    def report(self, config: EnhanceConfig, **fields: Any) -> EnhanceReport:
        """A report of a run with these parts: what every report says about options, software and models."""
        from vsr.config import usable_cores
        from vsr.pipelines.enhance_report import software_versions

        return EnhanceReport(
            options=resolved_options(config),
            versions=software_versions(),
            mode=self.mode,
            scale=config.scale,
            device=str(next(iter(self.upscalers.values())).device),
            cores=usable_cores(),
            models=self.model_uses(),
            altered_mask=str(config.altered_mask) if config.altered_mask else None,
            frame_path="yuv" if getattr(self.stage, "yuv", None) else "rgb",
            **fields,
        )

    @property
    def detect_seconds(self) -> float:
        """Face detection time over every stage this run used (one per segment or image)."""
        stages = self.spent_stages or [self.stage]
        return sum(getattr(getattr(s, "stats", None), "detect_seconds", 0.0) for s in stages)

    @property
    def model_seconds(self) -> float:
        return sum(u.stats.seconds for u in {id(u): u for u in self.upscalers.values()}.values())


# -- step 1: paths --------------------------------------------------------------------------------------------
def check_paths(config: EnhanceConfig) -> None:
    """Reject output paths that would lose data or cannot work, before any decoding."""
    from vsr.media.probe import check_input_path

    inp = check_input_path(config.input)
    for out in (config.output, config.altered_mask):
        if out is not None:
            check_output_path(out, inp, config.overwrite)
    if config.altered_mask is not None and config.altered_mask.resolve() == config.output.resolve():
        raise OutputError("--altered-mask must differ from OUTPUT")


def check_output_path(out: Path, inp: Path, overwrite: bool) -> None:
    """One output file: not the input, not existing (unless ``overwrite``), in a writable folder."""
    from vsr.atomic import temp_path_for

    if out.exists() or out.is_symlink():
        if out.is_dir():
            raise OutputError(f"output is a directory: {out}; give a file name such as {out / 'out.mp4'}")
        if out.exists() and os.path.samefile(inp, out):
            raise OutputError(
                f"output is the input file ({out}); choose another output name: the input is never overwritten"
            )
        if not overwrite:
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


def encode_settings(config: EnhanceConfig, path: Path | None = None):
    """The encoder settings for ``path`` (default: the output), checked against its container."""
    from vsr.media.writer import EncodeSettings

    return EncodeSettings.for_output(
        path or config.output,
        codec=config.codec,
        crf=config.crf,
        preset=config.preset,
        pix_fmt=config.pix_fmt,
        audio=config.audio,
        encoder_options=config.encoder_options,
        ffmpeg_bin=config.ffmpeg_bin,
    )


# -- step 2: models and stage ---------------------------------------------------------------------------------
def resolve_mode(config: EnhanceConfig, face_model: str | None) -> str:
    """``auto`` -> face mode when a face detector is installed and there is a face model to use, else frame."""
    if config.mode != "auto":
        return config.mode
    if face_model is None:
        return "frame"  # faces would go through the same model as the background: detection buys nothing
    from vsr.pipelines.face.detect import available_detector

    return "face" if available_detector() else "frame"


def build_stage(config: EnhanceConfig, models=None) -> BuiltStage:
    """Load the models the mode needs (from ``models``, a ``ModelCache``) and build the frame or face stage."""
    from vsr.models.registry import DEFAULT_FACE_MODEL, DEFAULT_MODEL, REGISTRY, ModelCache
    from vsr.pipelines.device import resolve_compile, resolve_device, resolve_precision
    from vsr.pipelines.upscale import Upscaler

    models = models if models is not None else ModelCache()  # (an empty cache is falsy)
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    warnings: list[str] = []
    main_name = config.model or DEFAULT_MODEL[config.scale]
    if config.model is None and REGISTRY[main_name].weights is None:
        warnings.append(
            f"using {main_name} interpolation, the best-measured default for x{config.scale} "
            "(see 'vsr models'; choose another with --model)"
        )
    face_name = config.face.face_model or DEFAULT_FACE_MODEL.get(config.scale)
    mode = resolve_mode(config, face_name)
    built: dict[str, Any] = {}

    def upscaler(role: str, name: str) -> Upscaler:
        loaded = models.load(name, config.scale)
        built[role] = loaded
        if loaded.generative_face_restorer and role != "face":
            raise UsageError(f"--model {name} is a {loaded.arch} face restorer: pass it as --face-model")
        same = next((u for r, u in ups.items() if built[r] is loaded), None)  # one upscaler per model
        if same is not None:
            return same
        # The model's own factor: 1 for a face restorer, which works on aligned faces.
        compile = resolve_compile(config.compile, device, loaded.learned)
        return Upscaler(
            loaded.module, loaded.scale, device, precision, config.batch_size, config.tile, compile=compile
        )

    ups: dict[str, Upscaler] = {}
    if mode == "frame":
        ups["frame"] = upscaler("frame", main_name)
        return BuiltStage(FrameStage(ups["frame"]), mode, ups, built, warnings)

    from vsr.pipelines.face.stage import FaceStage

    if face_name is None:  # --mode face asked for explicitly
        face_name = main_name
        warnings.append(
            f"no face model is the default at x{config.scale} (none measured better than Lanczos); "
            f"faces use {main_name}"
        )
    background = config.face.background if config.face.background != "model" else main_name
    ups["background"] = upscaler("background", background)  # the general model is loaded only if used
    ups["face"] = upscaler("face", face_name)
    face_model: Any = ups["face"]
    if built["face"].generative_face_restorer:  # GFPGAN, RestoreFormer: aligned 512 px faces
        from vsr.pipelines.face.align import FaceRestorer

        arch = built["face"].arch
        warnings.append(
            f"faces by {arch}, a generative face restorer: it invents facial detail, so the output "
            "must not be used to identify people"
        )
        face_model = FaceRestorer(ups["face"], arch, int(built["face"].module.face_size))
    stage = FaceStage(
        config.face, config.scale, face_model, ups["background"], altered=config.altered_mask is not None
    )
    return BuiltStage(stage, mode, ups, built, warnings)


def device_path(config: EnhanceConfig, built: BuiltStage, info) -> tuple[Any, Any] | None:
    """The ``YuvFormat``s (decoder's planes in, encoder's out) when frames travel as YUV planes converted on
    the device (``--frame-path``: auto = on CUDA, in frame mode, for planar-YUV video), else None;
    ``--frame-path yuv`` where it cannot work is a usage error."""
    from vsr.media.planes import plane_layout
    from vsr.media.writer import full_range, picture_format
    from vsr.pipelines.yuv import KR_KB, YuvFormat

    if config.frame_path == "rgb":
        return None
    pix_out, matrix, full_out = picture_format(encode_settings(config), info)
    why = None
    if built.mode != "frame":
        why = "face mode works on RGB frames"
    elif config.altered_mask or config.ffmpeg_bin:
        why = "--altered-mask and --ffmpeg-bin take RGB frames"
    elif matrix not in KR_KB:
        why = f"the colour matrix {matrix} has no device conversion"
    else:
        try:
            plane_layout(info.pix_fmt), plane_layout(pix_out)
        except VsrError as exc:
            why = str(exc)
    if why:
        if config.frame_path == "yuv":
            raise UsageError(f"--frame-path yuv cannot be used here: {why}; use --frame-path rgb")
        return None
    if config.frame_path == "auto" and built.upscalers["frame"].device.type != "cuda":
        return None
    return (
        YuvFormat.for_pix_fmt(info.pix_fmt, matrix, full_range(info)),
        YuvFormat.for_pix_fmt(pix_out, matrix, full_out),
    )


def encoder_plan(config: EnhanceConfig, built: BuiltStage, info, codec: str):
    """How many ``codec`` encoders run at once (``--encoders``; auto: several only behind a CUDA model,
    which makes frames faster than one encoder takes them), sized for the output's frames."""
    from vsr.media.encoders import EncoderPlan, frame_bytes, plan_encoders

    if config.ffmpeg_bin:
        return EncoderPlan()
    cuda = any(u.device.type == "cuda" for u in built.upscalers.values())
    return plan_encoders(
        config.encoders,
        codec=codec,
        fps=info.fps,
        frame_bytes=frame_bytes(info.width * config.scale, info.height * config.scale, info.bit_depth),
        fast_source=cuda,
    )


# -- step 4: checks -------------------------------------------------------------------------------------------
def check_output(reader, writer, written, config: EnhanceConfig) -> dict[str, bool]:
    """Frames, timestamps, audio and rotation of the written file against the input; raise on violation.

    Timestamps are compared where they are exact: the first and the last frame's start.  (A file's
    stated end adds the last frame's duration, which containers and encoders guess differently, so it
    would refuse honest variable-frame-rate recordings.)
    """
    from vsr.media.writer import copyable

    info = reader.info
    # Timestamps are exact to the coarser of the two time bases (WebM and Matroska store milliseconds).
    tick = max(float(writer.time_base), float(Fraction(written.info.time_base)))
    span_in = (reader.last_time or 0.0) - (reader.first_time or 0.0)
    span_out = written.last_start - written.start
    # Audio: every input stream with packets and a codec (a declared stream with none cannot be copied).
    audio_in = [a for a in info.audio_streams if copyable(info, a["index"])]
    checks = {
        "frames": reader.frames_decoded == writer.report.frames == written.frames,
        "timestamps": abs(span_out - span_in) <= tick + 1e-6,
        "audio": (not config.audio) or len(written.info.audio_streams) == len(audio_in),
        "rotation": written.info.rotation == info.rotation,
    }
    if writer.report.side_dropped and not config.salvage:
        raise DecodeError(
            f"{config.input}: the file is damaged: {writer.report.side_dropped} audio/subtitle packet(s) cannot be "
            f"copied (first: {writer.report.side_damage}); pass --salvage to drop them, or --no-audio"
        )
    failed = [k for k, ok in checks.items() if not ok]
    if failed:
        raise EncodeError(
            f"output failed its checks ({', '.join(failed)}): frames decoded {reader.frames_decoded}, "
            f"encoded {writer.report.frames}, in file {written.frames}; first-to-last frame {span_in:.3f}s in, "
            f"{span_out:.3f}s out; nothing was written; please report this"
        )
    return checks


# -- the pipeline -----------------------------------------------------------------------------------------------
def enhance(
    config: EnhanceConfig,
    *,
    models=None,
    stage: BuiltStage | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> EnhanceReport:
    """Run ``vsr enhance`` for ``config``; return its report (also written to ``config.report``).

    ``models`` is a ``ModelCache`` to load from (a batch worker keeps one); ``stage`` replaces the
    stage ``build_stage`` would make (tests); ``on_frames(n)`` is told of every ``n`` frames finished
    (a batch worker's progress and watchdog).
    """
    from vsr.atomic import atomic_path
    from vsr.digest import BackgroundDigest
    from vsr.media.image import is_image_path
    from vsr.media.probe import read_back
    from vsr.media.reader import Clip, VideoReader
    from vsr.pipelines.segments import WorkFolder
    from vsr.progress import Progress

    config.validate()
    if is_image_path(config.input) or config.input.is_dir():
        from vsr.pipelines.enhance_image import enhance_images

        return enhance_images(config, models=models, stage=stage, on_frames=on_frames)
    started = time.perf_counter()
    # 1. Check the paths and the encoder settings before anything is decoded.
    check_paths(config)
    encode_settings(config)  # fails now, not after the models are loaded
    if config.altered_mask:
        encode_settings(config, config.altered_mask)
    digest_in = BackgroundDigest(config.input)  # hashed while it is decoded, not in a second pass
    clip = Clip(config.start, config.duration)
    with (
        Progress("enhance", None, quiet=config.quiet) as progress,
        WorkFolder(config.output, progress.line) as work,  # removed after publishing; kept for --resume
        VideoReader(
            config.input,
            clip=clip,
            limits=config.limits,
            salvage=config.salvage,
            deinterlace=config.deinterlace,
        ) as reader,
        atomic_path(config.output) as tmp,
        atomic_path(config.altered_mask) if config.altered_mask else contextlib.nullcontext() as mask_tmp,
    ):
        info = reader.info
        progress.total = (info.frames or info.frames_estimate) if clip.whole else None
        config.limits.check_output(
            info.width * config.scale, info.height * config.scale, encode_settings(config).codec
        )
        # 2. Load the models and build the stage.
        built = stage or build_stage(config, models)
        yuv = device_path(config, built, info)  # YUV planes from decoder to encoder, converted on the device
        if yuv is not None:
            reader.planes, built.stage.yuv = True, yuv
        progress.begin()  # rate and ETA count from here: model loading is not frame work
        for w in built.warnings:
            progress.line(f"warning: {w}")
        # 3. Stream every frame through the stage into the temporary file(s): a long input in committed
        #    segments joined at the end (what --resume continues), a short one in one pass.
        tell = _tell(progress.update, on_frames)
        if use_segments(config, info, clip):
            writer, segments = stream_segments(tmp, work, reader, built, config, progress, tell)
        else:
            work.clear_stale()
            writer, segments = stream_to(tmp, mask_tmp, reader, built, config, tell), None
        # 4. Read the written file back once (hashing it meanwhile) and check it against the input.
        digest_out = BackgroundDigest(tmp)
        written = read_back(tmp)
        checks = check_output(reader, writer, written, config)
        sha_out = digest_out.result()
        # 5. Publish: leaving the block renames the temporary file(s) onto the output(s).
    # 6. Report.
    report = _video_report(config, built, reader, writer, written, checks, started)
    report.segments = segments
    report.warnings.extend(work.warnings)
    report.input["sha256"], report.output["sha256"] = digest_in.result(), sha_out
    if config.report:
        report.write(config.report)
    return report


def _tell(*listeners: Callable[[int], None] | None) -> Callable[[int], None]:
    """One callback that tells every listener (the progress bar, a batch worker) of finished frames."""
    active = [f for f in listeners if f is not None]

    def tell(n: int) -> None:
        for f in active:
            f(n)

    return tell


def stream_to(tmp: Path, mask_tmp: Path | None, reader, built: BuiltStage, config: EnhanceConfig, on_frames):
    """Open the writer(s), run every frame through the stage into them, finish them; return the writer.
    The output's writer runs ``encoder_plan``'s encoders; the altered-pixel mask (cheap to encode) one."""
    from vsr.media.writer import container_for, open_writer
    from vsr.pipelines.stream import run_stage

    info = reader.info
    size = (info.width * config.scale, info.height * config.scale)
    rebase = not reader.clip.whole
    writer = mask_writer = None
    settings = encode_settings(config)
    try:
        writer = open_writer(
            tmp, container_for(config.output), info, *size, settings, reader.time_base,
            rotation=info.rotation, side_source=config.input, rebase=rebase,
            encoders=encoder_plan(config, built, info, settings.codec),
        )  # fmt: skip
        if mask_tmp:
            mask_writer = open_writer(
                mask_tmp, container_for(config.altered_mask), info, *size,
                encode_settings(config, config.altered_mask), reader.time_base,
                rotation=info.rotation, side_source=None, rebase=rebase,
            )  # fmt: skip
        run_stage(
            reader.frames(),
            built.stage,
            sink=_sink(writer, mask_writer, built),
            batch=built.batch_size,
            on_frames=on_frames,
        )
        writer.close()
        if mask_writer is not None:
            mask_writer.close()
    except BaseException:
        for w in (writer, mask_writer):
            if w is not None:
                w.abort()
        raise
    return writer


def use_segments(config: EnhanceConfig, info, clip) -> bool:
    """Commit in segments: a whole input longer than one segment (or of unknown length), written by PyAV's
    encoders without an altered-pixel mask; everything else runs in one pass, as it always did."""
    if not config.segment_seconds or not clip.whole or config.altered_mask or config.ffmpeg_bin:
        return False
    length = info.duration or ((info.frames or 0) / info.fps if info.fps else 0.0)
    return not length or length > config.segment_seconds


def stream_segments(
    tmp: Path,
    work,
    reader,
    built: BuiltStage,
    config: EnhanceConfig,
    progress,
    on_frames: Callable[[int], None],
):
    """Run every frame through the stage segment by segment into committed files in ``work`` (after
    ``--resume``, from the first unfinished one), then join them into ``tmp`` with the input's audio and
    subtitles; return the joining writer and the segments' report."""
    from vsr.media.writer import SegmentJoiner, container_for, open_writer
    from vsr.pipelines.enhance_report import SegmentsReport
    from vsr.pipelines.segments import SEGMENT_CONTAINER, SegmentPlan, SegmentWriter, fingerprint
    from vsr.pipelines.stream import run_stage

    info, time_base = reader.info, reader.time_base
    size = (info.width * config.scale, info.height * config.scale)
    settings = encode_settings(config)
    encoders = encoder_plan(config, built, info, settings.codec)
    manifest = work.claim(fingerprint(config, built), config.resume)
    resumed, done = manifest.frames, len(manifest.segments)
    if manifest.segments:
        last = manifest.segments[-1]
        reader.continue_from(last.last_pts, resumed, manifest.first_time, float(last.last_pts * time_base))
        progress.total = max(0, progress.total - resumed) if progress.total else None
    plan = SegmentPlan(config.segment_seconds, time_base, manifest.first_pts)
    sink = SegmentWriter(
        work,
        plan,
        open_segment=lambda path: open_writer(
            path,
            SEGMENT_CONTAINER[0],
            info,
            *size,
            settings,
            time_base,
            rotation=info.rotation,
            side_source=None,
            encoders=encoders,
        ),
        first_time_of=lambda frame: float(frame.pts * time_base),
    )
    try:
        run_stage(
            reader.frames(),
            built.fresh_stage(),
            sink=sink.write,
            batch=built.batch_size,
            on_frames=on_frames,
            piece_of=plan,
            fresh_stage=built.fresh_stage,
        )
        sink.close()
    except BaseException:
        sink.abort()
        raise
    started = time.perf_counter()
    joiner = SegmentJoiner(
        tmp, container_for(config.output), info, sink.files(), width=size[0], height=size[1],
        settings=settings, time_base=time_base, rotation=info.rotation, side_source=config.input,
    )  # fmt: skip
    joiner.report.encoders = encoders.describe() if encoders.parallel else {}  # the segments' encoders
    joiner.join()
    joined = time.perf_counter() - started
    joiner.report.seconds += sink.seconds
    report = SegmentsReport(
        count=len(manifest.segments),
        seconds=config.segment_seconds,
        resumed_from=done if done else None,
        frames_resumed=resumed,
        join_seconds=round(joined, 3),
    )
    return joiner, report


def _video_report(config, built, reader, writer, written, checks, started) -> EnhanceReport:
    """The report of a finished video run, from the parts that did the work (each keeps its own tally)."""
    return built.report(
        config,
        status="ok",
        input=reader.info.summary(),
        output={**written.info.summary(), "path": str(config.output)},
        frames_in=reader.frames_decoded,
        frames_out=written.frames,
        deinterlaced=reader.deinterlacer.describe if reader.deinterlacer else None,
        decode_errors=reader.decode_errors,
        damage=[dataclasses.asdict(d) for d in reader.damage],
        frames_lost=reader.frames_lost,
        duration_in=round(reader.span[1] - reader.span[0], 6),
        duration_out=round(written.duration, 6),
        checks=checks,
        encoding={
            "codec": writer.report.codec,
            "pix_fmt": writer.report.pix_fmt,
            "container": writer.report.container,
            "padded": writer.report.padded,
            "audio": writer.report.audio,
            "subtitles": writer.report.subtitles,
            "options": config.encoder_options,
            **({"parallel": writer.report.encoders} if writer.report.encoders else {}),
        },
        faces=built.stage.report() or None,
        busy_seconds=BusySeconds(
            decode=round(reader.seconds, 3),
            model=round(built.model_seconds, 3),
            face_detection=round(built.detect_seconds, 3),
            encode=round(writer.report.seconds, 3),
        ),
        seconds=round(time.perf_counter() - started, 3),
        warnings=_warnings(built, writer, reader),
    )


def mask_picture(frame, built: BuiltStage):
    """The altered-pixel mask of a finished frame as a grey RGB picture: white where the face model made
    the pixel (in proportion to its paste-back weight), mid-grey where the frame or background network
    did, black where a classical interpolation did."""
    import numpy as np

    main = built.models.get("frame") or built.models["background"]
    rest = np.float32(0.5 if main.learned else 0.0)
    h, w = frame.image.shape[:2]
    weight = frame.altered if frame.altered is not None else np.zeros((h, w), np.float32)
    level = np.rint(255 * (weight + rest * (1 - weight))).astype(np.uint8)
    return np.repeat(level[:, :, None], 3, axis=2)


def _sink(writer, mask_writer, built: BuiltStage):
    """The encode thread's work per frame: the picture, and its altered-pixel mask when asked for."""
    if mask_writer is None:
        return writer.write

    def write(frame) -> None:
        writer.write(frame)
        mask_writer.write(frame.with_image(mask_picture(frame, built)))

    return write


def _warnings(built: BuiltStage, writer, reader) -> list[str]:
    warnings = list(built.warnings)
    for u in {id(u): u for u in built.upscalers.values()}.values():  # face mode may share one upscaler
        warnings.extend(u.stats.warnings)
    warnings.extend(writer.report.warnings)
    if reader.info.interlaced and reader.deinterlacer is None:
        warnings.append(
            "the input is interlaced and --deinterlace is off: its fields were upscaled woven together, "
            "combing and all"
        )
    if reader.damage:  # (only a --salvage run gets here with damage)
        ranges = ", ".join(d.describe() for d in reader.damage[:8])
        more = f" and {len(reader.damage) - 8} more" if len(reader.damage) > 8 else ""
        warnings.append(
            f"salvaged: {reader.frames_decoded} frames kept, {reader.frames_lost} lost; damaged: {ranges}{more}"
        )
    warnings.extend(f"input damage: {p}" for p in reader.preflight.problems())
    return warnings
