"""Open and describe a video file: streams, size, rate, frames, rotation, pixel format, colour tags.

``open_input`` is the only way the project opens a media file for reading: it
checks the path first (missing, directory, empty, not a regular file) and
restricts FFmpeg to the ``file`` protocol, so a crafted name or playlist can
never make it read from the network or another protocol.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from vsr.errors import DecodeError, EncodeError, InputError, UnsupportedError, VsrError, safe_text

# Colour matrix codes (AVColorSpace) -> the swscale matrices that PyAV's reformatter accepts.
_MATRIX_FOR_COLORSPACE = {
    1: "ITU709",
    5: "ITU601",
    6: "ITU601",
    7: "SMPTE240M",
    9: "BT2020",
    10: "BT2020",
    4: "FCC",
}
UNSPECIFIED = 2

# FFmpeg's own names for the colour tags and field order (what ``ffprobe`` prints; av_color_*_name).
COLOR_NAMES: dict[str, dict[int, str]] = {
    "range": {0: "unknown", 1: "tv", 2: "pc"},
    "primaries": {
        1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
        9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
    },
    "transfer": {
        1: "bt709", 2: "unknown", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
        9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10",
        15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
    },
    "matrix": {
        0: "gbr", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco",
        9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc", 13: "chroma-derived-c", 14: "ictcp",
    },
}  # fmt: skip
FIELD_ORDERS = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
FIELD_ORDER_TEXT = {
    "progressive": "progressive",
    "tt": "interlaced, top field first",
    "bb": "interlaced, bottom field first",
    "tb": "interlaced, top field coded first, bottom displayed first",
    "bt": "interlaced, bottom field coded first, top displayed first",
    "interlaced": "interlaced, field order not tagged",
    "unknown": "unknown",
}


def color_name(kind: str, code: int) -> str:
    """FFmpeg's name for a colour tag (``kind``: range, primaries, transfer, matrix), e.g. ("range", 1) -> "tv"."""
    return COLOR_NAMES[kind].get(int(code), f"reserved ({int(code)})")


def field_order_of(stream, first_frame) -> str:
    """The stream's field order ("progressive", "tt", "bb", "tb", "bt"), from the codec context once a frame
    is decoded; a frame flagged interlaced without an order gives "interlaced"."""
    order = FIELD_ORDERS.get(int(getattr(stream.codec_context, "field_order", 0) or 0), "unknown")
    if order == "unknown" and first_frame is not None:
        return "interlaced" if first_frame.interlaced_frame else "progressive"
    return order


def guess_matrix(colorspace: int, height: int) -> tuple[str, int]:
    """The swscale matrix for a stream's colorspace tag, and the tag to write (guessing when untagged)."""
    if colorspace in _MATRIX_FOR_COLORSPACE:
        return _MATRIX_FOR_COLORSPACE[colorspace], colorspace
    # Untagged: players assume BT.601 below 720 lines and BT.709 above; decide from the input's height.
    return ("ITU709", 1) if height >= 720 else ("ITU601", 6)


