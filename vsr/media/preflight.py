"""Pre-flight: open and scan an input in a child process before anything else touches it.

A hostile or damaged file can make FFmpeg crash (a native fault kills the process that runs it) or
spin forever in its header parser.  So the first contact with every input happens here, in a child
process with a memory cap and a watchdog: it opens the file (the ``file`` protocol and the demuxer
allow-list of ``vsr.media.limits`` only), checks the limits, decodes the first frame, and demuxes every
packet once, counting what each stream delivers and where timestamps go backwards or demuxing stops.
A crash or a hang there is one clear error for one file.

    Preflight(info, streams, damage)   <- what the parent gets back (JSON on stdout)

``python -m vsr.media.preflight PATH LIMITS_JSON`` is the child's entry point.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vsr import errors
from vsr.errors import DecodeError, InputError, VsrError
from vsr.media.limits import InputLimits
from vsr.media.probe import VideoInfo, check_input_path


@dataclass
class StreamScan:
    """What one stream delivered when the whole file was demuxed."""

    index: int
    kind: str  # video | audio | subtitle | data | attachment
    packets: int = 0
    backwards: int = 0  # packets whose decode time is not after the previous one's (damage)
    first_backwards: float | None = None  # the time of the first of them


@dataclass
class Preflight:
    """The result of the pre-flight: the description, and what demuxing every packet found."""

    info: VideoInfo  # its ``packets``: the main video stream's packets (each should decode to one frame)
    streams: list[StreamScan] = field(default_factory=list)
    damage: str | None = None  # why demuxing stopped before the end of the file, if it did

    @property
    def video_packets(self) -> int:
        return self.info.packets or 0

    def problems(self) -> list[str]:
        """Container-level damage, in words: side streams out of time order or without a codec, an early end."""
        out = [
            f"{s.kind} stream #{s.index}: {s.backwards} packet(s) out of time order (from {s.first_backwards:.3f}s)"
            for s in self.streams
            if s.backwards and s.kind != "video"
        ]
        out.extend(
            f"stream #{side['index']} has {side['packets']} packets but no known codec (a damaged header)"
            for side in (*self.info.audio_streams, *self.info.subtitle_streams)
            if side.get("packets") and not side["codec"]
        )
        if self.damage:
            out.append(self.damage)
        return out

    def to_json(self) -> str:
        return json.dumps({"ok": asdict(self)})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preflight:
        info = {k: v for k, v in data["info"].items() if k not in ("color_names", "frames_estimate")}
        return cls(
            info=VideoInfo(**info),
            streams=[StreamScan(**s) for s in data["streams"]],
            damage=data["damage"],
        )


def preflight(path: Path | str, limits: InputLimits | None = None) -> Preflight:
    """Run the pre-flight of ``path`` in a child process; raise the child's typed error, or one for a
    crash or a timeout."""
    limits = limits or InputLimits()
    path = Path(path)
    real = check_input_path(path)
    size = real.stat().st_size
    limits.check_size(path, size)
    timeout = limits.probe_timeout(size)
    argv = [sys.executable, "-m", "vsr.media.preflight", str(real), json.dumps(asdict(limits))]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run(
            argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        raise DecodeError(
            f"reading {path} did not finish within {timeout:.0f}s (FFmpeg hung on it: the file is damaged "
            "or hostile); raise the limit with --probe-timeout for a very large file"
        ) from None
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name if -done.returncode in signal.valid_signals() else ""
        raise DecodeError(
            f"FFmpeg crashed reading {path} ({name or f'signal {-done.returncode}'}); the file is damaged or hostile"
        )
    try:
        answer = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = errors.safe_text(done.stderr.decode("utf-8", "replace").strip()[-200:])
        raise DecodeError(f"reading {path} failed (exit {done.returncode}): {tail or 'no output'}") from None
    if "error" in answer:
        kind = getattr(errors, answer["error"]["type"], InputError)
        kind = kind if isinstance(kind, type) and issubclass(kind, VsrError) else InputError
        raise kind(answer["error"]["message"])
    return Preflight.from_dict(answer["ok"])


# -- the child ---------------------------------------------------------------------------------------------------
def scan(path: Path, limits: InputLimits) -> Preflight:
    """Open ``path``, check it against ``limits``, describe it and demux every packet (in this process)."""
    import av

    from vsr.media.probe import describe, main_video_stream, open_input

    container = open_input(path)
    try:
        limits.check_streams(path, len(container.streams))
        video = main_video_stream(container)
        cc = video.codec_context
        if cc.width and cc.height:  # the header's size, before a frame is decoded at it
            limits.check_frame(path, cc.width, cc.height)
        tallies = {s.index: StreamScan(s.index, s.type) for s in container.streams}
        last_dts: dict[int, int] = {}
        first_frame, packets, damage = None, 0, None
        first_t = last_t = None
        try:
            for pkt in container.demux():
                if not pkt.size:
                    continue  # a flush packet
                tally = tallies[pkt.stream.index]
                tally.packets += 1
                if pkt.dts is not None:
                    previous = last_dts.get(tally.index)
                    if previous is not None and pkt.dts <= previous and tally.kind != "video":
                        tally.backwards += 1
                        if tally.first_backwards is None:
                            tally.first_backwards = float(pkt.dts * pkt.time_base)
                    last_dts[tally.index] = pkt.dts if previous is None else max(previous, pkt.dts)
                if pkt.stream.index != video.index or pkt.is_discard:
                    continue
                packets += 1
                if pkt.pts is not None:
                    t = float(pkt.pts * pkt.time_base)
                    first_t = t if first_t is None else min(first_t, t)
                    last_t = t if last_t is None else max(last_t, t)
                if first_frame is None:
                    try:
                        first_frame = next(iter(pkt.decode()), None)
                    except av.error.FFmpegError:
                        pass
                    if first_frame is not None:
                        limits.check_frame(path, first_frame.width, first_frame.height)
            if first_frame is None:  # a codec with a delay: the frame comes out when the decoder is drained
                try:
                    first_frame = next(iter(video.decode(None)), None)
                except av.error.FFmpegError:
                    pass
        except av.error.FFmpegError as exc:
            damage = f"demuxing stopped after {packets} video packets: {exc.strerror or type(exc).__name__}"
        except (UnicodeDecodeError, OverflowError) as exc:
            damage = f"demuxing stopped after {packets} video packets: {type(exc).__name__}"
        limits.check_extent(path, packets, (last_t - first_t) if first_t is not None else 0.0)
        info = dataclasses.replace(describe(container, path, first_frame), packets=packets)
        for side in (*info.audio_streams, *info.subtitle_streams):
            side["packets"] = tallies[side["index"]].packets
        return Preflight(info, list(tallies.values()), damage)
    finally:
        container.close()


def _cap_memory(limits: InputLimits) -> None:
    """Cap this process's address space, so a file declaring a giant frame fails here, not the machine."""
    try:
        import resource

        cap = (8 << 30) + 16 * limits.max_pixels
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, ValueError, OSError):
        pass


def main(argv: list[str]) -> int:
    path, limits = Path(argv[0]), InputLimits(**json.loads(argv[1]))
    _cap_memory(limits)
    try:
        result = scan(path, limits).to_json()
    except VsrError as exc:
        result = json.dumps({"error": {"type": type(exc).__name__, "message": str(exc)}})
    except MemoryError:
        message = f"not enough memory to open {path} (it declares more than it holds: damaged or hostile)"
        result = json.dumps({"error": {"type": "DecodeError", "message": message}})
    except Exception as exc:  # noqa: BLE001 - any other failure of FFmpeg or PyAV on this file is the file's
        message = f"cannot read {path}: {errors.one_line(exc)} ({type(exc).__name__}); the file is damaged"
        result = json.dumps({"error": {"type": "DecodeError", "message": message}})
    sys.stdout.write(result + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
