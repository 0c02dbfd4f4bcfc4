"""One attempt at one file, as a worker runs it (the same code for the local pool and Ray actors).

    write sidecar "running" ──► enhance (atomic output) ──► write sidecar "done" with the report
                                      └─ VsrError ──► a result row (never an exception out of the worker)

Also the retry policy both engines apply: transient failures (out of memory after the in-process
backoff, a worker that died or timed out) are retried up to ``--retries``; permanent ones (bad input,
unsupported codec, usage) are not; a file whose every attempt killed its worker is quarantined.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsr.config import EnhanceConfig
from vsr.errors import ResourceError, VsrError, one_line
from vsr.pipelines.batch.fingerprint import output_facts, sidecar_path, write_sidecar
from vsr.pipelines.batch.ledger import utc_now
from vsr.pipelines.batch.report import report_dict

# How an attempt ended (``kind`` in a result row and the ledger).
DONE, ERROR, DIED, TIMEOUT = "done", "error", "died", "timeout"
LOST_WORKER = (DIED, TIMEOUT)


@dataclass
class Task:
    """One attempt's instructions for a worker (picklable: sent through a pipe or to Ray)."""

    key: int  # the job's index in the plan
    config: EnhanceConfig
    fingerprint: dict[str, Any]
    attempt: int = 1


def error_row(task: Task, kind: str, error_class: str, message: str, transient: bool) -> dict[str, Any]:
    """A failed attempt as a result row."""
    return {
        "key": task.key,
        "attempt": task.attempt,
        "kind": kind,
        "error_class": error_class,
        "error": message,
        "transient": transient,
    }


def run_task(task: Task, models: Any, on_frames: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Enhance ``task.config`` once and record it in the sidecar; every outcome is a result row."""
    from vsr.pipelines.enhance import enhance

    output = task.config.output
    had_output = output.exists()
    started = time.perf_counter()
    write_sidecar(
        output, "running", task.fingerprint, started_at=utc_now(), attempt=task.attempt, pid=os.getpid()
    )
    try:
        report = report_dict(enhance(task.config, models=models, on_frames=on_frames))
        facts = output_facts(output)
    except Exception as exc:  # a row, never a dead worker: bugs are reported too
        transient = isinstance(exc, ResourceError | MemoryError)
        message = one_line(exc) if isinstance(exc, VsrError) else f"internal error: {one_line(exc)}"
        row = error_row(task, ERROR, type(exc).__name__, message, transient)
        if had_output or output.exists():  # keep a record beside the output that is now stale
            write_sidecar(output, "failed", task.fingerprint, error=row, finished_at=utc_now())
        else:
            sidecar_path(output).unlink(missing_ok=True)
        return row
    seconds = round(time.perf_counter() - started, 3)
    write_sidecar(output, "done", task.fingerprint, output=facts, report=report, finished_at=utc_now())
    return {
        "key": task.key,
        "attempt": task.attempt,
        "kind": DONE,
        "frames": report.get("frames_out"),
        "seconds": seconds,
    }


def next_step(rows: list[dict[str, Any]], retries: int) -> str:
    """After the attempts ``rows`` of one file: ``retry``, or its final status (done, failed, quarantined)."""
    last = rows[-1]
    if last["kind"] == DONE:
        return "done"
    transient = last["kind"] in LOST_WORKER or last.get("transient", False)
    if transient and len(rows) <= retries:
        return "retry"
    if all(r["kind"] in LOST_WORKER for r in rows):
        return "quarantined"
    return "failed"


def died_message(exitcode: int | None) -> str:
    """Why a worker process ended, in words (negative exit codes are signals)."""
    import signal

    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory, or killed)" if name == "SIGKILL" else ""
        return f"the worker process was killed by {name}{hint} while enhancing this file"
    return f"the worker process exited with code {exitcode} while enhancing this file"


class FaultHook:
    """TEST-ONLY fault injection, read from ``_VSR_TEST_WORKER_HOOK`` in worker processes only.

    The value is JSON ``{"match": GLOB, "dir": FOLDER, "times": N, "after": F}``: while ``FOLDER`` holds
    fewer than ``N`` marker files, a worker enhancing an input whose name matches ``GLOB`` writes a marker
    named after its pid once ``F`` frames (default 1) have gone to the encoder (mid-file: with enough
    frames the encoder has started writing the temporary output) and then hangs, so a test can SIGKILL
    it, time it out, or kill the whole batch at a known point.  The batch command never sets it; nothing
    else reads it.
    """

    ENV = "_VSR_TEST_WORKER_HOOK"

    def __init__(self, spec: dict[str, Any] | None) -> None:
        self.spec = spec
        self._seen: dict[int, int] = {}  # task key -> frames so far

    @classmethod
    def from_env(cls) -> FaultHook:
        raw = os.environ.get(cls.ENV)
        return cls(json.loads(raw) if raw else None)

    def on_frames(self, task: Task, n: int) -> None:
        import fnmatch

        if not self.spec or not fnmatch.fnmatch(task.config.input.name, self.spec["match"]):
            return
        self._seen[task.key] = self._seen.get(task.key, 0) + n
        if self._seen[task.key] < int(self.spec.get("after", 1)):
            return
        folder = Path(self.spec["dir"])
        if len(list(folder.iterdir())) >= int(self.spec.get("times", 1)):
            return
        (folder / f"{os.getpid()}").write_text(str(task.config.input))
        while True:
            time.sleep(3600)
