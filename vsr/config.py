"""Typed configuration for ``vsr enhance``.

One dataclass, built from CLI flags (or ``VSR_<OPTION>`` environment variables,
which click maps onto the same flags).  ``validate`` checks what can be checked
without touching files or devices, with messages that name the flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vsr.errors import ConfigError, OutputError
from vsr.media.limits import InputLimits

SCALES = (2, 4)
CODECS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "h264_nvenc", "hevc_nvenc")
MODES = ("auto", "face", "frame")
BACKGROUNDS = ("model", "lanczos", "bicubic")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
LAYOUTS = ("side", "split")
FRAME_PATHS = ("auto", "rgb", "yuv")
COMPILES = ("auto", "on", "off")
DEINTERLACE = ("auto", "on", "off")


_core_limit: int | None = None


def limit_cores(cores: int | None) -> None:
    """Cap ``usable_cores()`` for this process at ``cores`` (None: no cap).  For a process that is granted
    a number of cores but not which ones: a Ray actor reserves CPUs, and Ray pins none."""
    global _core_limit
    _core_limit = cores


def core_limit() -> int | None:
    """The cap ``limit_cores`` set, if any (encoders, which otherwise count the cores themselves, need it)."""
    return _core_limit


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity: taskset, a container's cpuset, a batch worker
    pinned to its share; at most ``limit_cores``), not every core of the machine."""
    import os

    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # (not on Linux)
        cores = os.cpu_count() or 1
    return min(cores, _core_limit) if _core_limit else cores


@dataclass
class FaceOptions:
    """Face-mode settings (``--mode face``)."""

    detector: str = "auto"  # auto | yuface | haar | yunet:PATH
    background: str = "model"  # model (the general model) | lanczos | bicubic
    face_model: str | None = None  # registry name/path; None = the face model of the scale, if shipped
    min_face: int = 12  # smallest face (box side, input pixels) to enhance
    det_threshold: float = 0.5
    # Detect every N frames, track in between.  2 by measurement (benchmarks/det_every.py, 13 shared clips):
    # 95.5 % of every-frame faces found at IoU 0.977, for half the detection cost.
    det_every: int = 2
    det_upsample: float = 0.0  # detect on the frame enlarged by this factor; 0 = auto (2x up to 1024 px)
    draw_boxes: bool = False


