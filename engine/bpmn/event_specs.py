"""Task specs for the event constructs SpiffWorkflow does not run as Camunda 7 does.

- AlmenEventBasedGateway opens every catch event after it at once (each a normal waiting task, so
  waits, correlation and timers treat them like any other); the first to fire cancels the others.
- EventSubprocessStart waits, for as long as its scope runs, for the trigger of an event sub-process.
  Interrupting: it cancels everything else in the scope and runs the sub-process, after which the
  scope ends. Non-interrupting: every trigger runs one more instance of the sub-process beside the
  scope's other work (message, signal, escalation, each firing of a timer cycle).
- AlmenBoundaryEvent: a non-interrupting message, signal or escalation boundary event keeps waiting
  after it fired (Camunda fires it for every occurrence while the activity runs).
- AlmenBoundaryEventJoin: when the activity ends, a non-interrupting boundary event that already
  fired is retired with its paths still running (SpiffWorkflow dropped the paths of a timer cycle).
- ScopeEndJoin: a scope ends when everything but its waiting event sub-process starts is done; those
  are then cancelled.
- AlmenEndEvent / AlmenIntermediateThrowEvent stop where an interrupting handler caught what they threw.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.specs.control import BoundaryEventJoin, _EndJoin
from SpiffWorkflow.bpmn.specs.defaults import (
    BoundaryEvent,
    EndEvent,
    EventSubprocess,
    IntermediateCatchEvent,
    IntermediateThrowEvent,
    ReceiveTask,
)
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import (
    EscalationEventDefinition,
    SignalEventDefinition,
)
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition, TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.bpmn_spec_mixin import BpmnSpecMixin
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent as BoundaryEventMixin
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.specs.base import TaskSpec
from SpiffWorkflow.util.task import TaskIterator, TaskState

from . import cancel_patch  # noqa: F401 - cancelling a task cancels its running children first
from .event_definitions import INTERRUPTED
from .scopes import SharedScope, scope_variables
from .subprocesses import namespace_of

REPEATABLE = (MessageEventDefinition, SignalEventDefinition, EscalationEventDefinition)


# -- data of a scope ------------------------------------------------------------------------------

def scope_data(workflow: Any) -> dict[str, Any]:
    """The variables of a scope as they stand now (its variable store, scopes.py). A triggered path
    starts with these, not with the copy its waiting event took when the scope started."""
    store = scope_variables(workflow)
    if store is not None:
        return copy.deepcopy(store)
    # State saved before variable scopes: the last completed task's variables, overlaid with those of
    # the tasks still running.
    data: dict[str, Any] = {}
    last = workflow.last_task
    if last is not None and last.workflow is workflow and last.id in workflow.tasks:
        data.update(last.data)
    for task in workflow.get_tasks(state=TaskState.READY | TaskState.STARTED | TaskState.WAITING,
                                   skip_subprocesses=True):
        if isinstance(task.task_spec, BoundaryEventMixin):
            continue  # boundary events and event sub-process starts hold the data of when they began waiting
        if task.parent is not None and isinstance(task.parent.task_spec, MultiInstanceTask):
            continue  # the locals of one multi-instance item
        data.update(task.data)
    return copy.deepcopy(data)


def event_payload(definition: Any, my_task: Any) -> dict[str, Any]:
    """The variables a caught event brings, without the task's own."""
    saved = my_task.data
    my_task.data = {}
    try:
        definition.update_task_data(my_task)
        return my_task.data
    finally:
        my_task.data = saved


def spawn(my_task: Any, outputs: list[Any], data: dict[str, Any]) -> None:
    """Start one more run of `outputs` below a task that keeps waiting (as a timer cycle does)."""
    my_task.data = data
    for output in outputs:
        child = my_task._add_child(output, TaskState.FUTURE)
        child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)
        child.task_spec._update(child)


def keep_waiting(my_task: Any) -> None:
    if my_task.state != TaskState.WAITING:
        my_task._set_state(TaskState.WAITING)
    my_task.workflow.top_workflow.event_manager.add_task(my_task)


def cancel_deepest_first(tasks: list[Any]) -> None:
    """Cancel tasks children first: Task.cancel drops unfinished children without cancelling them, which
    would leave their sub-processes and event subscriptions behind."""
    for task in sorted(tasks, key=lambda t: t.depth, reverse=True):
        if task.has_state(TaskState.NOT_FINISHED_MASK):
            task.cancel()


