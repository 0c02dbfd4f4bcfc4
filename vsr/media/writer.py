"""Encode RGB frames with their source timestamps, and copy the source's audio and subtitles.

The writer keeps what makes a video faithful: each frame's pts in the source
time base (so variable frame rate survives: the *encoder's* time base is set,
not only the stream's), the display rotation, the colour tags and matrix, the
sample aspect ratio, and every audio stream copied packet for packet (re-encoded
only when the output container cannot hold the codec).  Side packets come from
a second demuxer over the side-stream source and are interleaved by time as
video packets are produced, so nothing accumulates in memory.

``EncodeSettings.for_output`` is the one place that decides whether a codec,
quality and encoder options can go into an output; ``open_writer`` opens either
encoder backend (PyAV's encoders, or an external ffmpeg with ``--ffmpeg-bin``).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from vsr.errors import ConfigError, EncodeError, UsageError
from vsr.media.encoders import ChunkEncoders, EncoderPlan, SerialEncode
from vsr.media.probe import UNSPECIFIED, VideoInfo, guess_matrix, main_video_stream, open_input

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".mov": "mov", ".webm": "webm"}
WEBM_VIDEO = ("libvpx-vp9", "libsvtav1")
# Quality-first defaults: archive and evidence footage deserve near-transparent encodes.
DEFAULT_CRF = {
    "libx264": 18,
    "libx265": 20,
    "libvpx-vp9": 24,
    "libsvtav1": 28,
    "h264_nvenc": 20,
    "hevc_nvenc": 22,
}
# The quality scale each encoder accepts (x264/x265 crf and NVENC cq stop at 51; VP9 and AV1 at 63).
CRF_RANGE = {
    "libx264": (0, 51),
    "libx265": (0, 51),
    "libvpx-vp9": (0, 63),
    "libsvtav1": (0, 63),
    "h264_nvenc": (0, 51),
    "hevc_nvenc": (0, 51),
}


class Frame(Protocol):
    """What a writer encodes (``vsr.media.reader.Frame``): pixels (H, W, 3 RGB, uint8 or uint16) or YUV
    planes in the writer's format, and the source pts of the frame."""

    image: np.ndarray | None
    planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    pts: int


def container_for(path: Path) -> str:
    """The muxer for an output path, from its extension."""
    fmt = CONTAINERS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"output extension {path.suffix or '(none)'!r} is not supported; use .mp4, .mkv, .mov or .webm"
        )
    return fmt


def default_codec(path: Path) -> str:
    """libx264, or VP9 for .webm (which cannot hold H.264)."""
    return WEBM_VIDEO[0] if container_for(path) == "webm" else "libx264"


