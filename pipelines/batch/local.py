"""The local engine: long-lived worker processes, each enhancing many files with its models loaded once.

    parent (scheduler, ledger, progress) ──pipe──► worker 0 (spawned; CUDA_VISIBLE_DEVICES=0) ─► run_task
                                         ──pipe──► worker 1 ...
Workers are started with the spawn method: a forked child of a parent that has used torch or OpenCV
can hang in their thread pools (see the trainer's DataLoader note).  A worker that dies (a decoder
segfault, the OOM killer) or runs past ``--timeout`` on one file is killed and replaced; only that
file's attempt is lost.  Each worker dies with the parent (``PR_SET_PDEATHSIG``), so ``kill -9`` of the
batch leaves no orphan still writing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from vsr.errors import EngineError, one_line
from vsr.pipelines.batch.job import DIED, ERROR, TIMEOUT, Task, died_message, error_row

POLL_S = 0.2
FRAMES_EVERY_S = 0.25
START_GRACE_S = 600.0  # a worker that has not started its file after this long (import hang) is replaced
MAX_START_FAILURES = 3


def visible_gpus() -> list[str]:
    """CUDA device ids this process may use, found without importing torch."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and not g.strip().startswith("-")]
    try:
        return [str(i) for i in range(len(os.listdir("/proc/driver/nvidia/gpus")))]
    except OSError:
        return []


def core_shares(workers: int) -> list[list[int] | None]:
    """Disjoint shares of this process's cores, one per worker (None where there are fewer cores than
    workers, or no affinity to share): each worker's torch threads, encoders and detectors then size
    themselves to its share instead of each taking the whole machine."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return [None] * workers
    if workers <= 1 or len(cores) < workers:
        return [None] * workers
    return [cores[i * len(cores) // workers : (i + 1) * len(cores) // workers] for i in range(workers)]


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when the batch dies; elsewhere, poll for it in a thread."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:  # PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            return
    except (OSError, AttributeError):
        pass
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds enhance, which removes its temporary output


def worker_main(conn, parent: int, gpu: str | None, cores: list[int] | None = None) -> None:
    """A worker process: receive tasks, run them with one model cache, send rows back, until told to stop."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before torch is imported
    if cores:
        os.sched_setaffinity(0, cores)  # before torch sizes its thread pool
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _terminate)
    import vsr.pipelines.upscale  # noqa: F401  (torch, once, before the first file)
    from vsr.models.registry import ModelCache
    from vsr.pipelines.batch.job import FaultHook, run_task

    cache, hook = ModelCache(), FaultHook.from_env()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        conn.send(("started", task.key))
        pending, last = 0, time.monotonic()

        def on_frames(n: int, task: Task = task) -> None:
            nonlocal pending, last
            pending += n
            hook.on_frames(task, n)
            now = time.monotonic()
            if now - last >= FRAMES_EVERY_S:
                conn.send(("frames", task.key, pending))
                pending, last = 0, now

        try:
            row = run_task(task, cache, on_frames)
        except Exception as exc:  # e.g. the sidecar cannot be written: a row, the worker lives on
            row = error_row(task, ERROR, type(exc).__name__, f"internal error: {one_line(exc)}", False)
        conn.send(("result", task.key, row))


@dataclass
class _Slot:
    """One worker process and the task it holds."""

    index: int
    gpu: str | None
    cores: list[int] | None = None
    process: Any = None
    conn: Any = None
    ready: bool = False
    task: Task | None = None
    sent: float = 0.0
    started: float | None = None
    timed_out: bool = False

    @property
    def name(self) -> str:
        return f"w{self.index}"


