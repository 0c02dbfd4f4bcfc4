"""Encode through an external ``ffmpeg`` binary (``--ffmpeg-bin``), for encoders the PyAV wheel lacks.

Frames are converted exactly as in ``VideoWriter`` (same pixel format, matrix and padding), then sent
as raw video in a NUT stream, with their source timestamps, to ffmpeg's stdin; ffmpeg encodes them
and copies the audio and subtitles from the input itself.  The argv is built with ffmpeg-python and
run as a list, never through a shell; paths are given with the ``file:`` protocol, so names that
start with ``-`` cannot be read as options.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

from vsr.errors import EncodeError, UsageError
from vsr.media.probe import UNSPECIFIED, open_input
from vsr.media.writer import VideoWriter, _codec_options, plan_side_streams


def find_ffmpeg(spec: str) -> str:
    """Resolve ``--ffmpeg-bin`` (a path, or a name on PATH) to an executable."""
    path = shutil.which(spec) or (spec if os.access(spec, os.X_OK) and Path(spec).is_file() else None)
    if path is None:
        raise UsageError(f"--ffmpeg-bin {spec}: no such executable; give the path to an ffmpeg binary")
    return path


class FfmpegWriter(VideoWriter):
    """A ``VideoWriter`` whose encoder and muxer are an ffmpeg process."""

    def __init__(self, path, fmt, source, width, height, settings, time_base, rotation=0, side_source=None):
        self._ffmpeg = find_ffmpeg(settings.ffmpeg_bin)
        self._proc = None
        self._stderr = tempfile.TemporaryFile()
        super().__init__(path, fmt, source, width, height, settings, time_base, rotation, side_source)

    def _side_plan(self) -> list[tuple[int, str, str | None]]:
        """The shared copy/re-encode/drop plan for the input's audio and subtitles (ffmpeg carries them out),
        as (stream index, type, encoder or None) read before the probe container is closed."""
        import av

        if self.side_source is None:
            return []
        with av.open(os.devnull, "w", format=self._fmt) as probe:
            supported = probe.supported_codecs
        src = open_input(Path(self.side_source))
        try:
            plan = plan_side_streams(src, self._fmt, supported, self.settings.audio, self.report, self.source)
            return [(s.index, s.type, target) for s, target in plan]
        finally:
            src.close()

    def _open_encoder(self, av, path: Path, fmt: str, time_base: Fraction) -> None:
        import ffmpeg

        self._fmt = fmt
        plan = self._side_plan()
        settings = self.settings
        in_opts = {"format": "nut"}
        if self.rotation:
            # Keep the display matrix as metadata, as the PyAV path does; never turn the pixels.
            in_opts["display_rotation"] = str(self.rotation)
            in_opts["noautorotate"] = None
        video = ffmpeg.input("pipe:0", **in_opts)
        streams = [video["v:0"]]
        if plan:
            src = ffmpeg.input(f"file:{Path(self.side_source).resolve()}")
            streams += [src[str(index)] for index, _, _ in plan]  # -map 1:INDEX, in source order
        out_opts = {
            "format": fmt,
            "vcodec": settings.codec,
            "pix_fmt": self.report.pix_fmt,
            "fps_mode": "passthrough",
            "enc_time_base": "demux",
            "color_range": "pc" if self.range == "JPEG" else "tv",
            "colorspace": str(self.tag),
            **_codec_options(settings.codec, settings.quality, settings.preset),
            **settings.encoder_options,
        }
        if self.source.color_primaries != UNSPECIFIED:
            out_opts["color_primaries"] = str(self.source.color_primaries)
        if self.source.color_trc != UNSPECIFIED:
            out_opts["color_trc"] = str(self.source.color_trc)
        audio = [target or "copy" for _, kind, target in plan if kind == "audio"]
        for i, codec in enumerate(audio):
            out_opts[f"c:a:{i}"] = codec
        if len(audio) < len(plan):
            out_opts["c:s"] = "copy"
        argv = (
            ffmpeg.output(*streams, f"file:{path}", **out_opts)
            .global_args("-hide_banner", "-nostdin", "-loglevel", "error", "-copyts")
            .compile(cmd=self._ffmpeg, overwrite_output=True)
        )
        try:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr
            )
        except OSError as exc:
            raise EncodeError(f"cannot start {self._ffmpeg}: {exc.strerror}") from None
        self.container = av.open(self._proc.stdin, mode="w", format="nut")
        self.stream = self.container.add_stream("rawvideo", rate=Fraction(self.source.avg_rate))
        cc = self.stream.codec_context
        cc.width, cc.height, cc.pix_fmt = self.width, self.height, self.report.pix_fmt
        cc.time_base = time_base
        self.stream.time_base = time_base
        self._open_engine(
            av, cc, time_base
        )  # one encoder (rawvideo into the pipe): the plan is never parallel

    def _open_side_streams(self, av) -> None:
        """ffmpeg copies audio and subtitles itself (see ``_side_plan``)."""

    def _ffmpeg_error(self) -> str:
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read().decode(errors="replace").splitlines() if ln.strip()]
        return lines[-1] if lines else "no message"

    def write(self, frame) -> None:
        try:
            super().write(frame)
        except (BrokenPipeError, OSError, EncodeError):
            raise EncodeError(f"ffmpeg stopped: {self._ffmpeg_error()}") from None

    def close(self) -> None:
        pipe_failed = None  # writing into the pipe failed: ffmpeg's own message says why, if it exited
        try:
            super().close()
        except (OSError, EncodeError) as exc:
            pipe_failed = exc
        if self._proc is not None:
            if self._proc.stdin and not self._proc.stdin.closed:
                self._proc.stdin.close()
            code = self._proc.wait()
            self._proc = None
            if code != 0:
                raise EncodeError(f"ffmpeg failed (exit {code}): {self._ffmpeg_error()}")
        if pipe_failed is not None:
            raise EncodeError(f"ffmpeg stopped: {self._ffmpeg_error()}") from None

    def abort(self) -> None:
        super().abort()
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