def parse_encoder_options(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``("tune=grain", "x264-params=aq-mode=3")`` -> a dict; each must be KEY=VALUE (values may hold '=')."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value:
            raise ConfigError(f"--encoder-opt {pair!r}: expected KEY=VALUE, e.g. tune=grain")
        options[key.strip()] = value
    return options


def _check_encoder_options(codec: str, options: dict[str, str]) -> None:
    """Every key must be an option the encoder declares (its private options or the generic ones)."""
    import av

    if not options:
        return
    try:
        supported = av.CodecContext.create(codec, "w").supported_options
    except (av.error.FFmpegError, ValueError):
        return  # the codec itself is missing: opening the encoder says so with the fix
    known = {o.name for o in supported.private} | {o.name for o in supported.generic}
    unknown = sorted(set(options) - known)
    if unknown:
        private = ", ".join(sorted(o.name for o in supported.private)[:12])
        raise ConfigError(
            f"--encoder-opt {unknown[0]}: not an option of {codec} (its own options include {private}, …)"
        )


@dataclass
class EncodeSettings:
    """Encoder choices, resolved for one output (``for_output``); ``None`` means the codec's default."""

    codec: str = "libx264"
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    audio: bool = True
    encoder_options: dict[str, str] = field(default_factory=dict)
    ffmpeg_bin: str | None = None  # encode with this external ffmpeg instead of PyAV's encoders

    @classmethod
    def for_output(
        cls,
        path: Path,
        codec: str | None = None,
        crf: int | None = None,
        preset: str | None = None,
        pix_fmt: str | None = None,
        audio: bool = True,
        encoder_options: dict[str, str] | None = None,
        ffmpeg_bin: str | None = None,
    ) -> EncodeSettings:
        """Settings for writing ``path``; raise a usage error naming the flag for what cannot work there."""
        fmt = container_for(path)
        codec = codec or default_codec(path)
        if fmt == "webm" and codec not in WEBM_VIDEO:
            raise UsageError(
                f"--codec {codec} cannot go into .webm; use {' or '.join(WEBM_VIDEO)}, or an .mp4/.mkv output"
            )
        low, high = CRF_RANGE.get(codec, (0, 63))
        if crf is not None and not low <= crf <= high:
            raise ConfigError(f"--crf for {codec} must be between {low} and {high}, got {crf}")
        options = dict(encoder_options or {})
        _check_encoder_options(codec, options)
        return cls(codec, crf, preset, pix_fmt, audio, options, ffmpeg_bin)

    @property
    def quality(self) -> int:
        """The crf (or NVENC cq) used: the given one, else the codec's default."""
        return self.crf if self.crf is not None else DEFAULT_CRF.get(self.codec, 20)


@dataclass
class WriterReport:
    """What the writer decided and saw, for the enhance report."""

    codec: str = ""
    pix_fmt: str = ""
    container: str = ""
    padded: dict[str, int] = field(default_factory=dict)
    audio: list[dict] = field(default_factory=list)
    subtitles: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0  # busy time converting, encoding and muxing
    # Audio/subtitle packets of a damaged input that could not be copied (out of time order, refused by
    # the muxer), and the first reason: the writer copies what it can; ``check_output`` decides.
    side_dropped: int = 0
    side_damage: str | None = None
    encoders: dict[str, int] = field(default_factory=dict)  # EncoderPlan.describe(): parallel chunk encoding


def open_writer(
    path: Path,
    fmt: str,
    source: VideoInfo,
    width: int,
    height: int,
    settings: EncodeSettings,
    time_base: Fraction,
    rotation: int,
    side_source: Path | None,
    rebase: bool = False,
    encoders: EncoderPlan | None = None,
) -> VideoWriter:
    """Open the encoder backend ``settings`` asks for: PyAV's encoders (``encoders``: how many at once),
    or an external ffmpeg."""
    if settings.ffmpeg_bin:
        from vsr.media.ffmpeg_writer import FfmpegWriter

        if rebase:
            raise UsageError("--start/--duration cannot be combined with --ffmpeg-bin; drop one of them")
        return FfmpegWriter(path, fmt, source, width, height, settings, time_base, rotation, side_source)
    return VideoWriter(
        path, fmt, source, width, height, settings, time_base, rotation, side_source, rebase, encoders
    )


def plan_side_streams(
    src, fmt: str, supported: set[str], audio: bool, report: WriterReport, source: VideoInfo | None = None
) -> list:
    """What happens to each audio and subtitle stream of ``src`` in a ``fmt`` output, in source order.

    ``source`` (the input's description) names the streams with nothing to copy: declared with no packets,
    or with no known codec (a damaged header, only a ``--salvage`` run gets this far with one).

    Returns ``(stream, None)`` to copy a stream packet for packet, ``(stream, encoder)`` to re-encode audio
    the container cannot hold (AAC, or Opus for WebM); subtitles it cannot hold are dropped.  Records
    each decision in ``report``.  Both encoder backends follow this one plan.
    """
    plan = []
    for s in src.streams:
        if s.type not in ("audio", "subtitle") or (s.type == "audio" and not audio):
            continue
        if s.codec_context is None or not copyable(source, s.index):
            report.warnings.append(f"{s.type} stream {s.index} has no packets or no known codec; not copied")
            continue
        name = s.codec_context.name or "unknown"
        if name in supported:
            target, action = None, "copy"
        elif s.type == "audio":
            target = "libopus" if fmt == "webm" else "aac"
            action = f"re-encoded to {target}"
            report.warnings.append(f"audio stream {s.index} ({name}) cannot go into {fmt}; {action}")
        else:
            report.warnings.append(f"subtitle stream {s.index} ({name}) cannot go into {fmt}; dropped")
            continue
        plan.append((s, target))
        (report.audio if s.type == "audio" else report.subtitles).append(
            {"index": s.index, "codec": name, "action": action}
        )
    return plan


def full_range(source: VideoInfo) -> bool:
    """Whether pictures for ``source`` are written full range (``pc``), as the source is; else limited."""
    return source.color_range == 2 or source.pix_fmt.startswith("yuvj")


def picture_format(settings: EncodeSettings, source: VideoInfo) -> tuple[str, str, bool]:
    """(pix_fmt, swscale matrix, full range) of the pictures a writer with ``settings`` encodes for
    ``source``: what a stage on the device frame path must hand it as planes (the writer decides the same)."""
    return (
        choose_pix_fmt(settings.codec, source, settings.pix_fmt)[0],
        guess_matrix(source.colorspace, source.height)[0],
        full_range(source),
    )


def copyable(source: VideoInfo | None, index: int) -> bool:
    """Whether side stream ``index`` of ``source`` has packets and a codec (True when not described)."""
    if source is None:
        return True
    side = next((d for d in (*source.audio_streams, *source.subtitle_streams) if d["index"] == index), None)
    return side is None or (side.get("packets", 1) > 0 and side["codec"] is not None)


def _chroma_alignment(pix_fmt: str) -> tuple[int, int]:
    if "420" in pix_fmt or pix_fmt.startswith(("nv12", "nv21")):
        return 2, 2
    if "422" in pix_fmt or "440" in pix_fmt or pix_fmt.startswith(("nv16", "nv20")):
        return (2, 1) if "422" in pix_fmt or pix_fmt.startswith(("nv16", "nv20")) else (1, 2)
    return 1, 1


def choose_pix_fmt(codec: str, source: VideoInfo, requested: str | None) -> tuple[str, list[str]]:
    """Keep the source's bit depth and chroma where the encoder allows, else fall back; return (fmt, warnings)."""
    import av

    supported = [f.name for f in (av.Codec(codec, "w").video_formats or [])]
    if requested:
        if supported and requested not in supported:
            raise UsageError(
                f"--pix-fmt {requested} is not supported by {codec}; it supports {', '.join(supported)}"
            )
        return requested, []
    wanted = source.pix_fmt.replace("yuvj", "yuv")  # full range is carried by the colour range tag instead
    if not supported or wanted in supported:
        return wanted, []
    if source.bit_depth > 8:
        for high in ("yuv420p10le", "yuv422p10le", "yuv444p10le"):
            if high in supported:
                return high, [
                    f"{codec} cannot encode {source.pix_fmt}; wrote {high} (keeps {source.bit_depth}-bit depth where possible)"
                ]
    return "yuv420p", [f"{codec} cannot encode {source.pix_fmt}; wrote yuv420p"]


def _codec_options(codec: str, crf: int, preset: str | None) -> dict[str, str]:
    if codec in ("libx264", "libx265"):
        opts = {"crf": str(crf), "preset": preset or "medium"}
        if codec == "libx265":
            opts["x265-params"] = "log-level=error"
        return opts
    if codec == "libvpx-vp9":
        return {"crf": str(crf), "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": preset or "4"}
    if codec == "libsvtav1":
        return {"crf": str(crf), "preset": preset or "8"}
    if codec.endswith("_nvenc"):
        return {"rc": "vbr", "cq": str(crf), "preset": preset or "p5"}
    return {}


class VideoWriter:
    """Write frames to ``path`` in ``fmt`` with ``source``'s timing and colour tags.

    ``rotation`` is the display rotation to record (the source's, or 0 for a picture that is already
    upright); ``side_source`` is the file whose audio and subtitles are copied (None: no side streams).
    With ``rebase`` the output starts at time 0: the first frame's pts is subtracted from every frame,
    and only the side packets from the first frame's time to the last one's end are kept, shifted alike
    (``--start``/``--duration``).  ``encoders`` runs several encoders on keyframe-aligned chunks at once
    (``vsr.media.encoders``); by default one encoder takes every frame.
    """

    def __init__(
        self,
        path: Path,
        fmt: str,
        source: VideoInfo,
        width: int,
        height: int,
        settings: EncodeSettings,
        time_base: Fraction,
        rotation: int = 0,
        side_source: Path | None = None,
        rebase: bool = False,
        encoders: EncoderPlan | None = None,
    ) -> None:
        import av

        self.report = WriterReport(codec=settings.codec, container=fmt)
        self.path = Path(path)
        self.plan = encoders or EncoderPlan()
        self._engine = None
        self.source = source
        self.settings = settings
        self.time_base = time_base
        self.rotation = rotation
        self.side_source = side_source
        self._rebase = rebase
        self._offset: int | None = None if rebase else 0  # pts subtracted from every frame
        self._end_time = 0.0  # seconds, in output time: where the last frame written ends
        self._period = 1 / source.fps if source.fps else 0.0
        self._side = None
        self._pending = None
        self._side_dts: dict[int, int] = {}  # the last decode time muxed per side stream
        pix_fmt, warnings = choose_pix_fmt(settings.codec, source, settings.pix_fmt)
        self.report.pix_fmt = pix_fmt
        self.report.warnings.extend(warnings)
        align_w, align_h = _chroma_alignment(pix_fmt)
        self.width = -(-width // align_w) * align_w
        self.height = -(-height // align_h) * align_h
        self._pad = (self.height - height, self.width - width)
        if any(self._pad):
            self.report.padded = {"bottom": self._pad[0], "right": self._pad[1]}
            self.report.warnings.append(
                f"{pix_fmt} needs even sizes: padded {width}x{height} to {self.width}x{self.height} by edge repeat"
            )
        self.matrix, self.tag = guess_matrix(source.colorspace, source.height)
        if source.colorspace != self.tag:
            self.report.warnings.append(
                f"input has no colour matrix tag; decoded as {self.matrix} and tagged the output so it displays the same"
            )
        self.range = "JPEG" if full_range(source) else "MPEG"

        self._open_encoder(av, path, fmt, time_base)
        self._open_side_streams(av)

    def _open_encoder(self, av, path: Path, fmt: str, time_base: Fraction) -> None:
        """Create the output container, the video stream (its encoder gives the codec parameters) and the
        engine that encodes: that encoder itself, or chunk encoders opened alike (``self.plan``)."""
        source, settings = self.source, self.settings
        try:
            self.container = av.open(f"file:{path}", mode="w", format=fmt)
        except av.error.FFmpegError as exc:
            raise EncodeError(f"cannot create output {path}: {exc.strerror or exc}") from None
        try:
            self.stream = self.container.add_stream(settings.codec, rate=Fraction(source.avg_rate))
        except (av.error.FFmpegError, ValueError) as exc:
            self.container.close()
            raise UsageError(f"--codec {settings.codec} is not available in this build ({exc})") from None
        self.stream.time_base = time_base
        if self.rotation:
            self.stream.set_display_rotation(self.rotation)
        cc = self.stream.codec_context
        try:
            self._configure(cc, time_base)
            self._open_engine(av, cc, time_base)
        except BaseException:
            self.container.close()
            raise

    def _configure(self, cc, time_base: Fraction) -> None:
        """Set up and open one encoder: the stream's, or a chunk encoder made to match it exactly."""
        import av

        source, settings = self.source, self.settings
        if settings.codec == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner at every open (every chunk)
        cc.width, cc.height, cc.pix_fmt = self.width, self.height, self.report.pix_fmt
        cc.time_base = time_base  # the encoder's own time base: what keeps VFR timestamps exact
        cc.color_range = 2 if self.range == "JPEG" else 1
        cc.colorspace = self.tag
        if source.color_primaries != UNSPECIFIED:
            cc.color_primaries = source.color_primaries
        if source.color_trc != UNSPECIFIED:
            cc.color_trc = source.color_trc
        cc.options = {
            **_codec_options(settings.codec, settings.quality, settings.preset),
            **settings.encoder_options,
        }
        cc.thread_count = self.plan.threads  # 0: all cores
        # Frame threads as FFmpeg's own CLI uses them: PyAV's default (slice threads) makes libx264 run
        # sliced threads, which scale worse (measured on 2 cores, 1280x720 medium: 21.1 vs 19.1 fps, and
        # 2.5 % smaller files); frame-threaded x264 stays deterministic.
        cc.thread_type = "AUTO"
        try:
            cc.open()
        except av.error.FFmpegError as exc:
            hint = (
                "; this machine has no NVIDIA encoder, use --codec libx264"
                if "nvenc" in settings.codec
                else ""
            )
            raise EncodeError(
                f"cannot open the {settings.codec} encoder: {exc.strerror or exc}{hint}"
            ) from None

    def _open_engine(self, av, cc, time_base: Fraction) -> None:
        """Encode with the stream's encoder, or (``self.plan.parallel``) with chunk encoders whose codec
        parameters are checked to equal the stream's: one encoder is opened now to compare, and used
        for the first chunk.  An encoder whose parameters differ per instance runs alone (a warning)."""
        make_reformatter = av.video.reformatter.VideoReformatter
        if self.plan.parallel:
            flags, rate = cc.flags, cc.framerate

            def new_context():
                chunk_cc = av.CodecContext.create(self.settings.codec, "w")
                chunk_cc.flags = flags  # the container's global header, as the stream's encoder has
                chunk_cc.framerate = rate
                self._configure(chunk_cc, time_base)
                if chunk_cc.extradata != cc.extradata:
                    raise EncodeError(f"{self.settings.codec} gave a chunk encoder other codec parameters")
                return chunk_cc

            try:
                spare = [new_context()]
            except EncodeError:
                self.report.warnings.append(
                    f"{self.settings.codec} encoders differ per instance; encoded with one encoder"
                )
            else:
                self.report.encoders = self.plan.describe()

                def open_context():
                    try:
                        return spare.pop()  # (atomic: two workers may ask at once)
                    except IndexError:
                        return new_context()

                self._engine = ChunkEncoders(
                    self.plan,
                    open_context,
                    self._picture,
                    make_reformatter,
                    time_base,
                )
                return
        self._engine = SerialEncode(cc, self._picture, make_reformatter(), time_base)

    # -- side streams (audio, subtitles) ---------------------------------------------------------------------
    def _open_side_streams(self, av) -> None:
        if self.side_source is None:
            return
        src = open_input(Path(self.side_source))
        fmt = self.container.format.name
        plan = plan_side_streams(
            src, fmt, self.container.supported_codecs, self.settings.audio, self.report, self.source
        )
        if not plan:
            src.close()
            return
        self._side = src
        self._side_map = {
            s.index: (self.container.add_stream_from_template(s), None)
            if target is None
            else (None, _AudioTranscoder(av, s, self.container, target))
            for s, target in plan
        }
        self._side_iter = src.demux(*[s for s, _ in plan])

    def _next_side_packet(self):
        import av

        try:
            for pkt in self._side_iter:
                if pkt.size == 0:
                    continue  # the demuxer's flush packet (a real packet may lack a dts: never test that)
                return pkt
        except (av.error.FFmpegError, UnicodeDecodeError, OverflowError) as exc:
            # A damaged input (only a --salvage run reaches here: the pre-flight refuses it otherwise).
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            self.report.warnings.append(f"audio/subtitle copy stopped early: the input is damaged ({reason})")
        return None

    def _in_order(self, pkt) -> bool:
        """Whether a side packet keeps its stream's decode times increasing, which muxers require; damaged
        input's packets that would not are dropped and counted (a --salvage run)."""
        if pkt.dts is None:
            return True
        last = self._side_dts.get(pkt.stream.index)
        if last is not None and pkt.dts <= last:
            self._side_damaged(pkt, "timestamps out of order")
            return False
        self._side_dts[pkt.stream.index] = pkt.dts
        return True

    @staticmethod
    def _packet_time(pkt) -> float | None:
        stamp = pkt.dts if pkt.dts is not None else pkt.pts
        return None if stamp is None else float(stamp * pkt.time_base)

    def _mux_side_until(self, seconds: float | None) -> None:
        """Mux side packets up to ``seconds`` of output time (all remaining when None)."""
        import av

        if self._side is None:
            return
        while True:
            if self._pending is None:
                self._pending = self._next_side_packet()
                if self._pending is None:
                    return
            pkt = self._pending
            t = self._packet_time(pkt)  # None: no timestamp at all, mux it where it falls
            if t is not None and self._rebase:
                if self._offset is None:
                    return  # no frame yet: nothing to align the cut to
                start = float(self._offset * self.time_base)
                if t < start - 1e-6:
                    self._pending = None  # before the cut
                    continue
                if seconds is None and t - start >= self._end_time - 1e-6:
                    self._pending = None  # after the cut: drop the rest
                    continue
                shift = round(start / pkt.time_base)
                t -= start
            if seconds is not None and t is not None and t > seconds:
                return
            self._pending = None
            if self._rebase and t is not None:
                pkt.pts = None if pkt.pts is None else pkt.pts - shift
                pkt.dts = None if pkt.dts is None else pkt.dts - shift
            out, transcoder = self._side_map[pkt.stream.index]
            if not self._in_order(pkt):
                continue
            try:
                if transcoder is not None:
                    for encoded in transcoder.packets(pkt):
                        self._mux(encoded)
                else:
                    pkt.stream = out
                    self._mux(pkt)
            except av.error.FFmpegError as exc:  # a damaged packet of the input (e.g. a broken ADTS header)
                self._side_damaged(pkt, exc.strerror or type(exc).__name__)

    def _side_damaged(self, pkt, reason: str) -> None:
        t = self._packet_time(pkt)
        self.report.side_dropped += 1
        if self.report.side_damage is None:
            at = f" at {t:.3f}s" if t is not None else ""
            self.report.side_damage = f"{pkt.stream.type} stream #{pkt.stream.index}{at}: {reason}"

    # -- video -------------------------------------------------------------------------------------------------
    def _write_failed(self, exc: BaseException) -> EncodeError:
        """The error for a write the system refused (disk full, quota, file-size limit, I/O error)."""
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        free = shutil.disk_usage(self.path.resolve().parent).free
        return EncodeError(f"writing the output failed: {reason} ({free / 1e9:.1f} GB free beside it)")

    def _mux(self, pkt) -> None:
        """Mux one packet of any stream.  A write the system refused (an OSError-type FFmpeg error) is the
        output's failure, whatever the packet; any other FFmpeg error is the caller's to judge."""
        import av

        try:
            self.container.mux(pkt)
        except av.error.FFmpegError as exc:
            if isinstance(exc, OSError):
                raise self._write_failed(exc) from None
            raise

    def _mux_video(self, packets) -> None:
        import av

        for pkt in packets:
            pkt.stream = self.stream  # (a chunk encoder's packets belong to no stream yet)
            try:
                self._mux(pkt)
            except av.error.FFmpegError as exc:
                raise EncodeError(
                    f"muxing failed at frame {self.report.frames}: {exc.strerror or exc}"
                ) from None
            t = self._packet_time(pkt)
            if t is not None:
                self._mux_side_until(t)

    def _picture(self, frame: Frame, reformatter):
        """The encoder's picture of ``frame``: its planes as they are (the device frame path made them in
        the encoder's format), or its RGB pixels converted by swscale (``reformatter``: one per thread)."""
        import av

        if frame.planes is not None:
            from vsr.media.planes import frame_from_planes

            return frame_from_planes(frame.planes, self.report.pix_fmt)
        image = frame.image
        if any(self._pad):
            image = np.pad(image, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        video = av.VideoFrame.from_ndarray(image, format="rgb48le" if image.dtype == np.uint16 else "rgb24")
        return reformatter.reformat(
            video,
            format=self.report.pix_fmt,
            dst_colorspace=self.matrix,
            src_color_range="JPEG",
            dst_color_range=self.range,
        )

    def write(self, frame: Frame) -> None:
        """Encode one frame (RGB pixels or YUV planes) at its source pts (counted in the writer's time base)."""
        started = time.perf_counter()
        if self._offset is None:
            self._offset = frame.pts
        pts = frame.pts - self._offset
        self._end_time = max(self._end_time, float(pts * self.time_base) + self._period)
        self._mux_video(self._engine.push(frame, pts, self.report.frames))
        self.report.frames += 1
        self.report.seconds += time.perf_counter() - started

    def _flush_video(self):
        """The packets the encoder(s) still hold (their delay; the last chunks)."""
        return self._engine.flush()

    def close(self) -> None:
        """Flush the encoder, mux the remaining side packets, finish the file."""
        import av

        started = time.perf_counter()
        try:
            self._mux_video(self._flush_video())
            self._mux_side_until(None)
            for _, transcoder in getattr(self, "_side_map", {}).values():
                if transcoder is not None:
                    for encoded in transcoder.flush():
                        self._mux(encoded)
            # The trailer and the last buffered bytes are written here: a refused write shows now, never
            # later (``_release`` closes quietly, for the failure paths).
            container, self.container = self.container, None
            container.close()
        except (av.error.FFmpegError, OSError) as exc:
            if isinstance(exc, OSError):
                raise self._write_failed(exc) from None
            raise EncodeError(f"finishing the output failed: {exc.strerror or exc}") from None
        finally:
            self._release()
            if self.report.side_dropped:
                self.report.warnings.append(
                    f"{self.report.side_dropped} damaged audio/subtitle packet(s) of the input were dropped "
                    f"(first: {self.report.side_damage})"
                )
            self.report.seconds += time.perf_counter() - started

    def abort(self) -> None:
        """Close everything without flushing (the caller deletes the file)."""
        self._release()

    def _release(self) -> None:
        if self._engine is not None:
            self._engine.abort()
        for c in (self._side, getattr(self, "container", None)):
            if c is not None:
                try:
                    c.close()
                except Exception:  # noqa: BLE001 - closing a broken container must not mask the real error
                    pass
        self._side = None
        self.container = None


class SegmentJoiner(VideoWriter):
    """Join video segments (each a file that starts with a keyframe, written by ``VideoWriter`` with the
    same settings, ``width`` and ``height``) into one output, packet for packet, with the side streams copied and interleaved
    exactly as ``VideoWriter`` does: the join re-encodes nothing.

    ``segments[0]``'s video stream is the template; every segment must carry the same codec parameters
    (extradata), which one encoder configuration always gives.
    """

    def __init__(self, path: Path, fmt: str, source: VideoInfo, segments: list[Path], **kwargs) -> None:
        self.segments = list(segments)
        self._extradata = None
        super().__init__(path, fmt, source, **kwargs)

    def _open_encoder(self, av, path: Path, fmt: str, time_base: Fraction) -> None:
        try:
            self.container = av.open(f"file:{path}", mode="w", format=fmt)
        except av.error.FFmpegError as exc:
            raise EncodeError(f"cannot create output {path}: {exc.strerror or exc}") from None
        template = open_input(self.segments[0])
        try:
            stream = main_video_stream(template)
            self._extradata = stream.codec_context.extradata
            self.stream = self.container.add_stream_from_template(stream)
        finally:
            template.close()
        self.stream.time_base = time_base
        # The source's rate, as the one-pass writer's stream has it (the template's is the H.264 timing
        # of the encoder's clock: Matroska would state 1000 fps).
        self.stream.codec_context.framerate = Fraction(self.source.avg_rate)
        if self.rotation:
            self.stream.set_display_rotation(self.rotation)

    def write(self, frame: Frame) -> None:
        raise TypeError("SegmentJoiner joins encoded segments; use join()")

    def _flush_video(self):
        return []

    def join(self) -> None:
        """Copy every segment's video packets in order (interleaving the side streams), then finish."""
        import av

        started = time.perf_counter()
        try:
            for path in self.segments:
                seg = open_input(path)
                try:
                    stream = main_video_stream(seg)
                    if stream.codec_context.extradata != self._extradata:
                        raise EncodeError(
                            f"segment {path.name} was encoded with other codec parameters than the first; "
                            "run again without --resume"
                        )
                    for pkt in seg.demux(stream):
                        if pkt.size == 0:
                            continue  # the demuxer's flush packet
                        pkt.stream = self.stream
                        self._mux_video([pkt])
                        self.report.frames += 1
                finally:
                    seg.close()
        except av.error.FFmpegError as exc:
            self.abort()
            raise EncodeError(f"joining the segments failed: {exc.strerror or exc}") from None
        except BaseException:
            self.abort()
            raise
        finally:
            self.report.seconds += time.perf_counter() - started
        self.close()


class _AudioTranscoder:
    """Decode one audio stream and re-encode it (AAC, or Opus for WebM) when copying is impossible."""

    def __init__(self, av, in_stream, container, codec: str) -> None:
        cc = in_stream.codec_context
        rate = 48000 if codec == "libopus" else (cc.sample_rate or 48000)
        self.out = container.add_stream(codec, rate=rate)
        self.out.codec_context.layout = cc.layout.name if cc.layout else "stereo"
        fmt = self.out.codec_context.codec.audio_formats[0].name
        self.out.codec_context.format = fmt
        self.resampler = av.AudioResampler(format=fmt, layout=self.out.codec_context.layout.name, rate=rate)

    def packets(self, pkt):
        for frame in pkt.decode():
            frame.pts = None
            for resampled in self.resampler.resample(frame):
                yield from self.out.encode(resampled)

    def flush(self):
        for resampled in self.resampler.resample(None):
            yield from self.out.encode(resampled)
        yield from self.out.encode(None)
