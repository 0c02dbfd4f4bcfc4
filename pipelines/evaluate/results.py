"""What an evaluation run reports: per-item scores, per-method means and the JSON form ``vsr eval`` prints.

PSNR of identical images is ``math.inf`` in Python and ``null`` in JSON: ``to_dict``
output never holds NaN or Infinity, so ``json.dumps(..., allow_nan=False)`` works.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BASELINES = ("bicubic", "lanczos")
SCORE_KEYS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "sharpness")


def _finite(value: float | None) -> float | None:
    """JSON-safe float: inf/nan -> None (``null``)."""
    return value if value is not None and math.isfinite(value) else None


@dataclass
class Scores:
    """PSNR (dB) and SSIM on Y and on RGB, and Y sharpness (``metrics.sharpness``), for one item or a mean."""

    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    ssim_rgb: float
    sharpness: float

    def to_dict(self) -> dict[str, float | None]:
        return {k: _finite(v) for k, v in vars(self).items()}

    @staticmethod
    def mean(items: list[Scores]) -> Scores:
        """The mean of each score (inf stays inf: identical images)."""
        return Scores(*(float(np.mean([getattr(s, k) for s in items])) for k in SCORE_KEYS))


@dataclass
class MethodResult:
    """One method's per-item scores, inference time and (video) per-pair flicker."""

    name: str
    items: list[Scores] = field(default_factory=list)
    seconds: float = 0.0
    flicker_pairs: list[float] = field(default_factory=list)

    @property
    def mean(self) -> Scores:
        return Scores.mean(self.items)

    @property
    def flicker(self) -> float | None:
        return float(np.mean(self.flicker_pairs)) if self.flicker_pairs else None

    def to_dict(self, video: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, **self.mean.to_dict(), "seconds": round(self.seconds, 3)}
        if video:
            out["flicker"] = self.flicker
        return out

    def per_item(self, video: bool = False) -> dict[str, list[float | None]]:
        out = {k: [_finite(getattr(s, k)) for s in self.items] for k in SCORE_KEYS}
        if video:
            out["flicker"] = [None, *self.flicker_pairs] if self.items else []
        return out


@dataclass
class EvalReport:
    """The result of one protocol run; ``to_dict()`` is what ``vsr eval --json`` prints."""

    kind: str  # images | faces | video
    source: str
    model: str
    scale: int
    device: str
    precision: str
    protocol: dict[str, Any]
    names: list[str]
    methods: dict[str, MethodResult]  # "model", "bicubic", "lanczos"
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict[str, Any]:
        video = self.kind == "video"
        model = self.methods["model"]
        out: dict[str, Any] = {
            "kind": self.kind,
            "source": self.source,
            "model": self.model,
            "scale": self.scale,
            "n": self.n,
            **model.mean.to_dict(),
        }
        if video:
            out["flicker"] = model.flicker
        out["baselines"] = {b: self.methods[b].to_dict(video) for b in BASELINES}
        out.update(
            skipped=len(self.skipped),
            skipped_files=list(self.skipped),
            device=self.device,
            precision=self.precision,
            seconds=round(self.seconds, 3),
            model_seconds=round(model.seconds, 3),
            protocol=self.protocol,
            **self.extra,
        )
        key = "per_frame" if video else "per_image"
        out[key] = {"names": list(self.names), **{m: r.per_item(video) for m, r in self.methods.items()}}
        return out