@dataclass
class EnhanceConfig:
    """Everything ``vsr enhance`` needs; the CLI builds it, ``pipelines.enhance.enhance`` runs it.

    The defaults are the CLI's: a library caller gets what ``vsr enhance IN OUT`` does.
    """

    input: Path
    output: Path
    scale: int = 2
    model: str | None = None  # None = the registry default for the scale
    device: str = "auto"
    precision: str = "auto"
    frame_path: str = "auto"  # --frame-path: yuv = planes converted on the device; auto = yuv on CUDA
    batch_size: int | None = None  # None = auto
    tile: int = 0
    compile: str = "auto"  # --compile: torch.compile the model; auto = on CUDA, for models with weights
    codec: str | None = None  # None = libx264, or VP9 for .webm
    crf: int | None = None  # None = the codec's default; the range is checked per codec
    preset: str | None = None
    pix_fmt: str | None = None  # None = keep the input's depth/chroma where the encoder allows
    encoder_options: dict[str, str] = field(default_factory=dict)  # --encoder-opt KEY=VALUE
    encoders: int | None = None  # --encoders: chunk encoders at once; None = auto (several behind a GPU)
    audio: bool = True
    start: float = 0.0  # --start: seconds into the input (a piece, for trying settings)
    duration: float | None = None  # --duration: seconds from --start; None = to the end
    report: Path | None = None
    altered_mask: Path | None = None  # --altered-mask: a grey video of where networks made the pixels
    overwrite: bool = False
    quiet: bool = False
    verbose: int = 0
    ffmpeg_bin: str | None = None  # use an external ffmpeg binary as the encoder backend
    mode: str = "auto"  # face when a detector is installed, else frame
    face: FaceOptions = field(default_factory=FaceOptions)
    segment_seconds: float = (
        60.0  # --segment-seconds: commit a longer input in pieces this long (0 = one pass)
    )
    resume: bool = False  # --resume: continue an interrupted segmented run of the same command
    salvage: bool = False  # --salvage: enhance the frames of a damaged input that decode, list the rest
    deinterlace: str = "auto"  # --deinterlace: bwdif before upscaling; auto = when the input is interlaced
    limits: InputLimits = field(default_factory=InputLimits)  # --max-pixels, --max-frames, ...

    def validate(self) -> EnhanceConfig:
        """Raise ``ConfigError`` naming the flag for any value that cannot work."""
        if self.scale not in SCALES:
            raise ConfigError(f"--scale must be 2 or 4, got {self.scale}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"--batch-size must be a positive integer or 'auto', got {self.batch_size}")
        if self.tile < 0 or 0 < self.tile < 16:
            raise ConfigError(f"--tile must be 0 (off) or at least 16 pixels, got {self.tile}")
        if self.start < 0:
            raise ConfigError(f"--start must be 0 or more seconds, got {self.start}")
        if self.duration is not None and self.duration <= 0:
            raise ConfigError(f"--duration must be more than 0 seconds, got {self.duration}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.frame_path not in FRAME_PATHS:
            raise ConfigError(
                f"--frame-path must be one of {', '.join(FRAME_PATHS)}, got {self.frame_path!r}"
            )
        if self.encoders is not None and not 1 <= self.encoders <= 8:
            raise ConfigError(f"--encoders must be between 1 and 8 or 'auto', got {self.encoders}")
        if self.encoders and self.encoders > 1 and self.ffmpeg_bin:
            raise ConfigError(
                "--encoders runs the built-in encoders; it cannot be combined with --ffmpeg-bin"
            )
        if self.compile not in COMPILES:
            raise ConfigError(f"--compile must be one of {', '.join(COMPILES)}, got {self.compile!r}")
        if self.deinterlace not in DEINTERLACE:
            raise ConfigError(
                f"--deinterlace must be one of {', '.join(DEINTERLACE)}, got {self.deinterlace!r}"
            )
        if self.mode not in MODES:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.face.background not in BACKGROUNDS:
            raise ConfigError(
                f"--background must be one of {', '.join(BACKGROUNDS)}, got {self.face.background!r}"
            )
        if self.face.det_every < 1:
            raise ConfigError(f"--det-every must be at least 1, got {self.face.det_every}")
        if self.face.det_upsample < 0:
            raise ConfigError(
                f"--det-upsample must be 0 (auto) or a factor > 0, got {self.face.det_upsample}"
            )
        if self.segment_seconds < 0 or 0 < self.segment_seconds < 0.5:
            raise ConfigError(
                f"--segment-seconds must be 0 (one pass) or at least 0.5, got {self.segment_seconds}"
            )
        if self.resume:
            clash = [
                flag
                for flag, used in (
                    ("--start", self.start > 0), ("--duration", self.duration is not None),
                    ("--altered-mask", self.altered_mask is not None), ("--ffmpeg-bin", bool(self.ffmpeg_bin)),
                    ("--segment-seconds 0", not self.segment_seconds),
                )
                if used
            ]  # fmt: skip
            if clash:
                raise ConfigError(
                    f"--resume continues whole-input segmented runs; it cannot be combined with {clash[0]}"
                )
        if not 0 < self.face.det_threshold < 1:
            raise ConfigError(f"--det-threshold must be between 0 and 1, got {self.face.det_threshold}")
        self.limits.validate()
        return self


@dataclass
class CompareConfig:
    """Options of ``vsr compare``."""

    input: Path
    output: Path
    result: Path
    layout: str = "side"
    snapshots: int = 0
    snapshot_dir: Path | None = None
    max_width: int = 3840  # the composite is scaled down to at most this width (0 = never)
    crf: int | None = None
    overwrite: bool = False

    def validate(self) -> CompareConfig:
        """Raise ``UsageError`` naming the flag for values that cannot work."""
        if self.layout not in LAYOUTS:
            raise ConfigError(f"--layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.snapshots < 0:
            raise ConfigError(f"--snapshots must be 0 or more, got {self.snapshots}")
        if self.max_width < 0 or 0 < self.max_width < 64:
            raise ConfigError(f"--max-width must be 0 (no limit) or at least 64, got {self.max_width}")
        paths = {p.resolve() for p in (self.input, self.output)}
        if self.result.resolve() in paths:
            raise OutputError("RESULT must differ from INPUT and OUTPUT")
        if self.result.exists() and not self.overwrite:
            raise OutputError(f"{self.result} exists; pass --overwrite to replace it")
        return self
