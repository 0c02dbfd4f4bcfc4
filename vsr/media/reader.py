"""Decode a video into RGB numpy frames that keep their source timestamps.

``VideoReader.frames()`` is a plain generator; the enhance pipeline runs it in
its own thread (PyAV releases the GIL while decoding and converting), so
decoding overlaps compute.  Before anything is decoded here, the input has passed the contained
pre-flight (``vsr.media.preflight``: allow-listed demuxer, limits, every packet demuxed once).

The reader is also the one tally of what came in: frames decoded, the first and last timestamps, the
video packets it fed the decoder, and its busy time.  Frames are never lost silently: a packet that
does not decode, a packet that gives no frame, timestamps that go backwards or a file cut short stop
the run with a ``DecodeError`` -- unless ``salvage`` is set, in which case every frame that decodes is
kept at its own timestamp and each damaged range is recorded in ``damage``.  An interlaced source is
deinterlaced (``deinterlace``; ``vsr.media.deinterlace``) between the decoder and the conversion.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vsr.errors import ConfigError, DecodeError, InputError, UnsupportedError
from vsr.media.deinterlace import Deinterlacer, wanted
from vsr.media.limits import InputLimits
from vsr.media.planes import frame_planes
from vsr.media.probe import VideoInfo, guess_matrix, main_video_stream, open_input

SALVAGE_HINT = "pass --salvage to enhance the frames that decode"


@dataclass
class Damage:
    """A stretch of the input that did not come through (``--salvage``): its time span, the video packets
    lost in it, and why."""

    start: float
    end: float
    packets: int
    what: str

    def describe(self) -> str:
        span = f"{self.start:.3f}s" if self.end == self.start else f"{self.start:.3f}-{self.end:.3f}s"
        return f"{span} ({self.packets} packet(s) {self.what})"


@dataclass(slots=True)
class Frame:
    """One frame on its way from reader to writer: RGB pixels (uint8, or uint16 above 8 bits), its source
    pts (in the stream's time base, which reader and writer both hold), and its index in the stream.

    ``altered`` is set by a stage that replaced pixels with a network's output in only part of the
    frame (face mode): an HxW float32 weight in [0, 1] at the output's size, 1 where the pixel is the
    face model's.  Stages keep a frame whole and return ``with_image`` copies, so timing never has to be
    paired again.

    On the device frame path (``VideoReader(planes=True)``) a frame carries its decoder's YUV ``planes``
    (Y, U, V arrays) instead of RGB pixels, ``image`` is None, and the writer encodes planes as they are.
    """

    image: np.ndarray | None
    pts: int
    index: int
    altered: np.ndarray | None = None
    planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def with_image(self, image: np.ndarray, altered: np.ndarray | None = None) -> Frame:
        return dataclasses.replace(self, image=image, altered=altered, planes=None)

    def with_planes(self, planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Frame:
        return dataclasses.replace(self, image=None, planes=planes)


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

    def __init__(
        self,
        path: Path | str,
        clip: Clip | None = None,
        limits: InputLimits | None = None,
        salvage: bool = False,
        planes: bool = False,
        deinterlace: str = "off",
    ) -> None:
        self.path = Path(path)
        self.planes = planes  # yield YUV planes as decoded (the device frame path), not RGB
        self.deinterlace = deinterlace  # --deinterlace: auto | on | off (vsr.media.deinterlace)
        self.deinterlacer = None  # a Deinterlacer when frames are deinterlaced
        self.clip = clip or Clip()
        self.limits = limits or InputLimits()
        self.salvage = salvage
        self.decode_errors = 0  # packets the decoder refused (only ever more than 0 with salvage)
        self.damage: list[Damage] = []  # what salvage skipped
        self.packets_fed = 0  # video packets given to the decoder
        self.frames_out = 0  # frames the decoder gave back (inside the clip or not)
        self.frames_decoded = 0  # frames yielded (inside the clip)
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.seconds = 0.0  # busy time demuxing, decoding and converting
        self._container = None
        self._after_pts: int | None = None  # continue after this frame (--resume)
        self.info: VideoInfo

    def __enter__(self) -> VideoReader:
        from vsr.media.preflight import preflight

        self.preflight = preflight(self.path, self.limits)  # in a child process: crashes and hangs stay there
        self.info = self.preflight.info
        problems = self.preflight.problems()
        if problems and not self.salvage:
            raise DecodeError(f"{self.path}: the file is damaged: {problems[0]}; {SALVAGE_HINT}")
        self._container = open_input(self.path)
        if wanted(self.deinterlace, self.info.interlaced):
            self.deinterlacer = Deinterlacer(main_video_stream(self._container), self.info.field_order)
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

    def frames(self) -> Iterator[Frame]:
        """Yield every frame (of the clip) in presentation order with its source pts."""
        import av

        if self._container is None:
            raise RuntimeError("VideoReader.frames() outside 'with VideoReader(...)'")
        stream = main_video_stream(self._container)
        stream.thread_type = self._threads
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
            # Deinterlacing the clip's first frame takes the frame before it as context: seek before that.
            lead = 2 / self.info.fps if self.deinterlacer is not None and self.info.fps else 0.0
            stream = self._seek(stream, start - lead)
        elif self._after_pts is not None:
            stream = self._seek(stream, float(self._after_pts * time_base))

        def convert(frame) -> Frame:
            nonlocal last_pts
            pts = frame.pts if frame.pts is not None else (last_pts + step if last_pts is not None else 0)
            last_pts = pts
            t = float(pts * time_base)
            self.first_time = t if self.first_time is None else min(self.first_time, t)
            self.last_time = t if self.last_time is None else max(self.last_time, t)
            self.frames_decoded += 1
            if self.planes:
                return Frame(image=None, pts=pts, index=self.frames_decoded - 1, planes=frame_planes(frame))
            rgb_frame = reformatter.reformat(
                frame,
                width=self.info.width,
                height=self.info.height,
                format=rgb,
                src_colorspace=self.matrix,
                src_color_range=src_range,
                dst_color_range="JPEG",
            )
            return Frame(image=rgb_frame.to_ndarray(), pts=pts, index=self.frames_decoded - 1)

        # A salvage keeps the pts of every packet fed and frame got, to say where frames were lost
        # (only then: a strict run's memory stays independent of the video's length).
        fed: list[int] = []
        got: set[int] = set()
        decoded = self._decoded(stream, time_base, fed, got)
        # Deinterlacing sees every decoded frame, those before the clip or the resume point too: each
        # output frame takes its neighbours as context, as in a whole run.
        if self.deinterlacer is not None:
            decoded = self.deinterlacer.filter(decoded)
        began = time.perf_counter()
        for frame in decoded:
            if self._after_pts is not None and frame.pts is not None and frame.pts <= self._after_pts:
                continue  # decoded from the keyframe before the resume point: done by the earlier run
            if frame.pts is not None and not self.clip.whole:
                t = float(frame.pts * time_base)
                if t < start - 1e-6:
                    continue
                if stop is not None and t >= stop - 1e-6:
                    self.seconds += time.perf_counter() - began
                    self._check_complete(None, None)
                    return
            out = convert(frame)
            self.seconds += time.perf_counter() - began
            yield out
            began = time.perf_counter()
        self.seconds += time.perf_counter() - began
        from_start = self.clip.start == 0 and self._after_pts is None
        self._check_complete(fed if from_start else None, got, time_base)

    def _decoded(self, stream, time_base: Fraction, fed: list[int], got: set[int]) -> Iterator:
        """The stream's decoded frames in time order: each packet counted, and (with salvage) its pts kept
        in ``fed`` and each frame's in ``got``; a frame out of time order is refused (or dropped), a
        change of picture size is refused, and a resume must land at or before the last frame done."""
        import av

        last_pts: int | None = None
        landed = self._after_pts is None
        for packet in self._demux(stream):
            if packet.size and not packet.is_discard:
                self.packets_fed += 1
                if packet.pts is not None and self.salvage:
                    fed.append(packet.pts)
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                self._corrupt(packet, exc)
                continue
            for frame in frames:
                self.frames_out += 1
                if (frame.width, frame.height) != (self.info.width, self.info.height):
                    raise UnsupportedError(
                        f"{self.path}: the picture changes size at frame {self.frames_out - 1} "
                        f"({self.info.width}x{self.info.height} to {frame.width}x{frame.height}); "
                        "split the file there and enhance each part"
                    )
                if frame.pts is not None and self.salvage:
                    got.add(frame.pts)
                if frame.pts is not None and last_pts is not None and frame.pts <= last_pts:
                    self._out_of_order(frame, last_pts, time_base)
                    continue
                if frame.pts is not None:
                    last_pts = frame.pts
                if not landed and frame.pts is not None:
                    landed = frame.pts <= self._after_pts
                    if not landed:  # frames would be lost: an inexact seek in this container
                        raise DecodeError(
                            f"{self.path}: cannot seek back exactly to resume at "
                            f"{float(self._after_pts * time_base):.3f}s; run without --resume to start over"
                        )
                yield frame

    def _demux(self, stream):
        """The video stream's packets; a demuxing error ends them (refused, or recorded with salvage)."""
        import av

        demux = self._container.demux(stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except (av.error.FFmpegError, UnicodeDecodeError, OverflowError) as exc:
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                at = self.last_time or 0.0
                if not self.salvage:
                    raise DecodeError(
                        f"{self.path}: the file is damaged: reading stops at {at:.3f}s ({reason}); {SALVAGE_HINT}"
                    ) from None
                self.damage.append(Damage(at, at, 0, f"unreadable from here to the end ({reason})"))
                return
            yield packet

    def _corrupt(self, packet, exc: Exception) -> None:
        """A packet the decoder refused: the end of a strict run, a recorded gap in a salvage."""
        self.decode_errors += 1
        if not self.salvage:  # (a salvage places the gap at the end, from the packets that gave no frame)
            reason = getattr(exc, "strerror", None) or exc
            t = float(packet.pts * packet.time_base) if packet.pts is not None else (self.last_time or 0.0)
            raise DecodeError(
                f"{self.path}: the frame at {t:.3f}s does not decode ({reason}); the file is damaged; {SALVAGE_HINT}"
            )

    def _out_of_order(self, frame, last_pts: int, time_base: Fraction) -> None:
        """A frame whose time is not after the previous one's: refused, or dropped (and recorded) by salvage."""
        t, before = float(frame.pts * time_base), float(last_pts * time_base)
        if not self.salvage:
            raise InputError(
                f"{self.path}: timestamps go backwards at frame {self.frames_out - 1} ({t:.3f}s after "
                f"{before:.3f}s); the file's timing is damaged; pass --salvage to drop the frames out of order"
            )
        self.damage.append(Damage(t, t, 1, "out of time order, dropped"))

    @property
    def _threads(self) -> str:
        """Frame threads decode fastest, but drop a damaged frame without an error (the packet count still
        catches it); a salvage decodes with slice threads, which report every damaged packet and lose none
        of the frames around it (measured: a truncated mp4 gives 8 frames so, 6 with frame threads)."""
        return "SLICE" if self.salvage else "AUTO"

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
            stream.thread_type = self._threads
            return stream

    def _check_complete(self, fed: list[int] | None, got: set[int] | None, time_base=None) -> None:
        """At the end of the stream: every packet fed gave a frame, and the file is as long as it says.

        ``fed`` (the packets' pts, kept in a salvage) is None when decoding did not start at the first packet
        (a seek for --start or --resume), where packets and frames cannot be matched one to one.
        """
        if not self.clip.whole:
            if self.frames_decoded == 0:
                raise ConfigError(
                    f"--start {self.clip.start:g}: no frames from there on (the video lasts "
                    f"{self.info.duration or 0:.2f}s); choose an earlier start"
                )
            return  # a piece ends where it was asked to; the stated counts are for the whole file
        if self.frames_decoded == 0:
            raise DecodeError(f"{self.path}: no decodable video frames; the file is corrupt or truncated")
        if fed is not None:
            lost = self.packets_fed - self.frames_out
            if lost > 0 and not self.salvage:
                raise DecodeError(
                    f"{self.path}: {lost} of {self.packets_fed} video packets gave no frame (the decoder "
                    f"dropped them as damaged); {SALVAGE_HINT}"
                )
            if self.salvage and (lost > 0 or self.decode_errors):
                self.damage.extend(_gaps(sorted(set(fed) - got), time_base))
        expected = self.info.frames
        # (an AVI counts its empty "repeat the last frame" entries, which demux to nothing: the timeline counts)
        period = 1 / self.info.fps if self.info.fps else 0.0
        slots = round(((self.last_time or 0.0) - (self.first_time or 0.0)) / period) + 1 if period else 0
        missing = (expected or 0) - max(self.packets_fed, self.frames_out, slots) if fed is not None else 0
        if expected and missing > 0:
            if not self.salvage:
                raise DecodeError(
                    f"{self.path}: truncated: decoded {self.frames_decoded} of {expected} frames; "
                    f"the file is incomplete; re-copy or repair it, or {SALVAGE_HINT}"
                )
            end = self.last_time or 0.0
            self.damage.append(Damage(end, end, missing, "missing: the file ends early"))
        # Containers without a frame count (Matroska, WebM) still state a duration: a file cut short
        # decodes cleanly but ends early.
        duration = self.info.duration
        if not expected and duration and self.last_time is not None:
            decoded = self.last_time - (self.first_time or 0.0) + period
            if decoded < duration - max(3 * period, 0.02 * duration):
                if not self.salvage:
                    raise DecodeError(
                        f"{self.path}: truncated: frames end at {decoded:.2f}s of a stated {duration:.2f}s; "
                        f"the file is incomplete; re-copy or repair it, or {SALVAGE_HINT}"
                    )
                self.damage.append(Damage(decoded, duration, 0, "missing: the file ends early"))

    @property
    def frames_lost(self) -> int:
        """Video packets that gave no frame (a salvage records where)."""
        return sum(d.packets for d in self.damage)


def _gaps(missing: list[int], time_base) -> list[Damage]:
    """Group the pts of packets that gave no frame into damaged ranges (consecutive in packet order)."""
    out: list[Damage] = []
    for pts in missing:
        t = float(pts * time_base)
        if out and out[-1].what == "did not decode" and t - out[-1].end < 1.0:
            out[-1] = Damage(out[-1].start, t, out[-1].packets + 1, "did not decode")
        else:
            out.append(Damage(t, t, 1, "did not decode"))
    return out