# -- event-based gateway --------------------------------------------------------------------------

class AlmenEventBasedGateway(BpmnSpecMixin):
    """Completes at once; every outgoing catch event then waits (see EventGatewayTargetMixin)."""


if TYPE_CHECKING:
    # The mixins below extend the hooks of the SpiffWorkflow task specs they are mixed into
    # (untyped: Any to mypy).
    from SpiffWorkflow.bpmn.specs.mixins.bpmn_spec_mixin import BpmnSpecMixin as _SpecHost
else:
    _SpecHost = object


class EventGatewayTargetMixin(_SpecHost):
    """A catch event or receive task after an event-based gateway cancels the other alternatives as
    soon as it fires (the first to become ready wins)."""

    def _on_ready_hook(self, my_task: Any) -> None:
        super()._on_ready_hook(my_task)
        parent = my_task.parent
        if parent is not None and isinstance(parent.task_spec, AlmenEventBasedGateway):
            cancel_deepest_first([t for t in parent.children if t is not my_task])


class AlmenIntermediateCatchEvent(EventGatewayTargetMixin, IntermediateCatchEvent):
    def _predict_hook(self, my_task: Any) -> None:
        # A cycle here fires once (timers.py), so its path is predicted like any other's.
        TaskSpec._predict_hook(self, my_task)


class AlmenReceiveTask(EventGatewayTargetMixin, ReceiveTask):
    pass


# -- throwing events that stop at an interrupting handler -------------------------------------------

class _StopsWhenInterruptedMixin(_SpecHost):
    def _run_hook(self, my_task: Any) -> bool | None:
        result = super()._run_hook(my_task)
        if my_task.internal_data.pop(INTERRUPTED, False):
            return None  # STARTED: the handler's cancellation of this scope ends it
        return result


class AlmenEndEvent(_StopsWhenInterruptedMixin, EndEvent):
    pass


class AlmenIntermediateThrowEvent(_StopsWhenInterruptedMixin, IntermediateThrowEvent):
    pass


# -- boundary events ------------------------------------------------------------------------------

class AlmenBoundaryEvent(BoundaryEvent):
    def _repeats(self) -> bool:
        return not self.cancel_activity and isinstance(self.event_definition, REPEATABLE)

    def _predict_hook(self, my_task: Any) -> None:
        if self._repeats() or (not self.cancel_activity and isinstance(self.event_definition, CycleTimerEventDefinition)):
            return  # a repeating one has paths only once it fired
        TaskSpec._predict_hook(self, my_task)

    def _update_hook(self, my_task: Any) -> bool | None:
        if not self._repeats():
            return super()._update_hook(my_task)
        my_task._inherit_data()
        definition = self.event_definition
        if definition.has_fired(my_task):
            data = {**scope_data(my_task.workflow), **event_payload(definition, my_task)}
            definition.reset(my_task)
            spawn(my_task, self.outputs, data)
        keep_waiting(my_task)
        return False


class AlmenBoundaryEventJoin(BoundaryEventJoin):
    def _check_threshold_structured(self, my_task: Any) -> tuple[bool, list[Any]]:
        finished, cancel = super()._check_threshold_structured(my_task)
        if not finished:
            return finished, cancel
        keep = []
        for task in cancel:
            spec = task.task_spec
            fired = [c for c in task.children if c.task_spec is not self and not c.has_state(TaskState.PREDICTED_MASK)]
            if isinstance(spec, BoundaryEventMixin) and not spec.cancel_activity and fired:
                keep.append(task)
                # Its paths run on as in Camunda; only the subscription ends with the activity.
                task.workflow.top_workflow.event_manager.remove_task(task)
                for child in task.children:
                    if child.has_state(TaskState.PREDICTED_MASK):
                        task.workflow._remove_task(child.id)
                task._set_state(TaskState.COMPLETED)
        return finished, [t for t in cancel if t not in keep]


# -- event sub-processes ----------------------------------------------------------------------------

