"""Converters for the event specs and definitions of this package (instances must survive save/reload)."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.serializer.default.event_definition import ErrorEscalationEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.task_spec import (
    BoundaryEventConverter,
    BpmnTaskSpecConverter,
    EventConverter,
    EventJoinConverter,
    SubWorkflowConverter,
)
from SpiffWorkflow.bpmn.serializer.helpers.spec import EventDefinitionConverter

from .event_definitions import (
    AlmenErrorEventDefinition,
    AlmenEscalationEventDefinition,
    AlmenSignalEventDefinition,
)
from .event_specs import (
    AlmenBoundaryEvent,
    AlmenBoundaryEventJoin,
    AlmenEndEvent,
    AlmenEventBasedGateway,
    AlmenEventSubprocess,
    AlmenIntermediateCatchEvent,
    AlmenIntermediateThrowEvent,
    AlmenReceiveTask,
    EventSubprocessStart,
    ScopeEndJoin,
)


class SignalEventDefinitionConverter(EventDefinitionConverter):
    def to_dict(self, event_definition: Any) -> dict[str, Any]:
        dct = super().to_dict(event_definition)
        dct.update(expression=event_definition.expression, variable=event_definition.variable,
                   all_variables=event_definition.all_variables, mappings=event_definition.mappings)
        return dct


class ErrorEventDefinitionConverter(ErrorEscalationEventDefinitionConverter):
    def to_dict(self, event_definition: Any) -> dict[str, Any]:
        dct = super().to_dict(event_definition)
        dct.update(error_message=event_definition.error_message, code_variable=event_definition.code_variable,
                   message_variable=event_definition.message_variable, expression=event_definition.expression,
                   variable=event_definition.variable)
        return dct


class EscalationEventDefinitionConverter(ErrorEscalationEventDefinitionConverter):
    def to_dict(self, event_definition: Any) -> dict[str, Any]:
        dct = super().to_dict(event_definition)
        dct.update(code_variable=event_definition.code_variable, expression=event_definition.expression,
                   variable=event_definition.variable)
        return dct


def register_event_converters(config: dict[Any, Any]) -> None:
    config[AlmenSignalEventDefinition] = SignalEventDefinitionConverter
    config[AlmenErrorEventDefinition] = ErrorEventDefinitionConverter
    config[AlmenEscalationEventDefinition] = EscalationEventDefinitionConverter
    config[AlmenEventBasedGateway] = BpmnTaskSpecConverter
    config[AlmenIntermediateCatchEvent] = EventConverter
    config[AlmenIntermediateThrowEvent] = EventConverter
    config[AlmenEndEvent] = EventConverter
    config[AlmenReceiveTask] = EventConverter
    config[AlmenBoundaryEvent] = BoundaryEventConverter
    config[EventSubprocessStart] = BoundaryEventConverter
    config[AlmenBoundaryEventJoin] = EventJoinConverter
    config[ScopeEndJoin] = BpmnTaskSpecConverter
    config[AlmenEventSubprocess] = SubWorkflowConverter
