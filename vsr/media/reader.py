"""Decode a video into RGB numpy frames that keep their source timestamps.

``VideoReader.frames()`` is a plain generator; the enhance pipeline runs it in
its own thread (PyAV releases the GIL while decoding and converting), so
decoding overlaps compute.  Isolated corrupt packets are tolerated and
counted; beyond a small tolerance, or when the file ends early, decoding stops
with a ``DecodeError`` rather than silently writing a shorter video.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vsr.errors import DecodeError
from vsr.media.probe import VideoInfo, describe, guess_matrix, main_video_stream, open_input


@dataclass(slots=True)
class DecodedFrame:
    """One decoded frame: RGB pixels (uint8, or uint16 for >8-bit sources) and its source timing."""

    image: np.ndarray
    pts: int
    time_base: Fraction
    index: int


class VideoReader:
    """Open a video once for its description, then decode it as a stream of ``DecodedFrame``s.

    Use as a context manager::

        with VideoReader(path) as reader:
            print(reader.info.width)
            for frame in reader.frames():
                ...
    """

    def __init__(self, path: Path | str, error_tolerance: float = 0.01) -> None:
        self.path = Path(path)
        self.error_tolerance = error_tolerance
        self.decode_errors = 0
        self.frames_decoded = 0
        self.first_time: float | None = None
        self.last_time: float | None = None
        self._container = None
        self.info: VideoInfo

    def __enter__(self) -> VideoReader:
        container = open_input(self.path)
        try:
            self.info = describe(container, self.path)
        finally:
            container.close()
        # Decoding gets a fresh demuxer: seeking back after the probe is not exact for every format.
        self._container = open_input(self.path)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    @property
    def time_base(self) -> Fraction:
        """The video stream's time base: every frame's ``pts`` counts in it."""
        tb = main_video_stream(self._container).time_base
        return Fraction(tb) if tb else Fraction(1, 90000)

    @property
    def high_bit_depth(self) -> bool:
        return self.info.bit_depth > 8

    @property
    def matrix(self) -> str:
        """The YUV<->RGB matrix used for this video (the tagged one, or the guess players make)."""
        return guess_matrix(self.info.colorspace, self.info.height)[0]

    def _tolerated(self) -> int:
        expected = self.info.frames or self.frames_decoded
        return max(2, int(expected * self.error_tolerance))

    def frames(self) -> Iterator[DecodedFrame]:
        """Yield every frame in presentation order with its source pts and time base."""
        import av

        if self._container is None:
            raise RuntimeError("VideoReader.frames() outside 'with VideoReader(...)'")
        stream = main_video_stream(self._container)
        stream.thread_type = "AUTO"
        time_base = self.time_base
        step = max(1, round(1 / (Fraction(self.info.avg_rate) * time_base))) if self.info.fps else 1
        rgb = "rgb48le" if self.high_bit_depth else "rgb24"
        reformatter = av.video.reformatter.VideoReformatter()
        src_range = "JPEG" if self.info.color_range == 2 else "MPEG"
        last_pts: int | None = None

        def convert(frame) -> DecodedFrame:
            nonlocal last_pts
            pts = frame.pts if frame.pts is not None else (last_pts + step if last_pts is not None else 0)
            last_pts = pts
            t = float(pts * time_base)
            self.first_time = t if self.first_time is None else min(self.first_time, t)
            self.last_time = t if self.last_time is None else max(self.last_time, t)
            rgb_frame = reformatter.reformat(
                frame,
                width=self.info.width,
                height=self.info.height,
                format=rgb,
                src_colorspace=self.matrix,
                src_color_range=src_range,
                dst_color_range="JPEG",
            )
            image = rgb_frame.to_ndarray()
            self.frames_decoded += 1
            return DecodedFrame(image=image, pts=pts, time_base=time_base, index=self.frames_decoded - 1)

        for packet in self._container.demux(stream):
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as exc:
                self._count_error(exc)
                continue
            for frame in decoded:
                yield convert(frame)
        self._check_complete()

    def _count_error(self, exc: Exception) -> None:
        self.decode_errors += 1
        if self.decode_errors > self._tolerated():
            raise DecodeError(
                f"{self.path}: {self.decode_errors} corrupt packets (last: {getattr(exc, 'strerror', None) or exc}); "
                "the file is damaged; repair or re-encode it"
            )

    def _check_complete(self) -> None:
        expected = self.info.frames
        if expected and expected - self.frames_decoded > self._tolerated():
            raise DecodeError(
                f"{self.path}: truncated: decoded {self.frames_decoded} of {expected} frames; "
                "the file is incomplete; re-copy or repair it"
            )
        if self.frames_decoded == 0:
            raise DecodeError(f"{self.path}: no decodable video frames; the file is corrupt or truncated")
        # Containers without a frame count (Matroska, WebM) still state a duration: a file cut short
        # decodes cleanly but ends early.
        duration, period = self.info.duration, 1 / self.info.fps if self.info.fps else 0.0
        if not expected and duration and self.last_time is not None:
            decoded = self.last_time - (self.first_time or 0.0) + period
            if decoded < duration - max(3 * period, 0.02 * duration):
                raise DecodeError(
                    f"{self.path}: truncated: frames end at {decoded:.2f}s of a stated {duration:.2f}s; "
                    "the file is incomplete; re-copy or repair it"
                )
