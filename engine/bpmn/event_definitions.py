"""Signal, error and escalation event definitions with Camunda 7 semantics.

- A signal is broadcast: every catcher waiting in the throwing instance catches it at once, and the
  engine then delivers it to every other instance waiting for it and starts every process whose
  start event is that signal (services/signals.py). Its variables are what `camunda:in` passes.
- An error or escalation goes to the nearest handler: an event sub-process of the scope it was thrown
  in, else a boundary event of the activity running that scope, and so on outwards. An uncaught error
  is an incident; an uncaught escalation is ignored (Camunda continues).
"""

from __future__ import annotations

import json
from typing import Any

from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import (
    ErrorEventDefinition,
    EscalationEventDefinition,
    SignalEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.util.task import TaskState

# Set on a throwing task whose event an interrupting handler caught: the thrower stops there (its
# scope is being cancelled) instead of running on until the cancellation reaches it.
INTERRUPTED = "interrupted_by_handler"
# find_handler's answer when the thrower's scope is already being interrupted (another instance of a
# multi-instance activity threw first, say): the thrower just stops.
PENDING_INTERRUPT = object()


def plain(value: Any) -> Any:
    """A JSON-safe copy of a payload (dates become ISO text, as everywhere in the engine)."""
    return json.loads(json.dumps(value, default=str))


class AlmenSignalEventDefinition(SignalEventDefinition):
    def __init__(self, name: str, expression: str | None = None, variable: str | None = None,
                 all_variables: bool = False, mappings: list[list[str | None]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.expression = expression        # payload expression (SpiffWorkflow's payloadExpression)
        self.variable = variable            # receive the payload into this variable (SpiffWorkflow's variableName)
        self.all_variables = all_variables  # <camunda:in variables="all"/>
        self.mappings = mappings or []      # <camunda:in source|sourceExpression target/>: [source, expression, target]

    def payload(self, my_task: Any) -> Any:
        engine = my_task.workflow.script_engine
        if self.expression:
            return plain(engine.evaluate(my_task, self.expression))
        data = plain(my_task.data) if self.all_variables else {}
        data.pop("data_objects", None)
        for source, expression, target in self.mappings:
            value = engine.evaluate(my_task, expression) if expression else my_task.data.get(source)
            data[target] = plain(value)
        return data

    def throw(self, my_task: Any) -> None:
        event = BpmnEvent(self, payload=self.payload(my_task))
        top = my_task.workflow.top_workflow
        # EventManager.catch queues the event for other instances only when nothing here caught it;
        # a signal goes to every other instance as well.
        if top.event_manager.catch(event) > 0:
            top.bpmn_events.append(event)

    def update_task_data(self, my_task: Any) -> None:
        payload = my_task.internal_data.get(self.name)
        if self.variable:
            my_task.data[self.variable] = payload
        elif isinstance(payload, dict):
            my_task.set_data(**payload)


class _PropagatedEventMixin:
    """Thrown to the nearest handler instead of to every waiting task of the instance."""

    kind = "event"
    name: str
    expression: str | None
    variable: str | None
    code: str | None

    def event_payload(self, my_task: Any) -> dict[str, Any]:
        value = None
        if self.expression:
            value = plain(my_task.workflow.script_engine.evaluate(my_task, self.expression))
        return {"code": self.code, "message": getattr(self, "error_message", None), "payload": value}

    def throw(self, my_task: Any) -> None:
        event = BpmnEvent(self, payload=self.event_payload(my_task))
        handler = find_handler(my_task, event)
        if handler is PENDING_INTERRUPT:
            my_task.internal_data[INTERRUPTED] = True
            return
        if handler is None:
            self.uncaught(my_task)
            return
        handler.task_spec.catch(handler, event)
        handler.task_spec._update(handler)
        if handler.task_spec.cancel_activity:
            my_task.internal_data[INTERRUPTED] = True

    def uncaught(self, my_task: Any) -> None:
        """Camunda ignores an escalation nobody catches."""

    def update_task_data(self, my_task: Any) -> None:
        caught = my_task.internal_data.get(self.name) or {}
        code_variable = getattr(self, "code_variable", None)
        if code_variable:
            my_task.data[code_variable] = caught.get("code")
        message_variable = getattr(self, "message_variable", None)  # errors only
        if message_variable:
            my_task.data[message_variable] = caught.get("message")
        if self.variable:
            my_task.data[self.variable] = caught.get("payload")


class AlmenErrorEventDefinition(_PropagatedEventMixin, ErrorEventDefinition):
    kind = "error"

    def __init__(self, name: str, code: str | None = None, error_message: str | None = None,
                 code_variable: str | None = None, message_variable: str | None = None,
                 expression: str | None = None, variable: str | None = None, **kwargs: Any) -> None:
        super().__init__(name, code, **kwargs)
        self.error_message = error_message        # camunda:errorMessage of the bpmn:error
        self.code_variable = code_variable        # camunda:errorCodeVariable of a catching event
        self.message_variable = message_variable  # camunda:errorMessageVariable of a catching event
        self.expression = expression
        self.variable = variable

    def uncaught(self, my_task: Any) -> None:
        what = f"error '{self.code}'" if self.code else f"error '{self.name}'"
        raise WorkflowTaskException(f"{what} was thrown and no error boundary event or error event "
                                    "sub-process catches it", task=my_task)


class AlmenEscalationEventDefinition(_PropagatedEventMixin, EscalationEventDefinition):
    kind = "escalation"

    def __init__(self, name: str, code: str | None = None, code_variable: str | None = None,
                 expression: str | None = None, variable: str | None = None, **kwargs: Any) -> None:
        super().__init__(name, code, **kwargs)
        self.code_variable = code_variable        # camunda:escalationCodeVariable of a catching event
        self.expression = expression
        self.variable = variable


def find_handler(my_task: Any, event: BpmnEvent) -> Any:
    """The nearest waiting task that handles `event` thrown by `my_task`: an event sub-process of the
    thrower's scope, then a boundary event of the activity running that scope, then outwards. Among
    equally near handlers one for this very code wins over a catch-all."""
    top = my_task.workflow.top_workflow
    workflow = my_task.workflow
    while True:
        starts = [t for t in workflow.tasks.values() if getattr(t.task_spec, "is_event_subprocess_start", False)]
        if any(t.state == TaskState.READY and t.task_spec.cancel_activity for t in starts):
            return PENDING_INTERRUPT
        handlers = [t for t in starts if t.state == TaskState.WAITING and t.task_spec.catches(t, event)]
        if handlers:
            return _most_specific(handlers, event)
        if workflow.parent_task_id is None:
            return None
        activity = top.get_task_from_id(workflow.parent_task_id)
        anchor = activity
        if activity.parent is not None and isinstance(activity.parent.task_spec, MultiInstanceTask):
            anchor = activity.parent  # boundary events of a multi-instance activity sit on the whole loop
        split = anchor.parent
        if split is not None and isinstance(split.task_spec, BoundaryEventSplit) \
                and not isinstance(anchor.task_spec, BoundaryEvent):
            if any(isinstance(t.task_spec, BoundaryEvent) and t.task_spec.cancel_activity
                   and t.state in (TaskState.READY, TaskState.COMPLETED) for t in split.children):
                return PENDING_INTERRUPT
            handlers = [t for t in split.children if isinstance(t.task_spec, BoundaryEvent)
                        and t.state == TaskState.WAITING and t.task_spec.catches(t, event)]
            if handlers:
                return _most_specific(handlers, event)
        workflow = activity.workflow


def _most_specific(handlers: list[Any], event: BpmnEvent) -> Any:
    code = getattr(event.event_definition, "code", None)
    exact = [t for t in handlers if code is not None and getattr(t.task_spec.event_definition, "code", None) == code]
    return (exact or handlers)[0]
