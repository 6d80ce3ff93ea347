"""Corrections to SpiffWorkflow 3.2 behaviour that cannot be made by subclassing (every task spec
class inherits the code in question).

The task iterators stop descending at depth 1,000 by default. A task tree grows one level per step a
case takes, so a loop done 500 times hid every open task below that depth: `is_completed()` then
reported a running case as finished, and it vanished from every inbox. The iteration is not
recursive, so the depth bound is lifted.
"""

from __future__ import annotations

import sys
from typing import Any

from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.specs.base import TaskSpec
from SpiffWorkflow.util.task import TaskIterator, TaskState

_SPIFF_DEPTH_LIMIT = 1000


def _lift_depth_limit(cls: type) -> None:
    # mypy refuses __init__ through a class object (unsound in general); here it is the function to patch.
    defaults = cls.__init__.__defaults__  # type: ignore[misc]
    if not defaults or defaults[1] not in (_SPIFF_DEPTH_LIMIT, sys.maxsize):
        raise ImportError(f"{cls.__name__}.__init__ changed: check engine/spiff_patches.py against SpiffWorkflow")
    cls.__init__.__defaults__ = (defaults[0], sys.maxsize, *defaults[2:])  # type: ignore[misc]


_lift_depth_limit(TaskIterator)
_lift_depth_limit(BpmnTaskIterator)


def _predict(self: TaskSpec, my_task: Any, seen: list[Any] | None = None, looked_ahead: int = 0,
             mask: int = TaskState.PREDICTED_MASK) -> None:
    """TaskSpec._predict that stops where a predicted path meets a step it already passed.

    SpiffWorkflow only remembers the specs of MAYBE/LIKELY tasks on the path, so a loop whose steps are
    predicted FUTURE (a reminder loop through a timer, a review loop without a gateway) was predicted
    forever: RecursionError when the case started. A FUTURE task is remembered too; the loop's next
    round is predicted when it is reached."""
    if seen is None:
        seen = []
    if my_task.has_state(mask):
        self._predict_hook(my_task)
    if my_task.has_state(TaskState.PREDICTED_MASK | TaskState.FUTURE):
        seen.append(self)
    look_ahead = my_task.has_state(TaskState.DEFINITE_MASK) or looked_ahead + 1 < self.lookahead
    for child in my_task.children:
        if child.has_state(mask) and child.task_spec not in seen and look_ahead:
            child.task_spec._predict(child, seen[:], looked_ahead + 1, mask)


if TaskSpec._predict.__code__.co_argcount != 5:
    raise ImportError("TaskSpec._predict changed: check engine/spiff_patches.py against SpiffWorkflow")
TaskSpec._predict = _predict
