"""``run_batch(config)``: plan, decide what is done, run the rest on an engine, record everything.

Steps:
 1. build and check the whole plan (nothing has run yet when it fails);
 2. hold the ledger (its lock: one batch per out dir) and remove temporaries left by killed runs;
 3. fingerprint every job and compare with its sidecar: skip what is done, recover what finished just
    before a crash, refuse to replace outputs vsr batch did not write (unless --overwrite);
 4. run the rest on the local worker pool or Ray, one ledger line per attempt, retrying transient failures;
 5. return the batch report (written with --report); the CLI turns failures into exit code 3.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from vsr.atomic import discard, stale_temporaries
from vsr.errors import VsrError
from vsr.pipelines.batch.config import BatchConfig
from vsr.pipelines.batch.fingerprint import (
    ModelIdentity,
    decide,
    fingerprint,
    output_facts,
    write_sidecar,
)
from vsr.pipelines.batch.job import DONE, Task, next_step
from vsr.pipelines.batch.ledger import LEDGER_NAME, Ledger
from vsr.pipelines.batch.plan import Job, absolute, build_plan
from vsr.pipelines.batch.progress import BatchProgress
from vsr.pipelines.batch.report import BatchReport, FileResult


class Tracker:
    """Records every attempt (ledger line, progress) and decides whether a file is tried again."""

    def __init__(self, jobs: list[Job], ledger: Ledger, progress: BatchProgress, cfg: BatchConfig) -> None:
        self.jobs, self.ledger, self.progress, self.cfg = jobs, ledger, progress, cfg
        self.rows: dict[int, list[dict[str, Any]]] = {}
        self.results: dict[int, FileResult] = {}
        self.expected: dict[int, int] = {}  # key -> frames in the input (for progress)

    def started(self, worker: str, task: Task) -> None:
        self.progress.started(worker, self.jobs[task.key].name, self.expected.get(task.key, 0))

    def frames(self, worker: str, n: int) -> None:
        self.progress.frames(worker, n)

    def outcome(self, task: Task, row: dict[str, Any]) -> tuple[Task | None, float]:
        """Record one attempt; returns (the next attempt or None, seconds to wait before it)."""
        job = self.jobs[task.key]
        rows = self.rows.setdefault(task.key, [])
        rows.append(row)
        step = next_step(rows, self.cfg.retries)
        event = {
            "event": "attempt",
            "input": str(job.input),
            "output": str(job.output),
            "attempt": task.attempt,
            "result": row["kind"],
            "worker": row.get("worker"),
            "engine": self.cfg.engine,
            **{k: row[k] for k in ("frames", "seconds", "error_class", "error") if row.get(k) is not None},
        }
        if row["kind"] != DONE:
            event["next"] = step
            self._clean(job)
        self.ledger.append(event)
        final = step != "retry"
        self.progress.finished(row.get("worker"), "done" if step == "done" else step, row, final)
        if final:
            self.results[task.key] = FileResult(
                input=str(job.input),
                output=str(job.output),
                status=step,
                reason=self.results.get(task.key, FileResult("", "", "")).reason,
                attempts=len(rows),
                error_class=None if step == "done" else row.get("error_class"),
                error=None if step == "done" else row.get("error"),
                frames=row.get("frames"),
                seconds=row.get("seconds"),
                worker=row.get("worker"),
                origin=job.origin,
            )
            return None, 0.0
        delay = self.cfg.retry_delay * task.attempt if row.get("error_class") == "ResourceError" else 0.0
        return replace(task, attempt=task.attempt + 1), delay

    @staticmethod
    def _clean(job: Job) -> None:
        """A killed worker leaves its temporary output (and sidecar) behind: remove them now.

        Only this output's temporaries: on Ray other nodes' workers write in the same folder.
        """
        mine = (f".{job.output.name}.vsr-", f".{job.output.name}.vsr.json.vsr-")
        for tmp in stale_temporaries(job.output.parent):
            if tmp.name.startswith(mine):
                discard(tmp)


def make_engine(cfg: BatchConfig, n_tasks: int):
    """The local worker pool or the Ray engine, sized from --workers and the GPUs visible."""
    from vsr.pipelines.batch.local import LocalEngine, visible_gpus

    gpus = visible_gpus() if cfg.defaults.device in ("auto", "cuda") else []
    if cfg.engine == "ray":
        from vsr.pipelines.batch.ray_engine import RayEngine

        return RayEngine(
            cfg.workers, cfg.timeout, cfg.ray_address, cfg.gpus_per_job, bool(gpus), cfg.cpus_per_job
        )
    workers = cfg.workers or max(1, len(gpus))
    return LocalEngine(workers, cfg.timeout, gpus if len(gpus) > 1 else None)


def _expected_frames(path: Path) -> int:
    """Frames of an input for the progress total, from the contained pre-flight: the batch's own process
    never opens an input (a hostile file could crash it)."""
    from vsr.media.probe import probe

    try:
        info = probe(path)
    except (VsrError, OSError):
        return 0
    return info.frames or info.packets or 0


def _decide(cfg: BatchConfig, jobs: list[Job]) -> tuple[dict[int, FileResult], list[Task], dict[int, dict]]:
    """Step 3: per job, skip / recover / refuse / run: (results so far, tasks to run, recovered facts)."""
    identity = ModelIdentity()
    results: dict[int, FileResult] = {}
    tasks: list[Task] = []
    recovered: dict[int, dict[str, Any]] = {}
    for key, job in enumerate(jobs):
        base = {"input": str(job.input), "output": str(job.output), "origin": job.origin}
        try:
            fp = fingerprint(job.config, cfg.hash, identity)
        except OSError as exc:
            error = f"cannot read {job.input}: {exc.strerror or exc}"
            results[key] = FileResult(**base, status="failed", error_class="InputError", error=error)
            continue
        d = decide(job.output, fp)
        if d.action == "skip":
            results[key] = FileResult(**base, status="skipped", reason=d.reason)
            continue
        if d.action == "recover" and not cfg.dry_run:
            try:
                facts = output_facts(job.output)
            except VsrError:
                d.reason = "output does not validate"
            else:
                write_sidecar(
                    job.output, "done", fp, output=facts, report={"status": "ok", "recovered": True}
                )
                results[key] = FileResult(**base, status="recovered", reason=d.reason, frames=facts["frames"])
                recovered[key] = facts
                continue
        if not d.ours and not cfg.defaults.overwrite:
            error = f"output exists and was not written by vsr batch: {job.output}; pass --overwrite to replace it"
            results[key] = FileResult(
                **base, status="failed", reason=d.reason, error_class="OutputError", error=error
            )
            continue
        tasks.append(Task(key, replace(job.config, overwrite=True), fp))
        results[key] = FileResult(**base, status="planned", reason=d.reason)
    return results, tasks, recovered


def run_batch(cfg: BatchConfig, progress_stream=None, live: bool | None = None) -> BatchReport:
    """Run ``vsr batch`` for ``cfg``; returns the report (``report.failed`` lists what did not finish)."""
    t0 = time.perf_counter()
    cfg.validate()
    # 1. plan
    plan = build_plan(cfg)
    out_dir = absolute(cfg.out_dir)
    report = BatchReport(
        engine=cfg.engine,
        out_dir=str(out_dir),
        ledger=str(out_dir / LEDGER_NAME),
        duplicates=plan.duplicates,
        dry_run=cfg.dry_run,
    )
    if cfg.dry_run:
        results, _, _ = _decide(cfg, plan.jobs)
        report.files = [results[k] for k in sorted(results)]
        report.seconds = round(time.perf_counter() - t0, 3)
        return report

    # 2. the ledger is also the lock: one batch per out dir; then the temporaries of killed runs
    with Ledger(out_dir / LEDGER_NAME) as ledger:
        for folder in sorted({job.output.parent for job in plan.jobs} | {out_dir}):
            for tmp in stale_temporaries(folder):
                discard(tmp)
                report.removed_temporaries.append(str(tmp))
        # 3. decide
        results, tasks, recovered = _decide(cfg, plan.jobs)
        for key, facts in recovered.items():
            job = plan.jobs[key]
            event = {"event": "recovered", "input": str(job.input), "output": str(job.output)}
            ledger.append({**event, "frames": facts["frames"]})
        for r in results.values():
            if r.status == "failed":
                event = {"event": "refused", "input": r.input, "output": r.output}
                ledger.append({**event, "error_class": r.error_class, "error": r.error})
        # 4. run
        if tasks:
            _run(cfg, plan.jobs, tasks, results, ledger, report, progress_stream, live)
    # 5. report
    report.files = [results[k] for k in sorted(results)]
    report.seconds = round(time.perf_counter() - t0, 3)
    if cfg.report:
        report.write(cfg.report)
    return report


def _run(cfg, jobs, tasks, results, ledger, report, progress_stream, live) -> None:
    """Step 4: run ``tasks`` on the engine; their final results replace the planned ones in ``results``."""
    for task in tasks:
        task.config.output.parent.mkdir(parents=True, exist_ok=True)
    known = {
        "skipped": sum(r.status in ("skipped", "recovered") for r in results.values()),
        "failed": sum(r.status == "failed" for r in results.values()),
    }
    engine = make_engine(cfg, len(tasks))
    with BatchProgress(
        len(jobs), 0, known, quiet=cfg.defaults.quiet, stream=progress_stream, live=live
    ) as progress:
        tracker = Tracker(jobs, ledger, progress, cfg)
        for task in tasks:
            tracker.expected[task.key] = _expected_frames(task.config.input)
            tracker.results[task.key] = results[task.key]
        progress.total_frames = sum(tracker.expected.values())
        try:
            engine.run(tasks, tracker)
        finally:
            report.workers = engine.workers
            for folder in sorted({t.config.output.parent for t in tasks}):
                for tmp in stale_temporaries(folder):
                    discard(tmp)
    results.update(tracker.results)
