"""Helpers that read written files back for assertions (timestamps, audio packets, decoded frames)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def video_pts_seconds(path: Path) -> list[float]:
    """Presentation times (s) of every video packet, sorted."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return sorted(float(p.pts * p.time_base) for p in c.demux(s) if p.pts is not None)


def audio_payloads(path: Path) -> list[list[bytes]]:
    """Raw packet bytes of every audio stream (equal lists mean the audio was copied, not re-encoded)."""
    with av.open(str(path)) as c:
        streams = list(c.streams.audio)
        out: dict[int, list[bytes]] = {s.index: [] for s in streams}
        if streams:
            for p in c.demux(*streams):
                if p.size:  # not the flush packet (a real packet may lack a dts)
                    out[p.stream.index].append(bytes(p))
        return [out[s.index] for s in streams]


def decoded_frames(path: Path, fmt: str = "rgb24") -> list[np.ndarray]:
    """All frames as RGB arrays, using the project's reader (same colour matrix handling)."""
    from vsr.media.reader import VideoReader

    with VideoReader(path) as r:
        return [f.image for f in r.frames()]


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))
