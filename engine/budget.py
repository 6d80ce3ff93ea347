"""The bound on one engine step: how many tasks it runs, how many it creates, how long it takes and
how much data it carries. A diagram that loops without a wait state, a gateway that feeds itself or
data that keeps growing ends as an incident at the element that was about to run, instead of holding
a transaction (and, on SQLite, the database's write lock) for minutes."""

from __future__ import annotations

import json
import time
from typing import Any

from .limits import Limits

# How often the growing quantities are measured: counting tasks and sizing data are not free.
_CHECK_EVERY = 10


class LimitExceeded(Exception):
    """A bound of engine/limits.py was broken at `task` (None when no task is to blame)."""

    def __init__(self, message: str, task: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.task = task


def count_tasks(wf: Any) -> int:
    return len(wf.tasks) + sum(len(sp.tasks) for sp in wf.subprocesses.values())


class StepBudget:
    """Called by SpiffWorkflow before each task an engine step runs (do_engine_steps' hook)."""

    def __init__(self, wf: Any, limits: Limits) -> None:
        self.limits = limits
        self.wf = wf
        self.steps = 0
        self.started = time.monotonic()
        self.tasks_at_start = count_tasks(wf)

    def __call__(self, task: Any) -> None:
        self.steps += 1
        limits = self.limits
        if self.steps > limits.max_engine_steps:
            raise LimitExceeded(f"the case ran more than {limits.max_engine_steps:,} steps without waiting for "
                                "a person, a timer or a message (a loop without a wait state?)", task)
        if time.monotonic() - self.started > limits.max_step_seconds:
            raise LimitExceeded(f"one step of the case took longer than {limits.max_step_seconds:g} s", task)
        if self.steps % _CHECK_EVERY == 0:
            self.check_growth(task)

    def check_growth(self, task: Any = None) -> None:
        created = count_tasks(self.wf) - self.tasks_at_start
        if created > self.limits.max_new_tasks:
            raise LimitExceeded(f"one step of the case created more than {self.limits.max_new_tasks:,} tasks",
                                task)
        if task is not None:
            size = len(json.dumps(task.data, default=str))
            if size > self.limits.max_instance_bytes:
                raise LimitExceeded(f"the case's data grew to {size:,} bytes; the limit per case is "
                                    f"{self.limits.max_instance_bytes:,}", task)
