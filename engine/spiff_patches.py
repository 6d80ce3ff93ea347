"""Corrections to SpiffWorkflow 3.2 behaviour that cannot be made by subclassing.

The task iterators stop descending at depth 1,000 by default. A task tree grows one level per step a
case takes, so a loop done 500 times hid every open task below that depth: `is_completed()` then
reported a running case as finished, and it vanished from every inbox. The iteration is not
recursive, so the depth bound is lifted.
"""

from __future__ import annotations

import sys

from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.util.task import TaskIterator

_SPIFF_DEPTH_LIMIT = 1000


def _lift_depth_limit(cls: type) -> None:
    defaults = cls.__init__.__defaults__  # type: ignore[misc]
    if not defaults or defaults[1] not in (_SPIFF_DEPTH_LIMIT, sys.maxsize):
        raise ImportError(f"{cls.__name__}.__init__ changed: check engine/spiff_patches.py against SpiffWorkflow")
    cls.__init__.__defaults__ = (defaults[0], sys.maxsize, *defaults[2:])  # type: ignore[misc]


_lift_depth_limit(TaskIterator)
_lift_depth_limit(BpmnTaskIterator)
