"""``vsr train --time-limit SECONDS``: plan the step count so the schedule ends inside a wall-clock budget.

The budget counts from the start of ``train()`` (data, pool, models and compilation included).
After ``SKIP`` steps (compilation, cuDNN's kernel search) the steps/s are measured over a short
window, and the run's ``steps`` is set so that, at that rate, the last step, its validation and its
checkpoint land before the deadline (with a margin); half way through the remaining steps the rate
is measured again (since the first plan: validations and checkpoints included) and the plan is
corrected, and again half way through what then remains, until fewer than 20 steps are left.  The
cosine schedule follows ``steps``, so it ends where the run ends.  ``cfg.steps`` from the command
line is the upper bound.  If the deadline comes anyway (the GPU got shared, a step slowed down) the
run stops at once with a validation and a checkpoint: ``--resume`` then finishes the planned steps.

Times are read on the host; on CUDA the loop syncs the device only at the two measurements.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

SKIP = 3  # steps before measuring (compilation, cuDNN autotuning)
MARGIN = 0.95  # plan for this share of the time that is left


@dataclass
class TimeBudget:
    """A run's deadline and step plan; ``after_step`` returns a new planned total when it makes one."""

    limit: float
    start_step: int
    max_steps: int
    t0: float = field(default_factory=lambda: time.monotonic())
    window: float = 0.0  # seconds of the first measurement (default: 4 % of the limit, 0.5 to 20 s)
    reserve: float = 1.0  # seconds kept for the last validation and checkpoint (raised as they are timed)
    planned: int | None = None
    rate: float | None = None
    plans: list[dict] = field(default_factory=list)
    _mark: tuple[int, float] | None = None
    _replan_at: int | None = None
    _last: tuple[int, float] | None = None

    def __post_init__(self) -> None:
        self.window = self.window or min(20.0, max(0.5, 0.04 * self.limit))
        self.reserve = max(self.reserve, 0.01 * self.limit)

    @property
    def deadline(self) -> float:
        return self.t0 + self.limit

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def expired(self) -> bool:
        """Past the point where the last validation and checkpoint still fit.

        Plans aim a third of the reserve earlier than this, so noise in the rate does not stop a run
        a step or two before its plan.
        """
        return time.monotonic() >= self.deadline - self.reserve / 1.5

    def overhead(self, seconds: float) -> None:
        """A validation + checkpoint took this long: keep at least that much (and half again) in reserve."""
        self.reserve = max(self.reserve, 1.5 * seconds)

    def _plan(self, done: int, rate: float, now: float) -> int:
        left = max(0.0, self.deadline - now - self.reserve) * MARGIN
        planned = min(self.max_steps, max(done + 1, done + int(rate * left)))
        self.planned, self.rate = planned, rate
        self.plans.append(
            {"at_step": done, "elapsed_s": round(now - self.t0, 2), "steps_per_s": rate, "steps": planned}
        )
        return planned

    def after_step(self, done: int, sync: Callable[[], None]) -> int | None:
        """Call after every step with the steps done; returns the planned total when (re)planning."""
        if self._mark is None:
            if done >= self.start_step + SKIP or done >= self.max_steps:
                sync()
                self._mark = (done, time.monotonic())
            return None
        mark_step, mark_time = self._mark
        now = time.monotonic()
        due = (
            now - mark_time >= self.window or now >= self.deadline - self.reserve
            if self.planned is None
            else self._replan_at is not None and done >= self._replan_at
        )
        if not due:
            return None
        sync()
        now = time.monotonic()
        rate = (done - mark_step) / max(now - mark_time, 1e-9)
        if self._last is not None and done > self._last[0]:  # the slower of: since the first plan, lately
            rate = min(rate, (done - self._last[0]) / max(now - self._last[1], 1e-9))
        planned = self._plan(done, rate, now)
        if len(self.plans) == 1:
            self._mark = (done, now)  # later rates include validations and checkpoints, not compilation
        self._last = (done, now)
        # re-plan half way through what is left, until the end is near
        self._replan_at = done + (planned - done) // 2 if planned - done >= 20 else None
        return planned

    def summary(self) -> dict:
        """What the card records: the limit, the plans made and the final step plan."""
        return {
            "limit_s": self.limit,
            "planned_steps": self.planned,
            "steps_per_s": self.rate,
            "plans": self.plans,
        }
