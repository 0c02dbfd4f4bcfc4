"""Synthetic sample clips: the quick start's input and the test suite's fixtures.

The pictures have real structure for an upscaler to work on (gradients, moving
edges, text-like stripes and a simple face), and the options cover what a
faithful pipeline must survive: several audio tracks, variable frame rate,
rotation, odd sizes, 10-bit, interlacing and every output container.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vsr.media.writer import container_for


@dataclass
class SampleSpec:
    """What to generate."""

    width: int = 320
    height: int = 240
    frames: int = 48
    fps: int = 24
    audio_tracks: int = 1
    vfr: bool = False  # alternate frame durations of 1 and 2 ticks of 1/fps
    rotation: int = 0  # display-matrix rotation in degrees
    pix_fmt: str = "yuv420p"
    codec: str | None = None  # default: libx264, VP9 for .webm
    # "tff" / "bff": interlaced, each frame woven from two fields half a frame apart (libx264 or
    # mpeg2video; MPEG-2 bottom field first only: PyAV cannot flag a frame top field first)
    interlaced: str = ""
    gop: int = 0  # frames between keyframes; 0 = the encoder's default


def interlaced_frame(index: int, width: int, height: int, first: str) -> np.ndarray:
    """Frame ``index`` of an interlaced sample: the ``first`` field ("tff": the top rows) at time
    ``index``, the other field half a frame later."""
    early, late = sample_frame(index, width, height), sample_frame(index + 0.5, width, height)
    woven = early.copy()
    later_rows = slice(1, None, 2) if first == "tff" else slice(0, None, 2)
    woven[later_rows] = late[later_rows]
    return woven


def sample_frame(index: float, width: int, height: int) -> np.ndarray:
    """One RGB uint8 picture of the sample clip (deterministic in ``index``; a fraction is a time between
    frames)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = index / 12.0
    img = np.empty((height, width, 3), np.float32)
    img[..., 0] = 90 + 70 * np.sin(x / (9 + 3 * np.sin(t)) + t)
    img[..., 1] = 80 + 60 * np.cos(y / 11 - t)
    img[..., 2] = 120 + 50 * np.sin((x + y) / 23 + 2 * t)
    # A moving bar of fine stripes: detail that interpolation blurs.
    bx = int((index * 4) % max(1, width - width // 5))
    stripes = 255 * ((x[:, : width // 5] // 2) % 2)
    img[height // 8 : height // 8 + height // 6, bx : bx + width // 5] = stripes[
        height // 8 : height // 8 + height // 6, :, None
    ]
    # A simple face: skin ellipse, eyes, mouth.
    cx, cy, r = width * 0.6 + 6 * np.sin(t), height * 0.55, min(width, height) * 0.22
    face = ((x - cx) / (0.8 * r)) ** 2 + ((y - cy) / r) ** 2 <= 1
    img[face] = (224, 172, 140)
    for ex in (cx - 0.3 * r, cx + 0.3 * r):
        eye = ((x - ex) / (0.14 * r)) ** 2 + ((y - (cy - 0.25 * r)) / (0.08 * r)) ** 2 <= 1
        img[eye] = (40, 30, 30)
    mouth = (np.abs(y - (cy + 0.45 * r)) < 0.05 * r) & (np.abs(x - cx) < 0.3 * r)
    img[mouth] = (150, 60, 60)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_sample(path: Path | str, spec: SampleSpec | None = None) -> Path:
    """Write a sample clip to ``path`` (container from the extension) and return the path."""
    import av

    spec = spec or SampleSpec()
    path = Path(path)
    fmt = container_for(path)
    codec = spec.codec or ("libvpx-vp9" if fmt == "webm" else "libx264")
    time_base = Fraction(1, spec.fps * 2 if spec.vfr else spec.fps)
    high = "10" in spec.pix_fmt or "12" in spec.pix_fmt
    with av.open(f"file:{path.resolve()}", mode="w", format=fmt) as out:
        video = out.add_stream(codec, rate=spec.fps)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, spec.pix_fmt
        video.codec_context.time_base = time_base
        video.time_base = time_base
        if "vpx" in codec:
            options = {"crf": "23", "b": "0", "deadline": "realtime", "cpu-used": "8"}
        elif codec == "mpeg2video":
            options = {"qscale": "3"}
        else:
            options = {"crf": "20", "preset": "veryfast"}
        if spec.interlaced:
            if spec.interlaced not in ("tff", "bff") or (codec, spec.interlaced) == ("mpeg2video", "tff"):
                raise ValueError(f"cannot write {spec.interlaced!r} interlaced {codec}")
            if codec == "libx264":
                options["x264-params"] = f"{spec.interlaced}=1"
            elif codec == "mpeg2video":
                options["flags"] = "+ildct+ilme"
            else:
                raise ValueError(f"cannot write interlaced {codec}; use libx264 or mpeg2video")
        video.codec_context.options = options
        if spec.gop:
            video.codec_context.gop_size = spec.gop
        if spec.rotation:
            video.set_display_rotation(spec.rotation)
        audio_codec = "libopus" if fmt == "webm" else "aac"
        audios = []
        for i in range(spec.audio_tracks):
            a = out.add_stream(audio_codec, rate=48000)
            a.codec_context.layout = "stereo"
            audios.append((a, 220.0 * (i + 2)))
        pts = 0
        for i in range(spec.frames):
            rgb = (
                interlaced_frame(i, spec.width, spec.height, spec.interlaced)
                if spec.interlaced
                else sample_frame(i, spec.width, spec.height)
            )
            frame = av.VideoFrame.from_ndarray(
                rgb.astype(np.uint16) * 257 if high else rgb, format="rgb48le" if high else "rgb24"
            )
            frame = frame.reformat(format=spec.pix_fmt)
            frame.pts, frame.time_base = pts, time_base
            for packet in video.encode(frame):
                out.mux(packet)
            pts += (1 + i % 2) if spec.vfr else 1
        for packet in video.encode(None):
            out.mux(packet)
        duration = float(pts * time_base)
        for a, freq in audios:
            write_tone(out, a, freq, duration)
    return path


def write_tone(out, stream, freq: float, seconds: float) -> None:
    """Encode ``seconds`` of a sine at ``freq`` Hz into the stereo audio ``stream`` of ``out``, and flush it."""
    import av

    cc = stream.codec_context
    rate, n = cc.sample_rate, cc.frame_size or 1024
    total = int(seconds * rate)
    fmt = cc.format.name
    for start in range(0, total, n):
        t = (np.arange(start, min(start + n, total)) / rate).astype(np.float32)
        wave = (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        planes = np.stack([wave, wave])
        if fmt == "s16":
            data = (planes.T.reshape(1, -1) * 32767).astype(np.int16)
        elif fmt == "flt":
            data = planes.T.reshape(1, -1)
        else:  # planar float (aac: fltp)
            data = planes
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
