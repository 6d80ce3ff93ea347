"""Gateway fixes on top of SpiffWorkflow 3.2.0."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.defaults import ParallelGateway
from SpiffWorkflow.util.task import TaskState

from .bpmn.scopes import ScopedJoin


class LoopSafeParallelGateway(ScopedJoin, ParallelGateway):
    """A parallel join inside a loop only counts arrivals of the current round; the joined data
    is the scope's variables (engine/bpmn/scopes.py).

    SpiffWorkflow counts every task of the join's spec; in a second round a branch that arrived
    in the first round (its join task since cancelled) still counts, so when branches finish in a
    different order the join fires with one branch missing. Arrivals of the current round all
    descend from the previous firing of this same join, which is an ancestor of the arriving task.
    """

    def _check_threshold_unstructured(self, my_task: Any) -> bool:
        previous = my_task.parent
        while previous is not None and previous.task_spec is not self:
            previous = previous.parent
        waiting_inputs = set(self.inputs)

        def remove_ancestor(task: Any) -> None:
            if task.task_spec in waiting_inputs:
                waiting_inputs.remove(task.task_spec)
            elif task.parent is not None:
                remove_ancestor(task.parent)

        for task in my_task.workflow.get_tasks(spec_name=self.name):
            if previous is not None and task is not my_task and not task.is_descendant_of(previous):
                continue  # an arrival of an earlier round
            if task.is_descendant_of(my_task):
                remove_ancestor(task)
            elif my_task.is_descendant_of(task):
                continue
            elif task.parent.state == TaskState.COMPLETED and task.parent.task_spec in waiting_inputs:
                waiting_inputs.remove(task.parent.task_spec)
        return len(waiting_inputs) == 0
