"""Typed configuration for ``vsr enhance``.

One dataclass, built from CLI flags (or ``VSR_<OPTION>`` environment variables,
which click maps onto the same flags).  ``validate`` checks what can be checked
without touching files or devices, with messages that name the flag.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from vsr.errors import ConfigError

SCALES = (2, 4)
CODECS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "h264_nvenc", "hevc_nvenc")
MODES = ("auto", "face", "frame")
BACKGROUNDS = ("model", "lanczos", "bicubic")


@dataclass
class FaceOptions:
    """Face-mode settings (``--mode face``)."""

    detector: str = "auto"  # auto | yuface | haar | yunet:PATH
    background: str = "model"  # model (the general model) | lanczos | bicubic
    face_model: str | None = None  # registry name/path; None = the face model of the scale, if shipped
    min_face: int = 12  # smallest face (box side, input pixels) to enhance
    det_threshold: float = 0.5
    det_every: int = 1  # run the detector every N frames, track in between
    det_upsample: float = 0.0  # detect on the frame enlarged by this factor; 0 = auto (2x up to 1024 px)
    draw_boxes: bool = False


@dataclass
class EnhanceConfig:
    """Everything ``vsr enhance`` needs; the CLI builds it, ``pipelines.enhance.enhance`` runs it."""

    input: Path
    output: Path
    scale: int = 2
    model: str | None = None  # None = the registry default for the scale
    device: str = "auto"
    precision: str = "auto"
    batch_size: int | None = None  # None = auto
    tile: int = 0
    codec: str = "libx264"
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None  # None = keep the input's depth/chroma where the encoder allows
    audio: bool = True
    report: Path | None = None
    overwrite: bool = False
    quiet: bool = False
    verbose: int = 0
    ffmpeg_bin: str | None = None  # use an external ffmpeg binary as the encoder backend
    mode: str = "auto"  # face when a detector is installed, else frame
    face: FaceOptions = field(default_factory=FaceOptions)

    def validate(self) -> EnhanceConfig:
        """Raise ``ConfigError`` naming the flag for any value that cannot work."""
        if self.scale not in SCALES:
            raise ConfigError(f"--scale must be 2 or 4, got {self.scale}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"--batch-size must be a positive integer or 'auto', got {self.batch_size}")
        if self.tile < 0 or 0 < self.tile < 16:
            raise ConfigError(f"--tile must be 0 (off) or at least 16 pixels, got {self.tile}")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise ConfigError(f"--crf must be between 0 and 63, got {self.crf}")
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
        if not 0 < self.face.det_threshold < 1:
            raise ConfigError(f"--det-threshold must be between 0 and 1, got {self.face.det_threshold}")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}