@dataclass
class VideoInfo:
    """What ``vsr probe`` prints and what the pipeline needs to reproduce a video faithfully."""

    path: str
    container: str
    codec: str
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    fps: float
    avg_rate: str  # exact rational, e.g. "30000/1001"
    time_base: str
    frames: int | None  # from the container index; None when the container does not say
    duration: float | None
    rotation: int  # degrees, counter-clockwise, as in the display matrix
    color_range: int
    color_primaries: int
    color_trc: int
    colorspace: int
    variable_frame_rate: bool | None = None
    audio_streams: list[dict[str, Any]] = field(default_factory=list)
    subtitle_streams: list[dict[str, Any]] = field(default_factory=list)
    field_order: str = "unknown"  # a FIELD_ORDERS value, or "interlaced" (flagged, order not tagged)
    packets: int | None = None  # the video packets the pre-flight demuxed (one frame each in a sound file)
    # Derived, not passed: FFmpeg's names of the four colour tags, and duration x rate when ``frames``
    # is None (MKV, MPEG-2 PS/TS give no count): an estimate for progress bars, never a check.
    color_names: dict[str, str] = field(default_factory=dict, init=False)
    frames_estimate: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        codes = (self.color_range, self.color_primaries, self.color_trc, self.colorspace)
        tags = zip(COLOR_NAMES, codes, strict=True)
        self.color_names = {kind: color_name(kind, code) for kind, code in tags}
        if self.frames is None and self.packets:
            self.frames_estimate = self.packets
        elif self.frames is None and self.duration and self.fps:
            self.frames_estimate = max(1, round(self.duration * self.fps))

    @property
    def interlaced(self) -> bool:
        """Whether the video is stored as fields (any field order but progressive or unknown)."""
        return self.field_order not in ("progressive", "unknown")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The short form the enhance report uses for input and output."""
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "fps": round(self.fps, 4),
            "frames": self.frames,
            "duration": self.duration,
            "audio_streams": len(self.audio_streams),
            "rotation": self.rotation,
            "pix_fmt": self.pix_fmt,
            "field_order": self.field_order,
        }


def main_video_stream(container):
    """The video stream to enhance: the first one that is not cover art (an attached picture), or None."""
    import av

    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def check_input_path(path: Path) -> Path:
    """Resolve ``path`` and reject what can never be a video, with a one-line reason and fix."""
    if not path.exists():
        if ":" in path.name and not path.is_symlink():
            raise InputError(
                f"input not found: {path}; vsr reads local files only (URLs and FFmpeg protocols such as "
                "concat: or pipe: are taken as file names)"
            )
        raise InputError(f"input not found: {path}; check the path")
    if path.is_dir():
        raise InputError(f"input is a directory, not a video file: {path}")
    if not path.is_file():
        raise InputError(f"input is not a regular file: {path}")
    if not os.access(path, os.R_OK):
        raise InputError(f"input is not readable (permission denied): {path}")
    if path.stat().st_size == 0:
        raise InputError(f"input is empty (0 bytes): {path}")
    return path.resolve()


def open_input(path: Path):
    """Open ``path`` for demuxing with the file protocol and the allow-listed demuxers only; raise typed
    errors for bad files.  Scripts and playlists (ffconcat, HLS, DASH) never get to open what they name."""
    import av

    from vsr.media.limits import FORMAT_WHITELIST

    real = check_input_path(Path(path))
    options = {"protocol_whitelist": "file", "format_whitelist": FORMAT_WHITELIST}
    try:
        container = av.open(f"file:{real}", mode="r", options=options)
    except av.error.EOFError:
        raise DecodeError(f"truncated file (ends before its header is complete): {path}") from None
    except (
        av.error.InvalidDataError,
        av.error.ArgumentError,
        av.error.PermissionError,
        av.error.DemuxerNotFoundError,
    ):
        kind = _sniff(real)  # FFmpeg refuses an unknown or a not-allowed format alike; say which it is
        raise (UnsupportedError if kind else InputError)(
            f"{kind or 'not a readable video (unknown format, or truncated/corrupt)'}: {path}"
        ) from None
    except av.error.MemoryError:
        raise DecodeError(
            f"cannot open {path}: its header asks for more memory than allowed (damaged)"
        ) from None
    except av.error.FFmpegError as exc:
        raise DecodeError(
            f"cannot read {path} as a video ({exc.strerror or type(exc).__name__}); the file is damaged or not a video"
        ) from None
    except UnicodeDecodeError:
        raise DecodeError(f"cannot read {path}: its header holds malformed text (damaged)") from None
    try:
        stream = main_video_stream(container)
        if stream is None:
            kinds = sorted({s.type for s in container.streams if s not in container.streams.video})
            what = (
                "audio-only"
                if kinds == ["audio"]
                else f"has no video stream ({', '.join(kinds) or 'no streams'})"
            )
            raise InputError(f"input {what}: {path}; vsr enhances video")
        if stream.codec_context is None or not stream.codec_context.name:
            raise UnsupportedError(f"unsupported video codec in {path}; re-encode it to H.264 first")
    except BaseException:
        container.close()
        raise
    return container


def _sniff(path: Path) -> str | None:
    """Name what a refused file is, from its first bytes: playlists, scripts and text are refused by design."""
    try:
        with path.open("rb") as f:
            head = f.read(512)
    except OSError:
        return None
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"#extm3u"):
        return "an HLS playlist, not a video (playlists that open other files are refused)"
    if text.startswith(b"ffconcat"):
        return "an FFmpeg concat script, not a video (scripts that open other files are refused)"
    if b"<mpd" in text or b"urn:mpeg:dash" in text:
        return "a DASH manifest, not a video (manifests that open other files are refused)"
    if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "a text file, not a video"
    return None


def _first_frame(container, stream):
    """Decode the first frame (for rotation and colour tags the stream header may not carry)."""
    import av

    for packet in container.demux(stream):
        try:
            for frame in packet.decode():
                return frame
        except av.error.FFmpegError:
            continue
    return None


def describe(container, path: Path, first_frame=None) -> VideoInfo:
    """Build a ``VideoInfo`` from an open container (decodes one frame if none is given)."""
    stream = main_video_stream(container)
    cc = stream.codec_context
    if first_frame is None:  # (the container is left after that frame: callers open a fresh one to decode)
        first_frame = _first_frame(container, stream)
    if first_frame is None:
        raise DecodeError(f"no decodable video frame in {path}; the file is corrupt or truncated")
    fmt = first_frame.format
    depth = max((c.bits for c in fmt.components), default=8)
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
    frames, duration = _extent(container, stream)
    vfr = None
    if stream.base_rate and stream.average_rate:
        vfr = abs(float(stream.base_rate) - float(stream.average_rate)) > 0.01 * float(stream.average_rate)
    audio = [
        {
            "index": s.index,
            "codec": s.codec_context.name if s.codec_context else None,
            "sample_rate": s.codec_context.sample_rate if s.codec_context else None,
            "channels": s.codec_context.channels if s.codec_context else None,
            "language": _tag(s, "language"),
        }
        for s in container.streams.audio
    ]
    subtitles = [
        {
            "index": s.index,
            "codec": s.codec_context.name if s.codec_context else None,
            "language": _tag(s, "language"),
        }
        for s in container.streams.subtitles
    ]
    return VideoInfo(
        path=str(path),
        container=container.format.name,
        codec=cc.name,
        width=first_frame.width,
        height=first_frame.height,
        pix_fmt=fmt.name,
        bit_depth=depth,
        fps=float(rate),
        avg_rate=str(rate),
        time_base=str(stream.time_base),
        frames=frames,
        duration=duration,
        rotation=int(round(first_frame.rotation or 0)),
        color_range=int(first_frame.color_range),
        color_primaries=int(first_frame.color_primaries),
        color_trc=int(first_frame.color_trc),
        colorspace=int(first_frame.colorspace),
        variable_frame_rate=vfr,
        audio_streams=audio,
        subtitle_streams=subtitles,
        field_order=field_order_of(stream, first_frame),
    )


def _tag(stream, name: str) -> str | None:
    """A stream's text tag, short and terminal-safe (None when absent or malformed: it is untrusted metadata)."""
    try:
        value = getattr(stream, name)
    except (UnicodeDecodeError, ValueError):
        return None
    return safe_text(value, 32) if value else None


