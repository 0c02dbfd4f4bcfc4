"""Encode RGB frames with their source timestamps, and copy the source's audio and subtitles.

The writer keeps what makes a video faithful: each frame's pts in the source
time base (so variable frame rate survives: the *encoder's* time base is set,
not only the stream's), the display rotation, the colour tags and matrix, the
sample aspect ratio, and every audio stream copied packet for packet (re-encoded
only when the output container cannot hold the codec).  Side packets come from
a second demuxer over the input and are interleaved by time as video packets
are produced, so nothing accumulates in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from vsr.errors import EncodeError, UsageError
from vsr.media.probe import VideoInfo, guess_matrix, open_input

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
    return "libvpx-vp9" if container_for(path) == "webm" else "libx264"


@dataclass
class EncodeSettings:
    """Encoder choices from the CLI; ``None`` means the codec's sensible default."""

    codec: str = "libx264"
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    audio: bool = True


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


def plan_side_streams(src, fmt: str, supported: set[str], audio: bool, report: WriterReport) -> list:
    """What happens to each audio and subtitle stream of ``src`` in a ``fmt`` output, in source order.

    Returns ``(stream, None)`` to copy a stream packet for packet, ``(stream, encoder)`` to re-encode audio
    the container cannot hold (AAC, or Opus for WebM); subtitles it cannot hold are dropped.  Records
    each decision in ``report``.  Both encoder backends follow this one plan.
    """
    plan = []
    for s in src.streams:
        if s.type not in ("audio", "subtitle") or (s.type == "audio" and not audio):
            continue
        name = s.codec_context.name if s.codec_context else "unknown"
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
    """Write frames to ``path`` in ``fmt`` with ``source``'s timing, tags and side streams."""

    def __init__(
        self,
        path: Path,
        fmt: str,
        source: VideoInfo,
        width: int,
        height: int,
        settings: EncodeSettings,
        time_base: Fraction,
    ) -> None:
        import av

        self.report = WriterReport(codec=settings.codec, container=fmt)
        self.source = source
        self.settings = settings
        self.high_bit_depth = source.bit_depth > 8
        self._side = None
        self._pending = None
        self._video_started = False
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
        self.range = "JPEG" if source.color_range == 2 or source.pix_fmt.startswith("yuvj") else "MPEG"

        self._open_encoder(av, path, fmt, time_base)
        self._reformatter = av.video.reformatter.VideoReformatter()
        self._open_side_streams(av)

    def _open_encoder(self, av, path: Path, fmt: str, time_base: Fraction) -> None:
        """Create the output container and the video encoder."""
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
        cc = self.stream.codec_context
        cc.width, cc.height, cc.pix_fmt = self.width, self.height, self.report.pix_fmt
        cc.time_base = time_base  # the encoder's own time base: what keeps VFR timestamps exact
        self.stream.time_base = time_base
        cc.color_range = 2 if self.range == "JPEG" else 1
        cc.colorspace = self.tag
        if source.color_primaries != 2:
            cc.color_primaries = source.color_primaries
        if source.color_trc != 2:
            cc.color_trc = source.color_trc
        crf = settings.crf if settings.crf is not None else DEFAULT_CRF.get(settings.codec, 20)
        cc.options = _codec_options(settings.codec, crf, settings.preset)
        cc.thread_count = 0
        if source.rotation:
            self.stream.set_display_rotation(source.rotation)
        try:
            cc.open()
        except av.error.FFmpegError as exc:
            self.container.close()
            hint = (
                "; this machine has no NVIDIA encoder, use --codec libx264"
                if "nvenc" in settings.codec
                else ""
            )
            raise EncodeError(
                f"cannot open the {settings.codec} encoder: {exc.strerror or exc}{hint}"
            ) from None

    # -- side streams (audio, subtitles) ---------------------------------------------------------------------
    def _open_side_streams(self, av) -> None:
        src = open_input(Path(self.source.path))
        fmt = self.container.format.name
        plan = plan_side_streams(src, fmt, self.container.supported_codecs, self.settings.audio, self.report)
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
        for pkt in self._side_iter:
            if pkt.dts is None:
                continue  # demuxer flush packets
            return pkt
        return None

    def _mux_side_until(self, seconds: float | None) -> None:
        """Mux side packets up to ``seconds`` (all remaining when None)."""
        if self._side is None:
            return
        while True:
            if self._pending is None:
                self._pending = self._next_side_packet()
                if self._pending is None:
                    return
            pkt = self._pending
            if seconds is not None and float(pkt.dts * pkt.time_base) > seconds:
                return
            self._pending = None
            out, transcoder = self._side_map[pkt.stream.index]
            if transcoder is not None:
                for encoded in transcoder.packets(pkt):
                    self.container.mux(encoded)
            else:
                pkt.stream = out
                self.container.mux(pkt)

    # -- video -------------------------------------------------------------------------------------------------
    def _mux_video(self, packets) -> None:
        for pkt in packets:
            self.container.mux(pkt)
            self._video_started = True
            if pkt.dts is not None:
                self._mux_side_until(float(pkt.dts * pkt.time_base))

    def write(self, image: np.ndarray, pts: int, time_base: Fraction) -> None:
        """Encode one RGB frame at its source ``pts`` (in ``time_base``)."""
        import av

        if any(self._pad):
            image = np.pad(image, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(image, format="rgb48le" if image.dtype == np.uint16 else "rgb24")
        frame = self._reformatter.reformat(
            frame,
            format=self.report.pix_fmt,
            dst_colorspace=self.matrix,
            src_color_range="JPEG",
            dst_color_range=self.range,
        )
        frame.pts = pts
        frame.time_base = time_base
        try:
            self._mux_video(self.stream.encode(frame))
        except av.error.FFmpegError as exc:
            raise EncodeError(
                f"encoding failed at frame {self.report.frames}: {exc.strerror or exc}"
            ) from None
        self.report.frames += 1

    def close(self) -> None:
        """Flush the encoder, mux the remaining side packets, finish the file."""
        import av

        try:
            self._mux_video(self.stream.encode(None))
            self._mux_side_until(None)
            for _, transcoder in getattr(self, "_side_map", {}).values():
                if transcoder is not None:
                    for encoded in transcoder.flush():
                        self.container.mux(encoded)
        except av.error.FFmpegError as exc:
            raise EncodeError(f"finishing the output failed: {exc.strerror or exc}") from None
        finally:
            self._release()

    def abort(self) -> None:
        """Close everything without flushing (the caller deletes the file)."""
        self._release()

    def _release(self) -> None:
        for c in (self._side, getattr(self, "container", None)):
            if c is not None:
                try:
                    c.close()
                except Exception:  # noqa: BLE001 - closing a broken container must not mask the real error
                    pass
        self._side = None
        self.container = None


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
