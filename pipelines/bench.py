"""``vsr bench``: where the time goes, stage by stage, measured side by side in one run.

Steps of ``run_bench(config)``:
 1. the input: the given video, or a synthetic clip (``vsr sample``'s pictures) written to a temp folder;
 2. decode-only: ``VideoReader`` (YUV -> RGB on the host, as ``vsr enhance`` decodes today), and
    ``decode_planes`` (the YUV planes a device-side path would upload);
 3. model-only: the ``Upscaler`` on frames decoded beforehand (batches as the pipeline uses them), the
    network alone on a device-resident batch (for the roofline), and the device frame path
    (``PlaneTransfer`` + ``yuv_to_rgb`` + network + ``rgb_to_yuv`` + download); with ``--compile`` (auto: on
    CUDA) the ``Upscaler`` and the device path again with the model compiled (``model_compiled``,
    ``device_path_compiled``, the compile's seconds in ``compile_seconds``), beside the eager ones; with
    ``--batch-sweep`` the ``Upscaler`` again at each batch size (``model_batchN``);
 4. face-detection-only (face mode): the detector, in the worker threads ``vsr enhance`` detects with,
    on each of the first ``DETECT_FRAMES`` frames at the detection resolution ``vsr enhance`` uses;
 5. encode-only: ``VideoWriter`` on upscaled frames made beforehand;
 6. end-to-end: ``vsr.pipelines.enhance.enhance`` into a temporary output (frame mode, and face mode too
    when ``--mode face``), with GPU memory and utilisation when on CUDA;
 7. the reference loop: batch 1, RGB float conversion on the host, a device sync per frame, on the same
    model and frames (the way the popular upscaler scripts run);
 8. for SRResNet models: FLOPs per frame (from the convolutions) against a matrix rate (measured with a
    matmul at the run's precision, or ``--peak-tflops``): the fraction of the roofline.
Frames decoded for steps 3-7 are held in memory: ``--frames`` bounds them.
"""

from __future__ import annotations

import os
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vsr.config import COMPILES
from vsr.errors import UsageError
from vsr.pipelines.bench_stages import Stage

MODES = ("frame", "face")
# Detection cost per frame is what the detect stage measures: a CPU detector on a large frame can take a
# second, so it sees at most this many frames (end-to-end still detects on every frame).
DETECT_FRAMES = 120


@dataclass
class BenchConfig:
    """What ``vsr bench`` measures; the CLI builds it."""

    input: Path | None = None
    synthetic: tuple[int, int, int] | None = None  # width, height, frames
    scale: int = 4
    model: str | None = None  # None: the registry default for the scale
    mode: str = "frame"
    device: str = "auto"
    precision: str = "auto"
    batch_size: int | None = None
    # Also time the model compiled (auto: on CUDA); end-to-end runs compile as vsr enhance would.
    compile: str = "auto"
    frames: int | None = None  # frames held for the stage measurements (None: all of the input's)
    peak_tflops: float | None = None
    random_srresnet: tuple[int, int] | None = None  # (blocks, channels): untrained, for throughput only
    detector: str = "auto"
    det_every: int = 2  # what vsr enhance uses (FaceOptions.det_every)
    codec: str | None = None
    preset: str | None = None
    encoders: int | None = None  # --encoders (None: auto, as vsr enhance)
    batch_sweep: tuple[int, ...] = ()  # --batch-sweep: model-only again at each of these batch sizes
    end_to_end: bool = True

    def validate(self) -> BenchConfig:
        if (self.input is None) == (self.synthetic is None):
            raise UsageError("give an INPUT video or --synthetic WxH[:FRAMES], not both")
        if self.scale not in (2, 4):
            raise UsageError(f"--scale must be 2 or 4, got {self.scale}")
        if self.mode not in MODES:
            raise UsageError(f"--mode must be frame or face, got {self.mode!r}")
        if self.frames is not None and self.frames < 1:
            raise UsageError(f"--frames must be at least 1, got {self.frames}")
        if self.peak_tflops is not None and self.peak_tflops <= 0:
            raise UsageError(f"--peak-tflops must be positive, got {self.peak_tflops}")
        if any(b < 1 for b in self.batch_sweep):
            raise UsageError(
                f"--batch-sweep sizes must be positive, got {','.join(map(str, self.batch_sweep))}"
            )
        if self.det_every < 1:
            raise UsageError(f"--det-every must be at least 1, got {self.det_every}")
        if self.compile not in COMPILES:
            raise UsageError(f"--compile must be one of {', '.join(COMPILES)}, got {self.compile!r}")
        if self.model is not None and self.random_srresnet is not None:
            raise UsageError("--model and --random-srresnet exclude each other")
        return self


