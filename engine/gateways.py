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
        loop_inputs = self._loop_inputs()
        if my_task.parent is not None and my_task.parent.task_spec in loop_inputs:
            # The token came back around a loop: the flows that entered the loop were taken in its
            # first round. (SpiffWorkflow found them among the task's ancestors; the engine prunes
            # finished ancestors, engine/pruning.py, so the model's structure says it instead.)
            waiting_inputs -= set(self.inputs) - loop_inputs

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

    def _loop_inputs(self) -> set[Any]:
        """The inputs this gateway's own outputs lead back to (the specs are immutable: cached)."""
        cached = self.__dict__.get("_af_loop_inputs")
        if cached is None:
            seen: set[int] = set()
            stack = list(self.outputs)
            reachable: set[Any] = set()
            while stack:
                spec = stack.pop()
                if id(spec) in seen:
                    continue
                seen.add(id(spec))
                reachable.add(spec)
                stack.extend(spec.outputs)
            cached = {spec for spec in self.inputs if spec in reachable}
            self.__dict__["_af_loop_inputs"] = cached
        return cached