class EventSubprocessStart(BoundaryEvent):
    """The start event of an event sub-process, waiting in the scope that contains the sub-process.
    Its only output is the sub-process (an EventSubprocess task spec), whose output is the scope end."""

    is_event_subprocess_start = True

    def _predict_hook(self, my_task: Any) -> None:
        pass  # the sub-process exists only once triggered

    def _repeats(self) -> bool:
        definition = self.event_definition
        return not self.cancel_activity and (isinstance(definition, REPEATABLE)
                                             or isinstance(definition, CycleTimerEventDefinition))

    def catches(self, my_task: Any, event: Any) -> bool:
        return my_task.state == TaskState.WAITING and self.event_definition.catches(my_task, event)

    def _update_hook(self, my_task: Any) -> bool | None:
        if not self._repeats():
            return super()._update_hook(my_task)
        definition = self.event_definition
        if isinstance(definition, CycleTimerEventDefinition):
            if definition.cycle_complete(my_task):
                spawn(my_task, self.outputs, scope_data(my_task.workflow))
            if my_task._get_internal_data("event_fired", False):
                return True  # the cycle is over: nothing more to wait for
        elif definition.has_fired(my_task):
            data = {**scope_data(my_task.workflow), **event_payload(definition, my_task)}
            definition.reset(my_task)
            spawn(my_task, self.outputs, data)
        keep_waiting(my_task)
        return False

    def _run_hook(self, my_task: Any) -> bool:
        definition = self.event_definition
        if self._repeats():  # a finished timer cycle: its runs were started as it fired
            my_task.internal_data.pop("event_value", None)
            return True
        data = {**scope_data(my_task.workflow), **event_payload(definition, my_task)}
        if self.cancel_activity:
            cancel_deepest_first([t for t in my_task.workflow.get_tasks(state=TaskState.NOT_FINISHED_MASK,
                                                                        skip_subprocesses=True)
                                  if t is not my_task and not my_task.is_descendant_of(t)
                                  and not t.is_descendant_of(my_task)])
        definition.reset(my_task)
        if isinstance(definition, TimerEventDefinition):
            my_task.internal_data.pop("event_value", None)
        my_task.data = data
        my_task._sync_children(self.outputs, TaskState.FUTURE)
        for child in my_task.children:
            child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)
        return True


class AlmenEventSubprocess(SharedScope, EventSubprocess):
    """The sub-process an EventSubprocessStart runs. As in Camunda it shares the variables of the scope
    it is in (scopes.py), and inside a called process it runs that process version's own sub-process
    spec (named '<key>@<definition id>/<sub-process id>', see engine/calls.py)."""

    def start_workflow(self, my_task: Any) -> None:
        top = my_task.workflow.top_workflow
        name = namespace_of(my_task.workflow) + self.spec
        if name not in top.subprocess_specs:
            raise WorkflowTaskException(f"the event sub-process '{self.spec}' was not found", task=my_task)
        subworkflow = top.create_subprocess(my_task, name)
        subworkflow.completed_event.connect(self._on_subworkflow_completed, my_task)
        self.copy_data(my_task, subworkflow)
        subworkflow.get_next_task(spec_name="Start").run()

    def update_data(self, my_task: Any, subworkflow: Any) -> None:
        variables = scope_variables(subworkflow)
        my_task.data = copy.deepcopy(variables if variables is not None else subworkflow.last_task.data)


class ScopeEndJoin(_EndJoin):
    """The end of a process or sub-process: waits for every path and every running event sub-process,
    but not for event sub-process starts that are still only waiting; those end with the scope."""

    def _check_threshold_unstructured(self, my_task: Any) -> bool:
        for task in TaskIterator(my_task.workflow.task_tree, state=TaskState.NOT_FINISHED_MASK,
                                 end_at_spec=self.name):
            if task == my_task:
                continue
            if getattr(task.task_spec, "is_event_subprocess_start", False) and task.state == TaskState.WAITING:
                continue
            return False
        return True

    def _run_hook(self, my_task: Any) -> bool:
        cancel_deepest_first([t for t in my_task.workflow.tasks.values()
                              if getattr(t.task_spec, "is_event_subprocess_start", False)
                              and t.has_state(TaskState.NOT_FINISHED_MASK)])
        return super()._run_hook(my_task)


def finalize_spec(spec: Any) -> None:
    """Give a parsed process spec the scope end and boundary join above (the parser hard-codes
    SpiffWorkflow's own classes for both)."""
    for task_spec in spec.task_specs.values():
        if type(task_spec) is _EndJoin:
            task_spec.__class__ = ScopeEndJoin
        elif type(task_spec) is BoundaryEventJoin:
            task_spec.__class__ = AlmenBoundaryEventJoin
