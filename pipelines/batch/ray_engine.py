"""The Ray engine (``--engine ray``): one Ray task per video on worker actors that keep their models loaded.

A video is never split across tasks (audio, timestamps and container metadata stay whole).  Each actor
reserves ``--gpus-per-job`` GPUs (Ray sets its ``CUDA_VISIBLE_DEVICES``) and runs one file at a time with
its own ``ModelCache``.  Outputs, sidecars and the ledger go where the local engine puts them, so every
node must see the same paths (a shared filesystem); the driver writes the ledger and the report.

Each actor also reserves ``--cpus-per-job`` CPUs (default: one for a CPU job, the node's CPUs per GPU
for a GPU job) and sizes its threads to them: torch, OpenCV, the encoders and the face detectors.  Ray
pins no cores, so without that every actor on a node would size itself to the whole node.

Retries are ours, not Ray's: several Ray defaults retry a task on worker death, and an actor with
``max_restarts=-1`` restarts forever, so a poison file could kill actors all night.  Every Ray retry
knob is set explicitly (the actor's ``max_restarts=0`` and ``max_task_retries=0``, and again on each
call with ``retry_exceptions=False``) and the runner's ``--retries`` policy decides, as for the local
engine; an actor that dies or runs past ``--timeout`` is killed and replaced, and the attempt comes
back as a result row.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from vsr.errors import EngineError, one_line
from vsr.pipelines.batch.job import DIED, ERROR, TIMEOUT, Task, error_row

POLL_S = 0.2
START_GRACE_S = 600.0


class BatchActor:
    """A Ray worker: enhances one file per call, models loaded once for all its calls."""

    def __init__(self, cores: int) -> None:
        from vsr.config import limit_cores
        from vsr.models.registry import ModelCache

        limit_cores(cores)  # what the encoders and detectors plan by
        self.cache = ModelCache()

    def ready(self) -> int:
        """The pid, once torch is loaded (before the first file's clock starts) and sized to the cores."""
        import cv2
        import torch

        from vsr.config import usable_cores

        torch.set_num_threads(usable_cores())
        cv2.setNumThreads(usable_cores())
        import vsr.pipelines.upscale  # noqa: F401

        return os.getpid()

    def run(self, task: Task) -> dict[str, Any]:
        from vsr.pipelines.batch.job import run_task

        try:
            return run_task(task, self.cache)
        except Exception as exc:  # a row, never a Ray task error
            return error_row(task, ERROR, type(exc).__name__, f"internal error: {one_line(exc)}", False)


def cpus_per_job(nodes: list[dict[str, Any]], gpus_per_job: float) -> int:
    """The CPUs an actor reserves by default: one for a CPU job (one file per core); for a GPU job the
    CPUs that come with its GPUs on the GPU node that has the fewest per GPU, so that every GPU of every
    node can take a job, and the encoders keep up with the GPU."""
    if gpus_per_job <= 0:
        return 1
    shares = [
        node["Resources"].get("CPU", 0) * gpus_per_job / node["Resources"]["GPU"]
        for node in nodes
        if node.get("Alive", True) and node.get("Resources", {}).get("GPU", 0) > 0
    ]
    return max(1, int(min(shares))) if shares else 1


@dataclass
class _Actor:
    index: int
    handle: Any = None
    ready_ref: Any = None
    created: float = 0.0
    task: Task | None = None
    ref: Any = None
    started: float = 0.0

    @property
    def name(self) -> str:
        return f"ray{self.index}"


class RayEngine:
    """Run tasks on Ray worker actors (``workers`` of them; default: what the cluster's resources allow)."""

    def __init__(
        self,
        workers: int | None,
        timeout: float | None,
        address: str | None,
        gpus_per_job: float | None,
        have_gpus: bool,
        cpus_per_job: int | None = None,
    ) -> None:
        self.requested, self.timeout, self.address = workers, timeout, address
        self.gpus = gpus_per_job if gpus_per_job is not None else (1.0 if have_gpus else 0.0)
        self.cpus_requested = cpus_per_job
        self.cpus = cpus_per_job or 1
        self.workers = workers or 0
        try:  # before anything starts: a missing extra is the batch's failure, not each file's
            import ray  # noqa: F401
        except ImportError:
            raise EngineError(
                "--engine ray needs Ray: pip install 'vsr-faces[ray]' (or 'ray[default]')"
            ) from None

    def _connect(self):
        import ray

        if ray.is_initialized():
            return ray, False
        try:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EngineError(f"cannot reach Ray at --ray-address {self.address}: {one_line(exc)}") from None
        return ray, True

    def _size(self, ray, n_tasks: int) -> int:
        if self.requested:
            return min(self.requested, n_tasks)
        res = ray.cluster_resources()
        slots = int(res.get("CPU", 0) // self.cpus)
        if self.gpus > 0:
            slots = min(slots, int(res.get("GPU", 0) // self.gpus))
        if slots < 1:
            raise EngineError(
                f"the Ray cluster has no room for a worker with --gpus-per-job {self.gpus:g} and "
                f"--cpus-per-job {self.cpus} (resources: "
                f"{', '.join(f'{k}={v:g}' for k, v in sorted(res.items()) if k in ('CPU', 'GPU'))})"
            )
        return min(slots, n_tasks)

    def run(self, tasks: list[Task], sink: Any) -> None:
        """Run every task; ``sink.outcome(task, row)`` records an attempt and returns (retry or None, delay)."""
        ray, owned = self._connect()
        from ray.exceptions import GetTimeoutError, RayActorError, RayError

        if self.cpus_requested is None:
            self.cpus = cpus_per_job(ray.nodes(), self.gpus)
        remote = ray.remote(BatchActor).options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0, max_task_retries=0, max_concurrency=1
        )
        self.workers = self._size(ray, len(tasks))
        actors = [_Actor(i) for i in range(self.workers)]

        def start(a: _Actor) -> None:
            a.handle, a.created, a.task, a.ref = remote.remote(self.cpus), time.monotonic(), None, None
            a.ready_ref = a.handle.ready.remote()

        def replace(a: _Actor) -> None:
            ray.kill(a.handle, no_restart=True)
            start(a)

        queue: deque[Task] = deque(tasks)
        delayed: list[tuple[float, Task]] = []

        def outcome(task: Task, row: dict[str, Any]) -> None:
            retry, delay = sink.outcome(task, row)
            if retry is not None:
                (delayed.append((time.monotonic() + delay, retry)) if delay > 0 else queue.append(retry))

        for a in actors:
            start(a)
        try:
            while queue or delayed or any(a.task is not None for a in actors):
                now = time.monotonic()
                for item in [d for d in delayed if d[0] <= now]:
                    delayed.remove(item)
                    queue.append(item[1])
                for a in actors:
                    if a.ready_ref is not None:
                        done, _ = ray.wait([a.ready_ref], timeout=0)
                        if done:
                            try:
                                ray.get(a.ready_ref)
                                a.ready_ref = None
                            except RayError as exc:
                                raise EngineError(f"a Ray worker failed to start: {one_line(exc)}") from None
                        elif now - a.created > START_GRACE_S:
                            raise EngineError(f"no Ray worker started within {START_GRACE_S:g}s")
                    if a.ready_ref is None and a.task is None and queue:
                        a.task, a.started = queue.popleft(), now
                        a.ref = a.handle.run.options(max_task_retries=0, retry_exceptions=False).remote(
                            a.task
                        )
                        sink.started(a.name, a.task)
                running = [a for a in actors if a.ref is not None]
                if not running:
                    time.sleep(POLL_S)
                    continue
                ready, _ = ray.wait([a.ref for a in running], num_returns=1, timeout=POLL_S)
                for a in running:
                    task = a.task
                    if a.ref in ready:
                        try:
                            row = ray.get(a.ref, timeout=60)
                        except (RayActorError, GetTimeoutError) as exc:
                            row = error_row(task, DIED, "Died", f"the Ray worker died: {one_line(exc)}", True)
                            replace(a)
                        except RayError as exc:
                            row = error_row(task, ERROR, type(exc).__name__, one_line(exc), False)
                        a.task = a.ref = None
                    elif self.timeout is not None and time.monotonic() - a.started > self.timeout:
                        row = error_row(
                            task,
                            TIMEOUT,
                            "Timeout",
                            f"timed out after --timeout {self.timeout:g}s; the Ray worker was killed",
                            True,
                        )
                        replace(a)
                    else:
                        continue
                    row["worker"] = a.name
                    outcome(task, row)
        finally:
            for a in actors:
                if a.handle is not None:
                    ray.kill(a.handle, no_restart=True)
            if owned:
                ray.shutdown()
