"""What vsr agrees to open: the demuxers it accepts and the size of what it will decode and encode.

Every input passes these before a frame is decoded (``vsr.media.preflight`` applies them in a
contained child process); each limit has a flag to raise it, and the message names that flag.
Only real video demuxers are accepted: playlists and scripts that open other files (ffconcat, HLS,
DASH), text-to-video demuxers (tty) and image sequences are refused, and FFmpeg never even runs their
readers (``format_whitelist``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from vsr.errors import ConfigError, InputError, OutputError, UnsupportedError

# FFmpeg demuxer names (what ``av.open(...).format.name`` gives, which may list several, comma-separated).
ALLOWED_DEMUXERS = (
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2",  # QuickTime / MP4
    "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "asf", "mxf", "ogg", "nut", "dv", "gxf", "wtv",
    "ivf", "obu", "h264", "hevc", "vvc", "m4v", "mpegvideo", "cavsvideo", "vc1", "dirac", "av1",  # streams
    "yuv4mpegpipe", "mjpeg", "avs2", "avs3", "evc",
)  # fmt: skip
FORMAT_WHITELIST = ",".join(ALLOWED_DEMUXERS)

# The largest frame an encoder opens, where it is below FFmpeg's own image-size bound (which every encoder
# has); measured by opening each encoder with PyAV 18 / FFmpeg 8.1 at sizes around the bound.
ENCODER_MAX_SIDE = {
    "libx264": (16384, 16384),
    "libsvtav1": (16384, 8704),
}


def ffmpeg_image_ok(width: int, height: int) -> bool:
    """FFmpeg's own bound on a picture (``av_image_check_size``): (w + 128) * (h + 128) < INT_MAX / 8."""
    return width > 0 and height > 0 and (width + 128) * (height + 128) < (2**31 - 1) // 8


@dataclass(frozen=True)
class InputLimits:
    """How big an input (and the output it makes) may be; each has a flag of ``vsr enhance``/``vsr probe``."""

    max_pixels: int = 8192 * 8192  # per input frame (--max-pixels)
    max_output_pixels: int = 8192 * 4352  # per output frame, about 8K (--max-output-pixels)
    max_frames: int = 10_000_000  # about four days at 30 fps (--max-frames)
    max_seconds: float = 48 * 3600.0  # (--max-duration)
    max_streams: int = 64  # (--max-streams)
    max_bytes: int = 1 << 40  # 1 TiB (--max-input-size)
    probe_seconds: float = 0.0  # the pre-flight watchdog; 0 = 30 s + 1 s per 50 MB (--probe-timeout)

    def validate(self) -> InputLimits:
        for name, value in asdict(self).items():
            if value < 0 or (value == 0 and name != "probe_seconds"):
                raise ConfigError(f"{FLAGS[name]} must be more than 0, got {value}")
        return self

    def probe_timeout(self, size: int) -> float:
        """Seconds the pre-flight may take for a file of ``size`` bytes before it is stopped."""
        return self.probe_seconds or 30.0 + size / 50e6

    # -- the checks, each naming its flag -------------------------------------------------------------------
    def check_size(self, path, size: int) -> None:
        if size > self.max_bytes:
            raise InputError(
                f"input is {_bytes(size)}, over the {_bytes(self.max_bytes)} limit: {path}; "
                f"raise it with {FLAGS['max_bytes']}"
            )

    def check_streams(self, path, count: int) -> None:
        if count > self.max_streams:
            raise InputError(
                f"input has {count} streams, over the limit of {self.max_streams}: {path}; "
                f"raise it with {FLAGS['max_streams']}"
            )

    def check_frame(self, path, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise UnsupportedError(f"input declares a {width}x{height} picture: {path}; the file is damaged")
        if width * height > self.max_pixels:
            raise InputError(
                f"input frames are {width}x{height} ({_pixels(width * height)}), over the "
                f"{_pixels(self.max_pixels)} limit: {path}; raise it with {FLAGS['max_pixels']}"
            )

    def check_extent(self, path, frames: int, seconds: float) -> None:
        if frames > self.max_frames:
            raise InputError(
                f"input has {frames} frames, over the limit of {self.max_frames}: {path}; "
                f"raise it with {FLAGS['max_frames']}"
            )
        if seconds > self.max_seconds:
            raise InputError(
                f"input lasts {seconds:.2f}s, over the {self.max_seconds:g}s limit: {path}; "
                f"raise it with {FLAGS['max_seconds']}"
            )

    def check_output(self, width: int, height: int, codec: str) -> None:
        """The output frame against this limit, the encoder's largest frame and FFmpeg's, before any work."""
        if width * height > self.max_output_pixels:
            raise OutputError(
                f"the output would be {width}x{height} ({_pixels(width * height)} per frame), over the "
                f"{_pixels(self.max_output_pixels)} limit; use --scale 2, or raise the limit with "
                f"{FLAGS['max_output_pixels']} (memory grows with it)"
            )
        max_w, max_h = ENCODER_MAX_SIDE.get(codec, (1 << 30, 1 << 30))
        if width > max_w or height > max_h:
            raise OutputError(
                f"the output would be {width}x{height}, beyond what {codec} can encode (at most "
                f"{max_w}x{max_h}); use --scale 2, or --codec libvpx-vp9 (wider frames, still within FFmpeg's bound)"
            )
        if not ffmpeg_image_ok(width, height):
            raise OutputError(
                f"the output would be {width}x{height}, beyond FFmpeg's picture-size bound "
                "((w+128)*(h+128) under 268 million); use --scale 2 or a smaller piece of the frame"
            )


FLAGS = {
    "max_pixels": "--max-pixels",
    "max_output_pixels": "--max-output-pixels",
    "max_frames": "--max-frames",
    "max_seconds": "--max-duration",
    "max_streams": "--max-streams",
    "max_bytes": "--max-input-size",
    "probe_seconds": "--probe-timeout",
}


def _pixels(n: int) -> str:
    return f"{n / 1e6:.1f} MP" if n >= 100_000 else f"{n} pixels"


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def parse_bytes(text: str) -> int:
    """``"200G"``, ``"1.5T"``, ``"4096"`` -> bytes (binary units), for ``--max-input-size``."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    raw = str(text).strip().upper().removesuffix("B")
    unit = raw[-1:] if raw[-1:] in units and raw[-1:] else ""
    try:
        value = float(raw[: len(raw) - len(unit)] if unit else raw)
    except ValueError:
        raise ConfigError(f"--max-input-size must be a size such as 200G or 4096, got {text!r}") from None
    return int(value * units[unit])