def parse_synthetic(spec: str) -> tuple[int, int, int]:
    """``WxH[:FRAMES]`` -> (width, height, frames); 120 frames when not given."""
    size, _, count = spec.partition(":")
    try:
        w, h = (int(v) for v in size.lower().split("x"))
        frames = int(count) if count else 120
    except ValueError:
        raise UsageError(f"--synthetic {spec!r}: expected WxH[:FRAMES], e.g. 480x270:600") from None
    if w < 16 or h < 16 or frames < 1 or w % 2 or h % 2:
        raise UsageError(f"--synthetic {spec!r}: sizes must be even and at least 16, frames at least 1")
    return w, h, frames


def parse_batch_sweep(spec: str) -> tuple[int, ...]:
    """``"4,8,16"`` -> (4, 8, 16); empty -> ()."""
    try:
        return tuple(int(v) for v in spec.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--batch-sweep {spec!r}: expected batch sizes such as 4,8,16,32") from None


def parse_random_srresnet(spec: str) -> tuple[int, int]:
    """``BLOCKS,CHANNELS`` -> (blocks, channels)."""
    try:
        blocks, channels = (int(v) for v in spec.split(","))
    except ValueError:
        raise UsageError(f"--random-srresnet {spec!r}: expected BLOCKS,CHANNELS, e.g. 16,64") from None
    if blocks < 1 or channels < 1:
        raise UsageError(f"--random-srresnet {spec!r}: blocks and channels must be positive")
    return blocks, channels


@dataclass
class BenchResult:
    """Everything one ``vsr bench`` run measured.  ``to_dict`` is the one serialisation (``--json``)."""

    input: str
    width: int
    height: int
    frames: int
    scale: int
    model: str
    mode: str
    device: str
    precision: str
    batch_size: int
    machine: str
    torch_threads: int
    stages: dict[str, Stage] = field(default_factory=dict)
    flops_per_frame: float | None = None
    matrix_tflops: float | None = None
    matrix_source: str | None = None
    roofline_fraction: float | None = None
    compile_seconds: float | None = None  # the compiled stages' one-off compile (None: not compiled)
    gpu_max_memory_mb: float | None = None
    gpu_utilisation: float | None = None  # mean % over the end-to-end run (pynvml), when available
    faces_detected: int | None = None
    detector: str | None = None
    encoders: dict[str, int] = field(default_factory=dict)  # the encode stage's EncoderPlan
    warnings: list[str] = field(default_factory=list)

    def fps(self, name: str) -> float | None:
        stage = self.stages.get(name)
        return round(stage.fps, 3) if stage else None

    def ratios(self) -> dict[str, float | None]:
        """The ratios the targets are stated in (None where a stage did not run).

        The frame-mode ratios use the frame-mode end-to-end run (in face mode, its extra frame run).
        """

        def ratio(a: float | None, b: float | None) -> float | None:
            return round(a / b, 3) if a and b else None

        frame_e2e = self.fps("end_to_end_frame") if self.mode == "face" else self.fps("end_to_end")
        model, enc = self.fps("model"), self.fps("encode")
        bound = min(model, enc) if model and enc else None
        return {
            "end_to_end_over_model": ratio(frame_e2e, model),
            "end_to_end_over_min_model_encode": ratio(frame_e2e, bound),
            "end_to_end_over_reference": ratio(frame_e2e, self.fps("reference")),
            "face_over_frame_end_to_end": ratio(self.fps("end_to_end"), frame_e2e)
            if self.mode == "face"
            else None,
            "device_path_over_host_path": ratio(self.fps("end_to_end"), self.fps("end_to_end_host")),
            "compiled_over_eager_model": ratio(self.fps("model_compiled"), model),
            "compiled_over_eager_device_path": ratio(
                self.fps("device_path_compiled"), self.fps("device_path")
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stages"] = {
            name: {"frames": s.frames, "seconds": round(s.seconds, 4), "fps": round(s.fps, 3)}
            for name, s in self.stages.items()
        }
        d["ratios"] = self.ratios()
        return d

    def table(self) -> str:
        """A readable table of stage fps, then ratios and the roofline."""
        lines = [
            f"vsr bench: {self.input} {self.width}x{self.height} -> {self.width * self.scale}x{self.height * self.scale}, "
            f"{self.frames} frames, {self.model}, {self.mode} mode, {self.device} {self.precision}, batch {self.batch_size}",
            f"machine: {self.machine}, torch threads {self.torch_threads}",
            f"{'stage':<22}{'fps':>10}{'frames':>8}{'seconds':>10}",
        ]
        for name, s in self.stages.items():
            lines.append(f"{STAGE_LABELS.get(name, name):<22}{s.fps:>10.2f}{s.frames:>8}{s.seconds:>10.2f}")
        for key, value in self.ratios().items():
            if value is not None:
                lines.append(f"{key.replace('_', ' '):<32}{value:>8.3f}")
        if self.flops_per_frame:
            lines.append(
                f"{'GFLOP per frame':<32}{self.flops_per_frame / 1e9:>8.2f}   matrix rate {self.matrix_tflops:.2f} "
                f"TFLOP/s ({self.matrix_source}); roofline fraction {self.roofline_fraction:.3f}"
            )
        if self.compile_seconds is not None:
            lines.append(f"{'compile seconds':<32}{self.compile_seconds:>8.2f}")
        if self.gpu_max_memory_mb is not None:
            util = f", utilisation {self.gpu_utilisation:.0f}%" if self.gpu_utilisation is not None else ""
            lines.append(f"GPU peak memory {self.gpu_max_memory_mb:.0f} MB{util}")
        if self.faces_detected is not None:
            lines.append(f"faces detected: {self.faces_detected} ({self.detector})")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


STAGE_LABELS = {
    "decode": "decode (to RGB)",
    "decode_yuv": "decode (YUV planes)",
    "model": "model (Upscaler)",
    "model_compiled": "model (compiled)",
    "model_device": "model (on device)",
    "device_path": "device YUV path",
    "device_path_compiled": "device YUV (compiled)",
    "detect": "face detection",
    "encode": "encode",
    "encode_single": "encode (one encoder)",
    "end_to_end": "end-to-end",
    "end_to_end_frame": "end-to-end (frame)",
    "end_to_end_host": "end-to-end (host RGB path)",
    "reference": "reference loop",
}


def _encoder_plan(config: BenchConfig, info, device):
    """The encoders ``vsr enhance`` would run for this input on this device (``--encoders``)."""
    from vsr.media.encoders import frame_bytes, plan_encoders
    from vsr.media.writer import default_codec

    return plan_encoders(
        config.encoders,
        codec=config.codec or default_codec(Path("out.mp4")),
        fps=info.fps,
        frame_bytes=frame_bytes(info.width * config.scale, info.height * config.scale, info.bit_depth),
        fast_source=device.type == "cuda",
    )


# -- the benchmark -----------------------------------------------------------------------------------------------------
def run_bench(config: BenchConfig) -> BenchResult:
    """Measure every stage of ``config``'s pipeline in one run (see the module docstring for the steps)."""
    import torch

    from vsr.media.probe import probe
    from vsr.models.registry import DEFAULT_MODEL, load_model_from
    from vsr.pipelines.bench_stages import (
        UtilisationSampler,
        build_random_srresnet,
        decode_frames,
        run_enhance,
        time_decode,
        time_detect,
        time_encode,
        time_model,
        time_model_device,
        time_reference,
    )
    from vsr.pipelines.device import resolve_compile, resolve_device, resolve_precision
    from vsr.pipelines.upscale import Upscaler

    config.validate()
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    with tempfile.TemporaryDirectory(prefix="vsr-bench-") as tmpdir:
        tmp = Path(tmpdir)
        # 1. input
        if config.synthetic is not None:
            from vsr.media.sample import SampleSpec, write_sample

            w, h, n = config.synthetic
            path = write_sample(
                tmp / "synthetic.mp4", SampleSpec(width=w, height=h, frames=n, audio_tracks=0)
            )
            label = f"synthetic {w}x{h}:{n}"
        else:
            path, label = Path(config.input), str(config.input)
        info = probe(path)
        if config.random_srresnet is not None:
            model = build_random_srresnet(*config.random_srresnet, config.scale, tmp)
            model_label = "random-srresnet-{}x{} (untrained, throughput only)".format(*config.random_srresnet)
        else:
            model = config.model or DEFAULT_MODEL[config.scale]
            model_label = model
        loaded = load_model_from(model, config.scale)
        upscaler = Upscaler(loaded.module, config.scale, device, precision, config.batch_size)
        compiled = None  # the same model and batch, compiled: the compiled stages beside the eager ones
        if resolve_compile(config.compile, device, loaded.learned):
            compiled = Upscaler(
                loaded.module, config.scale, device, precision, config.batch_size, compile=True
            )
        result = BenchResult(
            input=label,
            width=info.width,
            height=info.height,
            frames=0,
            scale=config.scale,
            model=model_label,
            mode=config.mode,
            device=str(device),
            precision=precision if loaded.params else "fp32",
            batch_size=upscaler.batch_size,
            machine=_machine(device),
            torch_threads=torch.get_num_threads(),
        )
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        # 2. decode
        result.stages["decode"], result.stages["decode_yuv"] = time_decode(path, config.frames)
        frames = decode_frames(path, config.frames)
        result.frames = len(frames)
        # 3. model (the compiled one's warm-up batch is its compile)
        result.stages["model"] = time_model(upscaler, frames)
        if compiled is not None:
            result.stages["model_compiled"] = time_model(compiled, frames)
        for b in config.batch_sweep:  # the data to choose the automatic batch size by
            try:
                sweep = Upscaler(loaded.module, config.scale, device, precision, b)
                result.stages[f"model_batch{b}"] = time_model(sweep, frames)
            except torch.OutOfMemoryError:
                result.warnings.append(f"--batch-sweep {b}: out of memory")
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if loaded.params:
            batches = max(1, len(frames) // upscaler.batch_size)
            result.stages["model_device"] = time_model_device(upscaler, frames, batches)
        _device_path(result, upscaler, compiled, path, config, info)
        if compiled is not None:
            result.compile_seconds = round(compiled.stats.compile_seconds, 3)
            result.warnings += compiled.stats.warnings
        # 4. detection
        if config.mode == "face":
            from vsr.pipelines.face.detect import DetectAhead, make_detector

            detection = DetectAhead(make_detector(config.detector), lambda: make_detector(config.detector))
            result.detector = f"{detection.detector.describe()}, {detection.workers} thread(s)"
            result.stages["detect"], result.faces_detected = time_detect(detection, frames[:DETECT_FRAMES])
        # 5. encode: with the encoders vsr enhance would run here, and with one beside it when that is several
        plan = _encoder_plan(config, info, device)
        result.encoders = plan.describe()
        result.stages["encode"] = time_encode(path, frames, config.scale, config, tmp, plan)
        if plan.parallel:
            result.stages["encode_single"] = time_encode(path, frames, config.scale, config, tmp)
        # 6. end-to-end
        if config.end_to_end:
            with UtilisationSampler(device) as sampler:
                report = run_enhance(path, config, model, config.mode, tmp)
            result.stages["end_to_end"] = Stage(report["frames_out"], report["seconds"])
            result.gpu_utilisation = sampler.mean
            result.warnings += report.get("warnings", [])
            if config.mode == "face":
                frame_report = run_enhance(path, config, model, "frame", tmp)
                result.stages["end_to_end_frame"] = Stage(frame_report["frames_out"], frame_report["seconds"])
            elif report["frame_path"] == "yuv":  # the device frame path ran: time the host path beside it
                host = run_enhance(path, config, model, "frame", tmp, frame_path="rgb")
                result.stages["end_to_end_host"] = Stage(host["frames_out"], host["seconds"])
        # 7. reference loop
        result.stages["reference"] = time_reference(loaded.module, frames, device, result.precision)
        if device.type == "cuda":
            result.gpu_max_memory_mb = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        # 8. roofline
        if loaded.params and "model_device" in result.stages:
            _roofline(result, loaded.module, device, precision, config.peak_tflops)
    return result


def _device_path(result: BenchResult, upscaler, compiled, path: Path, config: BenchConfig, info) -> None:
    """Step 3c: the YUV frame path, when the input's pixel format is planar YUV (and compiled, when
    ``compiled`` is an ``Upscaler`` with ``compile=True``)."""
    from vsr.errors import UnsupportedError
    from vsr.media.planes import decode_planes
    from vsr.media.probe import guess_matrix
    from vsr.pipelines.bench_stages import time_device_path
    from vsr.pipelines.yuv import YuvFormat

    try:
        fmt = YuvFormat.for_pix_fmt(
            info.pix_fmt, guess_matrix(info.colorspace, info.height)[0], info.color_range == 2
        )
    except UnsupportedError as exc:
        result.warnings.append(f"device YUV path not measured: {exc}")
        return
    planes = list(decode_planes(path, config.frames))
    result.stages["device_path"] = time_device_path(upscaler, planes, fmt)
    if compiled is not None:
        result.stages["device_path_compiled"] = time_device_path(compiled, planes, fmt)


def _roofline(result: BenchResult, module, device, precision: str, peak: float | None) -> None:
    from vsr.pipelines.roofline import conv_flops, matrix_tflops

    result.flops_per_frame = conv_flops(module, result.height, result.width)
    if peak is not None:
        result.matrix_tflops, result.matrix_source = peak, "--peak-tflops"
    else:
        result.matrix_tflops = round(matrix_tflops(device, precision), 3)
        n = 8192 if device.type == "cuda" else 1024
        result.matrix_source = f"measured: {n}x{n} {precision} matmul"
    achieved = result.flops_per_frame * result.stages["model_device"].fps / 1e12
    result.roofline_fraction = round(achieved / result.matrix_tflops, 4)


def _machine(device) -> str:
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, {os.cpu_count()} CPU cores"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores"
