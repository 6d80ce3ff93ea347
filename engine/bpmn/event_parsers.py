"""Parser side of the event constructs: signal/error/escalation definitions, event sub-processes, the
event-based gateway. The XML was checked and normalised by preprocess.py before it gets here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ProcessParser import ProcessParser
from SpiffWorkflow.bpmn.parser.task_parsers import GatewayParser, SubprocessParser
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.control import StartEventJoin, StartEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.camunda.parser.task_spec import SubWorkflowParser

from .event_definitions import (
    AlmenErrorEventDefinition,
    AlmenEscalationEventDefinition,
    AlmenSignalEventDefinition,
)
from .event_specs import AlmenEventSubprocess, EventSubprocessStart, finalize_spec

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"


def _root_element(node: Any, tag: str, element_id: str | None) -> Any:
    if not element_id:
        return None
    root = node.getroottree().getroot()
    return next((el for el in root.iter(f"{{{BPMN_NS}}}{tag}") if el.get("id") == element_id), None)


def _extensions(node: Any, namespace: str, name: str) -> list[Any]:
    if node is None:
        return []
    return [el for ext in node.findall(f"{{{BPMN_NS}}}extensionElements")
            for el in ext.findall(f"{{{namespace}}}{name}")]


def _spiff_text(node: Any, name: str) -> str | None:
    found = _extensions(node, SPIFF_NS, name)
    text = (found[0].text or "").strip() if found else ""
    return text or None


if TYPE_CHECKING:
    # The mixins below extend SpiffWorkflow's event definition parsers (untyped: Any to mypy).
    from SpiffWorkflow.bpmn.parser.event_parsers import EventDefinitionParser as _EventParserHost
else:
    _EventParserHost = object


class EventParsingMixin(_EventParserHost):
    """Signal, error and escalation definitions as engine/bpmn/event_definitions.py runs them."""

    def parse_signal_event(self, signal_event: Any) -> AlmenSignalEventDefinition:
        base = super().parse_signal_event(signal_event)
        signal = _root_element(self.node, "signal", signal_event.get("signalRef"))
        all_variables, mappings = False, []
        for mapping in _extensions(signal_event, CAMUNDA_NS, "in"):
            if mapping.get("variables") == "all":
                all_variables = True
            elif mapping.get("target"):
                mappings.append([mapping.get("source"), mapping.get("sourceExpression"), mapping.get("target")])
        return AlmenSignalEventDefinition(base.name, expression=_spiff_text(signal, "payloadExpression"),
                                          variable=_spiff_text(signal, "variableName"),
                                          all_variables=all_variables, mappings=mappings,
                                          description=base.description)

    def parse_error_event(self, error_event: Any) -> AlmenErrorEventDefinition:
        base = super().parse_error_event(error_event)
        error = _root_element(self.node, "error", error_event.get("errorRef"))
        return AlmenErrorEventDefinition(
            base.name if error is not None else "error", base.code,
            error_message=error.get(f"{{{CAMUNDA_NS}}}errorMessage") if error is not None else None,
            code_variable=error_event.get(f"{{{CAMUNDA_NS}}}errorCodeVariable"),
            message_variable=error_event.get(f"{{{CAMUNDA_NS}}}errorMessageVariable"),
            expression=_spiff_text(error, "payloadExpression"), variable=_spiff_text(error, "variableName"),
            description=base.description)

    def parse_escalation_event(self, escalation_event: Any) -> AlmenEscalationEventDefinition:
        base = super().parse_escalation_event(escalation_event)
        escalation = _root_element(self.node, "escalation", escalation_event.get("escalationRef"))
        return AlmenEscalationEventDefinition(
            base.name if escalation is not None else "escalation", base.code,
            code_variable=escalation_event.get(f"{{{CAMUNDA_NS}}}escalationCodeVariable"),
            expression=_spiff_text(escalation, "payloadExpression"),
            variable=_spiff_text(escalation, "variableName"), description=base.description)


class EventGatewayParser(GatewayParser):
    """An event-based gateway is a plain split here: its targets are ordinary waiting catch events."""


class AlmenSubWorkflowParser(SubWorkflowParser):
    """Camunda's parser ignores triggeredByEvent and made every sub-process a plain one (the configured
    spec class: AlmenSubProcess, engine/bpmn/subprocesses.py)."""

    def create_task(self) -> Any:
        if self.node.get("triggeredByEvent") == "true":
            subworkflow_spec = SubprocessParser.get_subprocess_spec(self)
            return AlmenEventSubprocess(self.spec, self.bpmn_id, subworkflow_spec=subworkflow_spec,
                                        **self.bpmn_attributes)
        return super().create_task()


class AlmenProcessParser(ProcessParser):
    """Wires event sub-processes as EventSubprocessStart -> EventSubprocess -> scope end, and gives every
    scope the joins of event_specs.py."""

    def _parse(self) -> None:
        super()._parse()
        finalize_spec(self.spec)

    def add_tasks(self) -> None:
        start_nodes = self.xpath("./bpmn:startEvent")
        if not start_nodes and self.process_executable:
            raise ValidationException("No start event found", node=self.node, file_name=self.filename)
        for node in start_nodes:
            self.parse_node(node)
        if len(start_nodes) > 1:
            split = StartEventSplit(self.spec, "StartEventSplit")
            join = StartEventJoin(self.spec, "StartEventJoin", split_task="StartEventSplit", threshold=1, cancel=True)
            for spec in self.spec.start.outputs:
                spec.inputs = [split]
                spec.connect(join)
            split.outputs = self.spec.start.outputs
            self.spec.start.outputs = [split]
            split.inputs = [self.spec.start]
        for node in self.xpath("./bpmn:subProcess[@triggeredByEvent='true']"):
            self._add_event_subprocess(node)

    def _add_event_subprocess(self, node: Any) -> None:
        runner = self.parse_node(node)
        sub_spec = self.parser.process_parsers[runner.spec].get_spec()
        starts = sub_spec.bpmn_start_events
        if len(starts) != 1 or isinstance(starts[0].event_definition, NoneEventDefinition):
            raise ValidationException("an event sub-process needs exactly one start event with a trigger",
                                      node=node, file_name=self.filename)
        start = starts[0]
        start_node = next(el for el in node if isinstance(el.tag, str)
                          and etree.QName(el).localname == "startEvent")
        interrupting = start_node.get("isInterrupting", "true").lower() != "false"
        listener = EventSubprocessStart(self.spec, f"{node.get('id')}.start", start.event_definition,
                                        interrupting, description="Event Sub-Process Start")
        listener.bpmn_id = start.bpmn_id
        listener.bpmn_name = start.bpmn_name
        listener.extensions = {}
        # Inside the sub-process the start only passes the token on: the trigger was caught outside.
        start.event_definition = NoneEventDefinition()
        self.spec.start.connect(listener)
        listener.connect(runner)
        runner.connect(self.spec.end)
