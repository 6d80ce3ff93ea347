"""A correction to SpiffWorkflow 3.2's Task.cancel that cannot be made by subclassing.

Cancelling an unfinished task drops its unfinished children from the tree without cancelling them.
Most tasks have only predicted children, but a multi-instance activity has running instances, and a
boundary event or event sub-process start that fired has running paths: dropped, their sub-process
workflows stayed behind without a parent task ("A task with id ... was not found" at the next step,
e.g. when an interrupting boundary timer fired on a multi-instance sub-process) and their waiting
events stayed subscribed. Here such children are cancelled first, deepest first, so each one's own
cancellation (sub-process, event subscription) runs.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

_spiff_cancel = Task.cancel


def _cancel(self: Any) -> None:
    if not self.has_state(TaskState.FINISHED_MASK):
        for child in list(self.children):
            if child.has_state(TaskState.DEFINITE_MASK):
                child.cancel()
    _spiff_cancel(self)


if getattr(Task.cancel, "__name__", "") != "_cancel":
    Task.cancel = _cancel