@dataclass
class WrittenVideo:
    """A written file as read back in one pass: its description, and its video packets' count and time span."""

    info: VideoInfo
    frames: int
    start: float  # the first frame's time
    last_start: float  # the last frame's time
    end: float  # the last frame's time plus its duration

    @property
    def duration(self) -> float:
        return self.end - self.start


def read_back(path: Path | str) -> WrittenVideo:
    """Open a written file once: count its video packets and their span, and describe it from its first frame.

    A file that cannot be opened was not written completely: FFmpeg's muxer does not report a write the
    system refused (a full disk, a quota, a file-size limit), so this is where that shows.
    """
    import av

    path = Path(path)
    try:
        container = open_input(path)
    except VsrError:
        free = shutil.disk_usage(path.parent).free
        raise EncodeError(
            f"the output was not written completely: it cannot be read back ({free / 1e9:.1f} GB free in "
            f"{path.parent}; a full disk, a quota or a file-size limit stops the muxer without an error)"
        ) from None
    try:
        stream = main_video_stream(container)
        count, first, last, end, first_frame = 0, None, None, None, None
        for pkt in container.demux(stream):
            if first_frame is None:  # decode only until the first frame comes out (after the codec's delay)
                try:
                    first_frame = next(iter(pkt.decode()), None)
                except av.error.FFmpegError:
                    pass
            if pkt.pts is None:
                continue  # the demuxer's flush packet
            count += 1
            t0 = float(pkt.pts * pkt.time_base)
            t1 = t0 + float((pkt.duration or 0) * pkt.time_base)
            first = t0 if first is None else min(first, t0)
            last = t0 if last is None else max(last, t0)
            end = t1 if end is None else max(end, t1)
        info = describe(container, path, first_frame)
        return WrittenVideo(info, count, first or 0.0, last or 0.0, end or 0.0)
    finally:
        container.close()


def ffmpeg_versions() -> dict[str, str]:
    """PyAV's version and the FFmpeg it bundles (for provenance reports)."""
    import av

    ffmpeg = getattr(av, "ffmpeg_version_info", None)
    if not ffmpeg:
        major, minor, micro = av.library_versions.get("libavcodec", (0, 0, 0))
        ffmpeg = f"libavcodec {major}.{minor}.{micro}"
    return {"av": av.__version__, "ffmpeg": str(ffmpeg)}


def probe(path: Path | str, limits=None) -> VideoInfo:
    """Describe the video at ``path``: the contained pre-flight (``vsr.media.preflight``) opens it in a child
    process, checks ``limits``, decodes one frame and counts every packet."""
    from vsr.media.preflight import preflight

    return preflight(path, limits).info


def _extent(container, stream) -> tuple[int | None, float | None]:
    """Frames and duration (seconds) as the container's header states them (None where it does not)."""
    duration = None
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    return stream.frames or None, duration


def extent(path: Path | str) -> tuple[int | None, float | None]:
    """``(frames, duration)`` of ``path``'s video from its header alone, without decoding (``vsr batch``
    checks thousands of done outputs with it); the same numbers ``probe`` reports."""
    container = open_input(Path(path))
    try:
        return _extent(container, main_video_stream(container))
    finally:
        container.close()
