"""``vsr batch``: enhance many files, idempotently, on a local worker pool or a Ray cluster.

    INPUT... / --manifest ──► plan (validated whole) ──► fingerprint vs sidecars ──► skip / recover / run
                                                                                        │
              ledger.jsonl (one fsynced line per attempt) ◄── runner ◄── engine: local worker processes
              NAME.vsr.json sidecars, --report                              or Ray actors, one task per video

Modules: ``config`` (BatchConfig), ``plan`` (inputs, manifest, checks), ``fingerprint`` (input identity,
sidecars), ``ledger``, ``job`` (one file's attempt, shared by both engines), ``local`` and ``ray_engine``
(the engines), ``progress``, ``report``, ``runner`` (ties them together).
"""

from vsr.pipelines.batch.config import BatchConfig
from vsr.pipelines.batch.runner import run_batch

__all__ = ["BatchConfig", "run_batch"]