class LocalEngine:
    """Run tasks on ``workers`` spawned processes (pinned round-robin to ``gpus`` when given)."""

    def __init__(self, workers: int, timeout: float | None, gpus: list[str] | None = None) -> None:
        self.workers, self.timeout, self.gpus = workers, timeout, gpus or []
        self._ctx = None

    def _start(self, slot: _Slot) -> None:
        import multiprocessing

        self._ctx = self._ctx or multiprocessing.get_context("spawn")
        parent_conn, child_conn = self._ctx.Pipe()
        slot.process = self._ctx.Process(
            target=worker_main,
            args=(child_conn, os.getpid(), slot.gpu, slot.cores),
            name=f"vsr-batch-{slot.name}",
        )
        slot.process.start()
        child_conn.close()
        slot.conn, slot.ready, slot.task, slot.started, slot.timed_out = parent_conn, False, None, None, False

    def _stop(self, slot: _Slot, kill: bool = False, graceful: bool = True) -> None:
        if slot.process is None:
            return
        if kill:
            slot.process.kill()
        else:
            if graceful:
                with contextlib.suppress(OSError):
                    slot.conn.send(None)
                slot.process.join(10)
            if slot.process.is_alive():
                slot.process.terminate()
                slot.process.join(10)
            if slot.process.is_alive():
                slot.process.kill()
        slot.process.join()
        slot.conn.close()
        slot.process = None

    def run(self, tasks: list[Task], sink: Any) -> None:
        """Run every task; ``sink.outcome(task, row)`` records an attempt and returns (retry or None, delay)."""
        queue: deque[Task] = deque(tasks)
        delayed: list[tuple[float, Task]] = []
        count = min(self.workers, len(tasks)) or 1
        shares = core_shares(count)
        slots = [
            _Slot(i, self.gpus[i % len(self.gpus)] if self.gpus else None, shares[i]) for i in range(count)
        ]
        busy = 0
        start_failures = 0
        clean = False
        try:
            while queue or delayed or busy:
                now = time.monotonic()
                for item in [d for d in delayed if d[0] <= now]:
                    delayed.remove(item)
                    queue.append(item[1])
                for slot in slots:
                    if slot.task is None and queue:
                        if slot.process is None:
                            self._start(slot)
                        slot.task, slot.sent, slot.started = queue.popleft(), now, None
                        slot.conn.send(slot.task)
                        busy += 1
                live = [s for s in slots if s.process is not None]
                handles = [s.conn for s in live] + [s.process.sentinel for s in live]
                if handles:
                    wait(handles, timeout=POLL_S)
                else:  # only delayed retries left (out-of-memory backoff)
                    time.sleep(POLL_S)
                for slot in live:
                    busy -= self._drain(slot, sink, queue, delayed)
                    if slot.process.exitcode is not None or slot.timed_out:
                        busy -= self._drain(slot, sink, queue, delayed)  # a result sent just before exiting
                        lost = slot.task
                        if lost is not None:
                            kind = TIMEOUT if slot.timed_out else DIED
                            message = (
                                f"timed out after --timeout {self.timeout:g}s; the worker was killed"
                                if slot.timed_out
                                else died_message(slot.process.exitcode)
                            )
                            row = error_row(lost, kind, kind.capitalize(), message, True)
                            row["worker"] = slot.name
                            self._outcome(lost, row, sink, queue, delayed)
                            busy -= 1
                        if not slot.ready and not slot.timed_out:
                            start_failures += 1
                            if start_failures >= MAX_START_FAILURES:
                                raise EngineError(
                                    f"batch workers die at start-up (exit code {slot.process.exitcode}); "
                                    "run 'vsr enhance' on one file to see why"
                                )
                        self._stop(slot, kill=True)
                        slot.task = None
                    elif slot.task is not None:
                        self._check_time(slot, now)
            clean = True
        finally:  # after Ctrl-C or an error: SIGTERM at once (enhance removes its temporary), then SIGKILL
            for slot in slots:
                self._stop(slot, graceful=clean)

    def _check_time(self, slot: _Slot, now: float) -> None:
        late = self.timeout is not None and slot.started is not None and now - slot.started > self.timeout
        stuck = slot.started is None and now - slot.sent > START_GRACE_S + (self.timeout or 0)
        if late or stuck:
            slot.timed_out = True
            slot.process.kill()
            slot.process.join()

    def _drain(self, slot: _Slot, sink, queue, delayed) -> int:
        """Handle every message waiting from ``slot``; returns how many tasks finished."""
        finished = 0
        while True:
            try:
                if not slot.conn.poll():
                    return finished
                msg = slot.conn.recv()
            except (EOFError, OSError):
                return finished
            kind = msg[0]
            if kind == "ready":
                slot.ready = True
            elif kind == "started" and slot.task is not None:
                slot.started = time.monotonic()
                sink.started(slot.name, slot.task)
            elif kind == "frames":
                sink.frames(slot.name, msg[2])
            elif kind == "result" and slot.task is not None:
                task, row = slot.task, msg[2]
                row["worker"] = slot.name
                slot.task = None
                finished += 1
                self._outcome(task, row, sink, queue, delayed)

    @staticmethod
    def _outcome(task: Task, row: dict, sink, queue, delayed) -> None:
        retry, delay = sink.outcome(task, row)
        if retry is not None:
            if delay > 0:
                delayed.append((time.monotonic() + delay, retry))
            else:
                queue.append(retry)
