"""Decode a video into RGB numpy frames that keep their source timestamps.

``VideoReader.frames()`` is a plain generator; the enhance pipeline runs it in
its own thread (PyAV releases the GIL while decoding and converting), so
decoding overlaps compute.  Isolated corrupt packets are tolerated and
counted; beyond a small tolerance, or when the file ends early, decoding stops
with a ``DecodeError`` rather than silently writing a shorter video.

The reader is also the one tally of what came in: frames decoded, the first and
last timestamps, corrupt packets and its busy time.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vsr.errors import ConfigError, DecodeError
from vsr.media.probe import VideoInfo, describe, guess_matrix, main_video_stream, open_input


@dataclass(slots=True)
class Frame:
    """One frame on its way from reader to writer: RGB pixels (uint8, or uint16 above 8 bits), its source
    pts (in the stream's time base, which reader and writer both hold), and its index in the stream.

    ``altered`` is set by a stage that replaced pixels with a network's output in only part of the
    frame (face mode): an HxW float32 weight in [0, 1] at the output's size, 1 where the pixel is the
    face model's.  Stages keep a frame whole and return ``with_image`` copies, so timing never has to be
    paired again.
    """

    image: np.ndarray
    pts: int
    index: int
    altered: np.ndarray | None = None

    def with_image(self, image: np.ndarray, altered: np.ndarray | None = None) -> Frame:
        return dataclasses.replace(self, image=image, altered=altered)


@dataclass(frozen=True)
class Clip:
    """A piece of the input to enhance (``--start``/``--duration``), in seconds from the first frame."""

    start: float = 0.0
    duration: float | None = None

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.duration is None


class VideoReader:
    """Open a video once for its description, then decode it as a stream of ``Frame``s.

    Use as a context manager::

        with VideoReader(path) as reader:
            print(reader.info.width)
            for frame in reader.frames():
                ...
    """

    def __init__(self, path: Path | str, error_tolerance: float = 0.01, clip: Clip | None = None) -> None:
        self.path = Path(path)
        self.error_tolerance = error_tolerance
        self.clip = clip or Clip()
        self.decode_errors = 0
        self.frames_decoded = 0  # frames yielded (inside the clip)
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.seconds = 0.0  # busy time demuxing, decoding and converting
        self._container = None
        self._after_pts: int | None = None  # continue after this frame (--resume)
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
    def span(self) -> tuple[float, float]:
        """(first frame time, last frame's end) of what was yielded, in seconds; the end adds one period."""
        period = 1 / self.info.fps if self.info.fps else 0.0
        return (self.first_time or 0.0, (self.last_time or 0.0) + period)

    @property
    def matrix(self) -> str:
        """The YUV<->RGB matrix used for this video (the tagged one, or the guess players make)."""
        return guess_matrix(self.info.colorspace, self.info.height)[0]

    def continue_from(self, after_pts: int, frames: int, first_time: float, last_time: float) -> None:
        """Continue a stream an earlier run began (``--resume``): decoding seeks to the keyframe at or
        before ``after_pts`` (the last frame done) and yields the frames after it; the ``frames`` up to
        it (from ``first_time`` to ``last_time``) count as decoded already."""
        self._after_pts = after_pts
        self.frames_decoded, self.first_time, self.last_time = frames, first_time, last_time

    def _tolerated(self) -> int:
        expected = self.info.frames or self.frames_decoded
        return max(2, int(expected * self.error_tolerance))

    def frames(self) -> Iterator[Frame]:
        """Yield every frame (of the clip) in presentation order with its source pts."""
        import av

        if self._container is None:
            raise RuntimeError("VideoReader.frames() outside 'with VideoReader(...)'")
        stream = main_video_stream(self._container)
        stream.thread_type = "AUTO"
        time_base = self.time_base
        step = max(1, round(1 / (Fraction(self.info.avg_rate) * time_base))) if self.info.fps else 1
        rgb = "rgb48le" if self.info.bit_depth > 8 else "rgb24"
        reformatter = av.video.reformatter.VideoReformatter()
        src_range = "JPEG" if self.info.color_range == 2 else "MPEG"
        last_pts: int | None = None
        origin = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
        start = origin + self.clip.start
        stop = start + self.clip.duration if self.clip.duration is not None else None
        if self.clip.start > 0:
            stream = self._seek(stream, start)
        elif self._after_pts is not None:
            stream = self._seek(stream, float(self._after_pts * time_base))
        landed = self._after_pts is None  # a resume must land at or before the last frame done

        def convert(frame) -> Frame:
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
            return Frame(image=image, pts=pts, index=self.frames_decoded - 1)

        began = time.perf_counter()
        for packet in self._container.demux(stream):
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as exc:
                self._count_error(exc)
                continue
            for frame in decoded:
                if not landed and frame.pts is not None:
                    landed = frame.pts <= self._after_pts
                    if not landed:  # frames would be lost: an inexact seek in this container
                        raise DecodeError(
                            f"{self.path}: cannot seek back exactly to resume at "
                            f"{float(self._after_pts * time_base):.3f}s; run without --resume to start over"
                        )
                if self._after_pts is not None and frame.pts is not None and frame.pts <= self._after_pts:
                    continue  # decoded from the keyframe before the resume point: done by the earlier run
                if frame.pts is not None and not self.clip.whole:
                    t = float(frame.pts * time_base)
                    if t < start - 1e-6:
                        continue
                    if stop is not None and t >= stop - 1e-6:
                        self.seconds += time.perf_counter() - began
                        self._check_complete()
                        return
                out = convert(frame)
                self.seconds += time.perf_counter() - began
                yield out
                began = time.perf_counter()
        self.seconds += time.perf_counter() - began
        self._check_complete()

    def _seek(self, stream, seconds: float):
        """Seek to the keyframe at or before ``seconds`` and return the stream to demux; formats that
        cannot seek are reopened and decoded from the start (frames before the clip are skipped)."""
        import av

        try:
            self._container.seek(int(seconds / self.time_base), stream=stream, backward=True, any_frame=False)
            return stream
        except (av.error.FFmpegError, OverflowError):
            self._container.close()
            self._container = open_input(self.path)
            stream = main_video_stream(self._container)
            stream.thread_type = "AUTO"
            return stream

    def _count_error(self, exc: Exception) -> None:
        self.decode_errors += 1
        if self.decode_errors > self._tolerated():
            raise DecodeError(
                f"{self.path}: {self.decode_errors} corrupt packets (last: {getattr(exc, 'strerror', None) or exc}); "
                "the file is damaged; repair or re-encode it"
            )

    def _check_complete(self) -> None:
        if not self.clip.whole:
            if self.frames_decoded == 0:
                raise ConfigError(
                    f"--start {self.clip.start:g}: no frames from there on (the video lasts "
                    f"{self.info.duration or 0:.2f}s); choose an earlier start"
                )
            return  # a piece ends where it was asked to; the stated counts are for the whole file
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
