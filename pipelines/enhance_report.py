"""The report of one ``vsr enhance`` run: what went in, what came out, and how, for a reviewer to check.

Surveillance and archive users must be able to show what was changed.  The report says which files
(sha256 of input and output), which software (vsr, torch, PyAV, FFmpeg versions), which options
(every resolved one), which models (sha256, licence, and how each ran), where the time went (busy
seconds per stage), what the faithfulness checks found, and in face mode where the faces were.
``EnhanceReport`` is serialised in one place (``to_dict`` / ``write``); a failed run writes the same
shape with ``status: failed``.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsr.errors import OutputError, VsrError, one_line

NON_COMMERCIAL = "non-commercial"


@dataclass
class ModelUse:
    """One model as it ran: which weights, under which licence, with what batch, tile and precision, and
    whether compiled (``--compile``: some batches ran through ``torch.compile``; tiles and odd shapes never do)."""

    role: str  # "frame" (whole frames), "background" or "face" (face mode)
    name: str
    sha256: str | None
    licence: str | None
    params: int
    precision: str
    batch_size: int
    tile: int
    compiled: bool = False
    compile_seconds: float = 0.0  # spent compiling (0 when not compiled): model busy time includes it
    generative_face_restorer: bool = False  # invents detail (GFPGAN-style): matters for identification

    @property
    def non_commercial(self) -> bool:
        return NON_COMMERCIAL in (self.licence or "")


@dataclass
class BusySeconds:
    """Seconds each stage spent working (they overlap in time: the largest is the bottleneck)."""

    decode: float = 0.0
    model: float = 0.0
    face_detection: float = 0.0
    encode: float = 0.0

    def bottleneck(self) -> str:
        return max(dataclasses.asdict(self).items(), key=lambda kv: kv[1])[0]


@dataclass
class SegmentsReport:
    """How a segmented run went: segments in the output, where this run began, time spent joining."""

    count: int
    seconds: float  # the segment length (--segment-seconds)
    resumed_from: int | None = (
        None  # the first segment this run encoded after --resume (None: from the start)
    )
    frames_resumed: int = 0  # frames taken from the interrupted run's segments
    join_seconds: float = 0.0


@dataclass
class EnhanceReport:
    """Everything a run did; ``vsr enhance --report FILE.json`` writes ``to_dict()``."""

    status: str
    input: dict[str, Any]
    output: dict[str, Any]
    options: dict[str, Any]
    versions: dict[str, str]
    mode: str = ""
    scale: int = 0
    device: str = ""
    cores: int = 0  # CPU cores its threads were sized to (affinity, or a Ray actor's reservation)
    frame_path: str = "rgb"  # rgb: converted on the host; yuv: planes converted on the device (--frame-path)
    models: list[ModelUse] = field(default_factory=list)
    frames_in: int = 0
    frames_out: int = 0
    deinterlaced: str | None = None  # how an interlaced input was deinterlaced (--deinterlace), if it was
    decode_errors: int = 0  # packets the decoder refused (a --salvage run; otherwise the run stops)
    damage: list[dict[str, Any]] = field(
        default_factory=list
    )  # --salvage: ranges lost (start, end, packets, what)
    frames_lost: int = 0
    duration_in: float = 0.0
    duration_out: float = 0.0
    checks: dict[str, bool] = field(default_factory=dict)
    encoding: dict[str, Any] = field(default_factory=dict)
    faces: dict[str, Any] | None = None
    altered_mask: str | None = None
    busy_seconds: BusySeconds = field(default_factory=BusySeconds)
    segments: SegmentsReport | None = None  # a long input committed in segments (--segment-seconds)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] | None = None  # one row per image of a folder run
    error: str | None = None
    exit_code: int = 0

    @property
    def fps(self) -> float | None:
        return round(self.frames_out / self.seconds, 3) if self.seconds > 0 else None

    @property
    def non_commercial(self) -> bool:
        """True when any weights used are licensed for non-commercial use only."""
        return any(m.non_commercial for m in self.models)

    @property
    def generative(self) -> bool:
        return any(m.generative_face_restorer for m in self.models)

    def model_summary(self) -> str:
        """``face mode: general-x4 (background) + face-x4-psnr (face)`` for the summary line."""
        used = " + ".join(f"{m.name} ({m.role})" if m.role != "frame" else m.name for m in self.models)
        return f"{self.mode} mode: {used}" if used else f"{self.mode} mode"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["fps"] = self.fps
        d["non_commercial_weights"] = self.non_commercial
        d["bottleneck"] = self.busy_seconds.bottleneck() if self.status == "ok" else None
        return d

    def write(self, path: Path) -> None:
        """Write the JSON report atomically."""
        from vsr.atomic import write_atomic

        try:
            write_atomic(Path(path), json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        except OSError as exc:
            raise OutputError(f"cannot write the report {path}: {exc.strerror}") from None


def software_versions() -> dict[str, str]:
    """Versions of everything that touched the pixels."""
    import numpy
    import torch

    from vsr import __version__
    from vsr.media.probe import ffmpeg_versions

    return {
        "vsr": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        **ffmpeg_versions(),
    }


def resolved_options(config: Any) -> dict[str, Any]:
    """Every option of a config dataclass, as JSON-safe values (paths as strings)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))


def failure_report(config: Any, exc: BaseException) -> None:
    """With ``--report``, record a failed run too (batch jobs read it)."""
    from vsr.errors import PartialFailure, exit_code_of_interrupt

    if not config.report or isinstance(exc, PartialFailure):
        return  # a partly failed run has written its own report, with a row per item

    EnhanceReport(
        status="failed",
        input={"path": str(config.input)},
        output={"path": str(config.output)},
        options=resolved_options(config),
        versions={},
        error=one_line(exc),
        exit_code=exc.exit_code
        if isinstance(exc, VsrError)
        else exit_code_of_interrupt(exc)
        if isinstance(exc, KeyboardInterrupt)
        else 1,
    ).write(config.report)
