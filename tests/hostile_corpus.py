"""A seeded corpus of hostile and damaged media files, made at test time (no media is committed).

Six small valid seeds of different containers and codecs (H.264/AAC mp4 with the index at the end and
at the start, VP9/Opus webm, MPEG-4/MP3 avi, HEVC 10-bit/AAC mkv with subtitles, H.264/AAC MPEG-TS) are
mutated with a seeded generator: truncations at many offsets, byte bursts in headers and payload, bit
flips, zeroed ranges, duplicated and shuffled chunks, wrong extensions.  Hand-made cases add what
mutations do not reach: zero and one byte, huge declared dimensions, absurd frame rates, thousands of
streams, a FIFO and a device file, playlists and scripts that open other files, text, raw elementary
streams (valid ones too), non-monotonic and strongly variable timestamps, protocol names.

``build(root)`` writes every file and returns the cases; ``python tests/hostile_corpus.py DIR`` writes
them for a look by hand.  Every case must end within the contract (``tests/test_hostile_corpus.py``):
exit 0 with a faithful output, or exit 1 with one clear line; ``expect`` narrows that where the right
answer is known.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

SIZE, FPS, SECONDS = "96x64", 24, 1

SRT = "1\n00:00:00,000 --> 00:00:00,500\nhello\n\n2\n00:00:00,500 --> 00:00:00,900\nworld\n"


@dataclass(frozen=True)
class Case:
    """One corpus file: its path, the kind of damage, and what must happen ("ok", "fail" or "any")."""

    path: Path
    kind: str
    expect: str = "any"

    @property
    def name(self) -> str:
        return self.path.name


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg(*args: str) -> None:
    done = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if done.returncode:
        raise RuntimeError(f"ffmpeg failed making {args[-1]}: {done.stderr.strip()[-300:]}")


def _lavfi(size: str = SIZE, seconds: float = SECONDS) -> list[str]:
    return [
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
    ]  # fmt: skip


X264 = ["-c:v", "libx264", "-preset", "veryfast", "-g", "8", "-pix_fmt", "yuv420p"]


def make_seeds(root: Path) -> dict[str, Path]:
    """The valid seeds, one per container/codec family."""
    root.mkdir(parents=True, exist_ok=True)
    srt = root / "subs.srt"
    srt.write_text(SRT)
    seeds = {
        "mp4": (root / "seed.mp4", [*_lavfi(), *X264, "-c:a", "aac"]),
        "faststart": (root / "seed_faststart.mp4", [*_lavfi(), *X264, "-c:a", "aac", "-movflags", "+faststart"]),
        "webm": (
            root / "seed.webm",
            [*_lavfi(), "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "8", "-c:a", "libopus"],
        ),
        "avi": (root / "seed.avi", [*_lavfi(), "-c:v", "mpeg4", "-g", "8", "-q:v", "5", "-c:a", "libmp3lame"]),
        "mkv": (
            root / "seed.mkv",
            [
                *_lavfi(), "-i", str(srt), "-map", "0", "-map", "1", "-map", "2",
                "-c:v", "libx265", "-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error:keyint=8",
                "-c:a", "aac", "-c:s", "srt",
            ],
        ),
        "ts": (root / "seed.ts", [*_lavfi(), *X264, "-c:a", "aac", "-f", "mpegts"]),
    }  # fmt: skip
    for path, args in seeds.values():
        _ffmpeg(*args, str(path))
    return {kind: path for kind, (path, _) in seeds.items()}


# -- mutations ---------------------------------------------------------------------------------------------------
TRUNCATIONS = (0.01, 0.03, 0.06, 0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.88, 0.95, 0.99)


def mutants(seed_kind: str, data: bytes) -> list[tuple[str, str, bytes]]:
    """(label, kind, bytes) of every mutation of one seed, drawn from a generator seeded by its kind."""
    rng = _stable_rng(seed_kind)
    n = len(data)
    out: list[tuple[str, str, bytes]] = []
    for f in TRUNCATIONS:
        out.append((f"trunc{int(f * 100):02d}", "truncation", data[: max(1, int(n * f))]))
    for i in range(4):  # bursts of random bytes in the header (the first 4 KB, or the first tenth)
        at, size = rng.randrange(0, max(1, min(4096, n // 10))), rng.randint(4, 32)
        out.append((f"hburst{i}", "header-burst", data[:at] + rng.randbytes(size) + data[at + size :]))
    for i in range(4):  # bursts in the payload
        at, size = rng.randrange(n // 5, n - 64), rng.randint(16, 256)
        out.append((f"pburst{i}", "payload-burst", data[:at] + rng.randbytes(size) + data[at + size :]))
    for i in range(2):
        flipped = bytearray(data)
        for _ in range(16):
            flipped[rng.randrange(n)] ^= 1 << rng.randrange(8)
        out.append((f"flip{i}", "bit-flips", bytes(flipped)))
    for i in range(3):
        at, size = rng.randrange(0, n - 64), rng.randint(64, max(65, n // 8))
        out.append((f"zero{i}", "zeroed-range", data[:at] + bytes(min(size, n - at)) + data[at + size :]))
    for i in range(2):
        at, size = rng.randrange(0, n - 64), rng.randint(64, max(65, n // 6))
        to = rng.randrange(0, n)
        chunk = data[at : at + size]
        out.append((f"dup{i}", "duplicated-chunk", data[:to] + chunk + data[to:]))
    for i in range(2):
        cut = sorted(rng.sample(range(n // 10, n), 7))
        pieces = [data[a:b] for a, b in zip([0, *cut], [*cut, n], strict=True)]
        head, body = pieces[0], pieces[1:]
        rng.shuffle(body)
        out.append((f"shuffle{i}", "shuffled-chunks", head + b"".join(body)))
    return out


WRONG_EXTENSIONS = {
    "mp4": (".mkv", ".avi"),
    "faststart": (".webm", ".mov"),
    "webm": (".mp4", ".ts"),
    "avi": (".mp4", ".mkv"),
    "mkv": (".mp4", ".webm"),
    "ts": (".mp4", ".avi"),
}


def _stable_rng(*parts: object) -> random.Random:
    return random.Random(zlib.crc32(repr(parts).encode()))


# -- hand-made cases ---------------------------------------------------------------------------------------------
def _y4m(path: Path, width: int, height: int, rate: str, frames: int, marker: bytes = b"FRAME") -> Path:
    """A YUV4MPEG2 file of grey-ramp frames (``marker`` replaces the second frame's marker)."""
    plane = (width * height * 3) // 2
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{rate} Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            f.write((marker if i == 1 else b"FRAME") + b"\n")
            f.write(bytes([(i * 9 + j) % 256 for j in range(256)]) * (plane // 256) + bytes(plane % 256))
    return path


def _pyav_video(
    path: Path, pts_of, frames: int = 24, audio_only: bool = False, fmt: str = "matroska"
) -> Path:
    """An H.264 (intra, no B-frames) mkv whose i-th frame has pts ``pts_of(i)`` in 1/1000 s."""
    import av
    import numpy as np

    tb = Fraction(1, 1000)
    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        video.codec_context.time_base = tb
        video.time_base = tb
        video.codec_context.options = {"g": "1", "bf": "0", "preset": "veryfast"}
        audio = out.add_stream("aac", rate=48000) if audio_only else None
        if audio_only:  # the video stream is declared, and never gets a packet
            from vsr.media.sample import write_tone

            audio.codec_context.layout = "stereo"
            write_tone(out, audio, 440.0, 0.4)
            return path
        packets = []
        for i in range(frames):
            img = np.full((64, 96, 3), (i * 10) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, tb
            packets.extend(video.encode(frame))
        packets.extend(video.encode(None))
        for i, p in enumerate(packets):
            p.pts = p.dts = None
            p.pts = pts_of(i)
            p.dts = i if pts_of(i) >= i else pts_of(i)
            out.mux(p)
    return path


def _structural(root: Path, seeds: dict[str, Path]) -> list[Case]:
    cases: list[Case] = []

    def add(path: Path, kind: str, expect: str = "any") -> None:
        cases.append(Case(path, kind, expect))

    # Valid raw elementary streams (FFmpeg decodes them cleanly), also under a container's extension.
    annexb = root / "raw_annexb.h264"
    _ffmpeg(
        "-i",
        str(seeds["mp4"]),
        "-map",
        "0:v",
        "-c",
        "copy",
        "-bsf:v",
        "h264_mp4toannexb",
        "-f",
        "h264",
        str(annexb),
    )
    add(annexb, "raw-stream", "ok")
    named = root / "raw_annexb_named.mp4"
    named.write_bytes(annexb.read_bytes())
    add(named, "raw-stream", "ok")
    bigger = root / "raw_bigger.h264"
    _ffmpeg(*_lavfi("128x96"), "-map", "0:v", *X264, "-f", "h264", str(bigger))
    resized = root / "raw_resized.h264"
    resized.write_bytes(annexb.read_bytes() + bigger.read_bytes())
    bigger.unlink()
    add(resized, "size-change", "any")
    add(_y4m(root / "clip.y4m", 96, 64, "24:1", 12), "raw-stream", "ok")
    add(_y4m(root / "bad_marker.y4m", 96, 64, "24:1", 6, marker=b"FRAMX"), "raw-stream", "fail")
    # Huge declared dimensions and absurd frame rates.
    huge = root / "huge_dims.y4m"
    huge.write_bytes(b"YUV4MPEG2 W60000 H60000 F24:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(4096))
    add(huge, "huge-dimensions", "fail")
    wide = root / "huge_wide.y4m"
    wide.write_bytes(b"YUV4MPEG2 W2000000000 H2 F24:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(4096))
    add(wide, "huge-dimensions", "fail")
    add(_y4m(root / "rate_fast.y4m", 96, 64, "1000000:1", 8), "absurd-rate", "any")
    add(_y4m(root / "rate_slow.y4m", 96, 64, "1:100", 4), "absurd-rate", "any")
    add(_y4m(root / "rate_zero.y4m", 96, 64, "0:1", 4), "absurd-rate", "any")
    # Timestamps: strongly variable (valid) and going backwards.
    add(_pyav_video(root / "vfr_quadratic.mkv", lambda i: 10 * i * i), "variable-rate", "ok")
    add(
        _pyav_video(root / "backwards.mkv", lambda i: i * 40 + (200 if i in (5, 6) else 0)),
        "non-monotonic",
        "fail",
    )
    add(_pyav_video(root / "audio_only.mkv", None, audio_only=True), "no-video", "fail")
    # Many streams.
    tone = root / "tone.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=0.2", "-c:a", "aac", str(tone))
    many = root / "many_streams.mkv"
    maps = [a for _ in range(999) for a in ("-map", "1:a")]
    _ffmpeg("-i", str(seeds["mp4"]), "-i", str(tone), "-map", "0:v", *maps, "-c", "copy", str(many))
    add(many, "many-streams", "fail")
    some = root / "some_streams.mkv"
    maps = [a for _ in range(12) for a in ("-map", "1:a")]
    _ffmpeg("-i", str(seeds["mp4"]), "-i", str(tone), "-map", "0:v", *maps, "-c", "copy", str(some))
    add(some, "several-streams", "ok")
    add(tone, "no-video", "fail")
    # Files that open other files, and text.
    script = root / "ffconcat_script.mp4"
    script.write_text(f"ffconcat version 1.0\nfile '{seeds['mp4']}'\n")
    add(script, "script", "fail")
    hls = root / "playlist.m3u8"
    hls.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{seeds['ts']}\n#EXT-X-ENDLIST\n")
    add(hls, "playlist", "fail")
    hls_named = root / "playlist_named.mp4"
    hls_named.write_text(hls.read_text())
    add(hls_named, "playlist", "fail")
    dash = root / "manifest.mpd"
    dash.write_text(
        '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'mediaPresentationDuration="PT1S"><Period><AdaptationSet><Representation id="1" bandwidth="1">'
        f"<BaseURL>{seeds['mp4']}</BaseURL></Representation></AdaptationSet></Period></MPD>\n"
    )
    add(dash, "playlist", "fail")
    text = root / "notes.txt"
    text.write_text("A plain text file is not a video.\n" * 200)
    add(text, "text", "fail")
    subs = root / "subtitles_named.mp4"
    subs.write_text(SRT)
    add(subs, "text", "fail")
    escape = root / "escape_title.mkv"
    _ffmpeg(
        "-i", str(seeds["mp4"]), "-c", "copy", "-metadata", "title=\x1b[2J\x1b]0;pwned\x07evil", str(escape)
    )
    add(escape, "metadata", "ok")
    # Tiny, random, special files.
    (root / "zero.mp4").write_bytes(b"")
    add(root / "zero.mp4", "tiny", "fail")
    (root / "one.mp4").write_bytes(b"\x00")
    add(root / "one.mp4", "tiny", "fail")
    (root / "random.mp4").write_bytes(_stable_rng("random").randbytes(20000))
    add(root / "random.mp4", "random", "fail")
    fifo = root / "fifo.mp4"
    os.mkfifo(fifo)
    add(fifo, "special-file", "fail")
    device = root / "devzero.mp4"
    device.symlink_to("/dev/zero")
    add(device, "special-file", "fail")
    link = root / "symlink.mp4"
    link.symlink_to(seeds["mp4"])
    add(link, "symlink", "ok")
    # Names that are protocols or URLs: they must be taken as (missing) local files, never opened.
    for name in ("concat:seed.mp4|seed.mp4", "http:example.invalid", "pipe:0"):
        add(root / name, "protocol-name", "fail")
    return cases


def build(root: Path) -> list[Case]:
    """Write the whole corpus under ``root``; return its cases (seeds included, expected to pass)."""
    root = Path(root)
    seeds = make_seeds(root / "seeds")
    cases = [Case(path, "seed", "ok") for path in seeds.values()]
    mutated = _mkdir(root / "mutants")
    for seed_kind, path in seeds.items():
        data = path.read_bytes()
        for label, kind, blob in mutants(seed_kind, data):
            out = mutated / f"{seed_kind}_{label}{path.suffix}"
            out.write_bytes(blob)
            cases.append(Case(out, kind))
        for ext in WRONG_EXTENSIONS[seed_kind]:
            out = mutated / f"{seed_kind}_as{ext}"
            out.write_bytes(data)
            cases.append(Case(out, "wrong-extension", "ok"))
    cases.extend(_structural(_mkdir(root / "made"), seeds))
    return cases


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    target = _mkdir(Path(sys.argv[1]))
    for case in build(target):
        print(f"{case.kind:18} {case.expect:5} {case.path}")
