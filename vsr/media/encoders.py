"""How a ``VideoWriter`` turns frames into packets: one encoder, or several encoding chunks in parallel.

One encoder (``SerialEncode``) is what FFmpeg's CLI does: each frame is converted and encoded on the
calling (encode) thread, and the encoder's own threads use the cores.  When a GPU produces frames
faster than one encoder can take them, more threads stop helping (x264's frame threads are bound by
its lookahead), so ``ChunkEncoders`` runs ``K`` encoders at once, each on a *chunk*: ``N`` consecutive
frames encoded by a fresh encoder, which therefore starts with a keyframe.  Chunk ``c`` goes to worker
``c mod K``; its packets are muxed once it is finished, in chunk order, into the one output stream.  The
join is lossless (packets are copied, never re-encoded), and every encoder is opened with the settings
of the output stream's own, so all chunks carry the same codec parameters (checked).

Memory: each worker queues at most one chunk of frames, so a run holds ``K x N`` frames beyond the
encoders' own lookahead, whatever the video's length (``plan_encoders`` sizes ``N`` from a budget).
The price is a keyframe every ``N`` frames (``CHUNK_SECONDS``) instead of the encoder's own choice.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vsr.errors import ConfigError, EncodeError

CHUNK_SECONDS = 4.0  # frames per chunk, in seconds of video, when memory allows
MEMORY_BUDGET = 4 << 30  # bytes of queued frames, at most (and at most an eighth of the free memory)
MAX_ENCODERS = 8
_POLL = 0.1


@dataclass(frozen=True)
class EncoderPlan:
    """How many encoders run at once, how many frames each chunk holds, and threads per encoder."""

    encoders: int = 1
    chunk_frames: int = 0  # 0: one encoder for the whole stream
    threads: int = 0  # per encoder; 0 = FFmpeg's choice (the cores of the process's affinity)

    @property
    def parallel(self) -> bool:
        return self.encoders > 1

    def describe(self) -> dict[str, int]:
        return {"encoders": self.encoders, "chunk_frames": self.chunk_frames, "threads": self.threads}


def parse_encoders(value: str | int | None) -> int | None:
    """``--encoders``: a count, or ``auto`` (None)."""
    if value is None or value == "auto":
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--encoders must be a number or 'auto', got {value!r}") from None
    if not 1 <= count <= MAX_ENCODERS:
        raise ConfigError(f"--encoders must be between 1 and {MAX_ENCODERS}, got {count}")
    return count


def _free_memory() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 1 << 30


def frame_bytes(width: int, height: int, bit_depth: int) -> int:
    """Bytes of one output frame as a writer queues it: RGB, 16-bit samples above 8 bits (planes from the
    device path are smaller, so this bounds both)."""
    return width * height * 3 * (2 if bit_depth > 8 else 1)


def plan_encoders(
    requested: int | None,
    *,
    codec: str,
    fps: float,
    frame_bytes: int,
    fast_source: bool,
    cores: int | None = None,
    free_memory: int | None = None,
) -> EncoderPlan:
    """The encoders for one output.

    ``requested`` is ``--encoders`` (None: auto).  Auto runs one encoder unless frames arrive faster than
    one can take them (``fast_source``: the model runs on a GPU), and never parallelises a hardware
    encoder (NVENC has its own engine and a session limit).  With ``K`` encoders each gets ``cores / K``
    threads and chunks of ``CHUNK_SECONDS``, shortened so ``K`` queued chunks fit the memory budget;
    if a chunk would hold less than a quarter of that, fewer encoders run.
    """
    from vsr.config import core_limit, usable_cores

    cores = cores or usable_cores()
    if requested is None:
        hardware = codec.endswith(("_nvenc", "_qsv", "_vaapi", "_amf"))
        requested = 1 if hardware or not fast_source else max(1, min(MAX_ENCODERS, cores // 4))
    # One encoder: FFmpeg counts the process's affinity itself; a cap it cannot see is passed on.
    serial = EncoderPlan(threads=0 if core_limit() is None else cores)
    if requested <= 1:
        return serial
    budget = min(MEMORY_BUDGET, (free_memory if free_memory is not None else _free_memory()) // 8)
    rate = fps if fps and fps > 0 else 25.0
    for k in range(requested, 1, -1):
        chunk = min(round(rate * CHUNK_SECONDS), budget // max(1, k * frame_bytes))
        if chunk >= max(2, round(rate * CHUNK_SECONDS / 4)):
            return EncoderPlan(encoders=k, chunk_frames=int(chunk), threads=max(1, cores // k))
    return serial


# -- the two engines ------------------------------------------------------------------------------------------
Picture = Callable[[Any, Any], Any]  # (frame, reformatter) -> av.VideoFrame in the encoder's format


class SerialEncode:
    """One encoder (the output stream's own) on the calling thread."""

    def __init__(self, context, picture: Picture, reformatter, time_base) -> None:
        self.context = context
        self.picture = picture
        self.reformatter = reformatter
        self.time_base = time_base

    def push(self, frame, pts: int, index: int) -> list:
        video = self.picture(frame, self.reformatter)
        video.pts, video.time_base = pts, self.time_base
        return _encode(self.context, video, index)

    def flush(self) -> list:
        return _encode(self.context, None, None)

    def abort(self) -> None:
        pass


def _encode(context, video, index: int | None) -> list:
    import av

    try:
        return list(context.encode(video))
    except av.error.FFmpegError as exc:
        at = f"at frame {index}" if index is not None else "while flushing"
        raise EncodeError(f"encoding failed {at}: {exc.strerror or exc}") from None


@dataclass
class _Chunk:
    index: int
    frames: int = 0
    packets: list = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


_END_OF_CHUNK = object()


class ChunkEncoders:
    """``plan.encoders`` worker threads, each encoding whole chunks of ``plan.chunk_frames`` frames with a
    fresh encoder from ``open_context()``; ``push`` hands a frame over (blocking while its worker's queue
    holds a full chunk) and returns the packets of the chunks finished so far, in order."""

    def __init__(
        self,
        plan: EncoderPlan,
        open_context: Callable[[], Any],
        picture: Picture,
        make_reformatter: Callable[[], Any],
        time_base,
    ) -> None:
        self.plan = plan
        self.open_context = open_context
        self.picture = picture
        self.time_base = time_base
        self.chunks = 0  # chunks started
        self._stop = threading.Event()
        self._order: deque[_Chunk] = deque()  # chunks not yet handed back, oldest first
        self._current: _Chunk | None = None
        self._queues = [queue.Queue(maxsize=plan.chunk_frames + 1) for _ in range(plan.encoders)]
        self._threads = [
            threading.Thread(
                target=self._work, args=(q, make_reformatter()), name=f"encoder-{i}", daemon=True
            )
            for i, q in enumerate(self._queues)
        ]
        for t in self._threads:
            t.start()

    # -- the calling (encode) thread ---------------------------------------------------------------------
    def push(self, frame, pts: int, index: int) -> list:
        chunk = self._current
        if chunk is None or chunk.frames == self.plan.chunk_frames:
            if chunk is not None:
                self._put(chunk, _END_OF_CHUNK)
            chunk = self._current = _Chunk(index=self.chunks)
            self.chunks += 1
            self._order.append(chunk)
        self._put(chunk, (frame, pts, index))
        chunk.frames += 1
        return self._finished(wait=False)

    def flush(self) -> list:
        """End the last chunk, wait for every worker, return the remaining packets in order."""
        if self._current is not None:
            self._put(self._current, _END_OF_CHUNK)
            self._current = None
        packets = self._finished(wait=True)
        self._close_workers()
        return packets

    def abort(self) -> None:
        """Stop the workers after the frame each is encoding; their packets are dropped."""
        self._close_workers()

    def _put(self, chunk: _Chunk, item) -> None:
        q = self._queues[chunk.index % self.plan.encoders]
        while True:
            self._raise_failed()
            try:
                q.put((chunk, item), timeout=_POLL)
                return
            except queue.Full:
                continue

    def _raise_failed(self) -> None:
        failed = next((c.error for c in self._order if c.error is not None), None)
        if failed is not None:
            self._close_workers()
            raise failed

    def _finished(self, wait: bool) -> list:
        """Packets of the leading finished chunks (of all of them, with ``wait``)."""
        packets: list = []
        while self._order and (wait or self._order[0].done.is_set()):
            chunk = self._order[0]
            while not chunk.done.wait(_POLL):
                self._raise_failed()
            self._raise_failed()
            self._order.popleft()
            packets.extend(chunk.packets)
        return packets

    def _close_workers(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    # -- a worker thread -----------------------------------------------------------------------------------
    def _work(self, q: queue.Queue, reformatter) -> None:
        context = None
        while not self._stop.is_set():
            try:
                chunk, item = q.get(timeout=_POLL)
            except queue.Empty:
                continue
            try:
                if item is _END_OF_CHUNK:
                    if context is not None and chunk.error is None:
                        chunk.packets.extend(_encode(context, None, None))
                    context = None
                    chunk.done.set()
                elif chunk.error is None:  # (the rest of a failed chunk is skipped)
                    frame, pts, index = item
                    if context is None:
                        context = self.open_context()  # a fresh encoder: the chunk starts with a keyframe
                    video = self.picture(frame, reformatter)
                    video.pts, video.time_base = pts, self.time_base
                    chunk.packets.extend(_encode(context, video, index))
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, raised there
                chunk.error = exc
                context = None
                chunk.done.set()
