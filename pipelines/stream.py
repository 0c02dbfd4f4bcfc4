"""Threads joined by bounded queues: the streaming backbone of ``vsr enhance``.

``run_stage`` is the whole loop: frames from a decode thread, through a stage in
batches on the calling thread, into an encode thread.  Frames stay whole all the
way (pixels with their timestamp), so nothing has to be paired again.

A producer thread fills a bounded queue from an iterator (decoding); a consumer
thread drains one into a function (encoding); the main thread computes in
between.  A sentinel ends each queue, a shared stop event ends every stage
early, a worker's exception is re-raised in the main thread with its original
type, and threads are always joined.  Memory is bounded by the queue sizes,
not by the length of the video.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from vsr.errors import DecodeError

_END = object()
_POLL = 0.1
# A decode thread that hands over nothing for this long is stuck inside FFmpeg (the pre-flight has
# demuxed the whole file already, so a stall here is a decoder hang on a hostile stream).
STALL_SECONDS = 300.0


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class BackgroundIterator:
    """Iterate ``source`` in a daemon thread, ``maxsize`` items ahead of the consumer."""

    def __init__(
        self,
        source: Iterable[Any],
        maxsize: int,
        stop: threading.Event,
        name: str = "producer",
        stall_seconds: float | None = None,
    ) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._stop = stop
        self.stall_seconds = stall_seconds  # waiting longer than this for an item is a hang
        self.stalled = False
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterable[Any]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, re-raised there
            self._put(_Failure(exc))

    def __iter__(self) -> Iterator[Any]:
        waiting_since = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=_POLL)
            except queue.Empty:
                if self._stop.is_set():
                    return  # another stage failed or the run was interrupted; its error is raised there
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError(
                        f"{self._thread.name} thread ended without finishing its stream"
                    ) from None
                waited = time.monotonic() - waiting_since
                if self.stall_seconds is not None and waited > self.stall_seconds:
                    self.stalled = True  # the thread is stuck in native code: it cannot be joined
                    raise DecodeError(
                        f"{self._thread.name} made no progress for {waited:.0f}s (FFmpeg hung on the input); "
                        "the file is damaged or hostile"
                    ) from None
                continue
            waiting_since = time.monotonic()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def join(self) -> None:
        if not self.stalled:  # a stuck daemon thread is left behind; the process can still exit
            self._thread.join()


class BackgroundConsumer:
    """Feed items to ``sink`` in a daemon thread through a queue of ``maxsize``; ``close`` waits for it."""

    def __init__(
        self, sink: Callable[[Any], None], maxsize: int, stop: threading.Event, name: str = "consumer"
    ) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._stop = stop
        self._sink = sink
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=_POLL)
                except queue.Empty:
                    if self._stop.is_set():
                        return
                    continue
                if item is _END:
                    return
                self._sink(item)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread by put/close
            self._error = exc
            self._stop.set()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: Any) -> None:
        """Queue ``item``, waiting while the queue is full; raises the worker's error if it failed."""
        while True:
            self._raise_if_failed()
            if self._stop.is_set():
                raise RuntimeError(f"{self._thread.name} stopped")
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Send the end marker, wait for the worker, and raise its error if it had one."""
        if self._thread.is_alive() and not self._stop.is_set():
            self.put(_END)
        self._thread.join()
        self._raise_if_failed()

    def join(self) -> None:
        self._thread.join()


class Stage(Protocol):
    """Frames in, upscaled frames out: every frame exactly once, in order (a stage may hold some back)."""

    def push(self, frames: list[Any]) -> list[Any]: ...
    def flush(self) -> list[Any]: ...


def run_stage(
    source: Iterable[Any],
    stage: Stage,
    sink: Callable[[Any], None],
    batch: int,
    on_frames: Callable[[int], None] | None = None,
    piece_of: Callable[[Any], int] | None = None,
    fresh_stage: Callable[[], Stage] | None = None,
    stall_seconds: float | None = STALL_SECONDS,
) -> None:
    """Decode thread -> ``stage`` in batches of ``batch`` (this thread) -> ``sink`` in an encode thread.

    With ``piece_of`` (a frame -> the independent piece it belongs to, non-decreasing) no batch spans
    two pieces, and at each new piece the stage is flushed and replaced by ``fresh_stage()``: every
    piece is computed exactly as if the run had started there (what makes ``--resume`` repeatable).
    Returns when every frame has reached ``sink``; on any error (or Ctrl-C) both threads are stopped and
    joined before the error propagates with its type.  A decode thread that delivers nothing for
    ``stall_seconds`` is a hang: the run fails with a ``DecodeError`` (the stuck thread is abandoned).
    """
    stop = threading.Event()
    depth = 2 * batch + 2
    producer = BackgroundIterator(
        source, maxsize=depth, stop=stop, name="decode", stall_seconds=stall_seconds
    )
    consumer = BackgroundConsumer(sink, maxsize=depth, stop=stop, name="encode")

    def emit(frames: list[Any]) -> None:
        for frame in frames:
            consumer.put(frame)
        if on_frames is not None and frames:
            on_frames(len(frames))

    try:
        pending: list[Any] = []
        piece = None
        for frame in producer:
            if piece_of is not None:
                now = piece_of(frame)
                if piece is not None and now != piece:  # a new piece: finish the last one's frames
                    if pending:
                        emit(stage.push(pending))
                        pending = []
                    emit(stage.flush())
                    stage = fresh_stage() if fresh_stage is not None else stage
                piece = now
            pending.append(frame)
            if len(pending) >= batch:
                emit(stage.push(pending))
                pending = []
        if pending:
            emit(stage.push(pending))
        emit(stage.flush())
        consumer.close()
    except BaseException:
        stop.set()
        producer.join()
        consumer.join()
        raise
    finally:
        stop.set()
