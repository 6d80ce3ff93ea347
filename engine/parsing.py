"""Turn uploaded BPMN/DMN documents into SpiffWorkflow specs, or into a list of problems.

Pipeline per deployment: hardened XML load -> our own validation and expression
translation on the tree (reserved ids, dangling references, JUEL, bare timer literals,
constructs we cannot run) -> SpiffWorkflow's Camunda parser, extended to keep
camunda:candidateGroups / assignee / dueDate -> serialisable spec dicts.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.event_parsers import (
    CANCEL_EVENT_XPATH,
    CONDITIONAL_EVENT_XPATH,
    ERROR_EVENT_XPATH,
    ESCALATION_EVENT_XPATH,
    MESSAGE_EVENT_XPATH,
    SIGNAL_EVENT_XPATH,
    TERMINATION_EVENT_XPATH,
    TIMER_EVENT_XPATH,
    ReceiveTaskParser,
    SendTaskParser,
)
from SpiffWorkflow.bpmn.parser.task_parsers import ConditionalGatewayParser, GatewayParser
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.bpmn.parser.util import first
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.defaults import SendTask, StartEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.camunda.parser.event_parsers import (
    CamundaBoundaryEventParser,
    CamundaEndEventParser,
    CamundaEventDefinitionParser,
    CamundaIntermediateCatchEventParser,
    CamundaIntermediateThrowEventParser,
    CamundaStartEventParser,
)
from SpiffWorkflow.camunda.parser.task_spec import BusinessRuleTaskParser, UserTaskParser
from SpiffWorkflow.camunda.parser.task_spec import SubWorkflowParser as CamundaSubWorkflowParser
from SpiffWorkflow.camunda.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.camunda.specs.user_task import Form, UserTask

from .bpmn import timer_bounds
from .bpmn.event_parsers import (
    AlmenProcessParser,
    AlmenSubWorkflowParser,
    EventGatewayParser,
    EventParsingMixin,
)
from .bpmn.event_specs import (
    AlmenBoundaryEvent,
    AlmenEndEvent,
    AlmenEventBasedGateway,
    AlmenIntermediateCatchEvent,
    AlmenIntermediateThrowEvent,
    AlmenReceiveTask,
)
from .bpmn.multi_instance import check_cardinality_limits, check_loop_characteristics, with_multi_instance
from .bpmn.preprocess import preprocess_events
from .bpmn.scopes import AlmenInclusiveGateway
from .bpmn.subprocesses import (
    AlmenCallActivity,
    AlmenCallActivityParser,
    AlmenSubProcess,
    AlmenTransaction,
    called_elements,
    check_call_activity,
)
from .dmn import RESULT_MAPPINGS, AlmenBusinessRuleTask, annotate_table, preprocess_dmn
from .errors import DeploymentError, Problem
from .expressions import ExpressionError, names_to_python, timer_to_python, to_python
from .gateways import LoopSafeParallelGateway
from .history_ttl import HistoryTtlError, parse_history_ttl
from .limits import DEFAULT_LIMITS, Limits
from .scripting import ScriptCompileError, compile_restricted_source
from .timers import (
    ClockCycleTimerEventDefinition,
    ClockDurationTimerEventDefinition,
    ClockTimeDateEventDefinition,
)
from .xml_loader import XmlRejected, parse_xml

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
DMN_NAMESPACES = {
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
    "http://www.omg.org/spec/DMN/20151101",
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "https://www.omg.org/spec/DMN/20230324/MODEL/",
}
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}

# Task spec names SpiffWorkflow creates itself; a diagram element with such an id is renamed.
RESERVED_IDS = {"Start", "End", "Root"}
RENAME_SUFFIX = "__af"
TASK_ATTRIBUTES = ("candidateGroups", "candidateUsers", "assignee", "dueDate", "followUpDate", "priority", "formKey")
JAVA_IMPLEMENTATIONS = ("class", "delegateExpression", "expression", "type")
UNSUPPORTED_ELEMENTS = {
    "complexGateway": "complex gateways are not supported",
    "compensateEventDefinition": "compensation events are not supported",
}


def public_id(bpmn_id: str | None) -> str | None:
    """The element id as the modeller wrote it (undo the reserved-id rename)."""
    if bpmn_id and bpmn_id.endswith(RENAME_SUFFIX):
        return bpmn_id[: -len(RENAME_SUFFIX)]
    return bpmn_id


@dataclass
class Resource:
    name: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class LoadedResource:
    resource: Resource
    kind: str  # "bpmn" | "dmn"
    root: Any
    process_ids: list[str] = field(default_factory=list)
    process_names: dict[str, str] = field(default_factory=dict)
    decision_ids: list[str] = field(default_factory=list)
    start_triggers: dict[str, dict[str, str]] = field(default_factory=dict)
    history_ttl: dict[str, int | None] = field(default_factory=dict)


@dataclass
class ParsedProcess:
    key: str
    name: str
    resource: Resource
    spec: Any
    subprocess_specs: dict[str, Any]
    start_trigger: dict[str, str] | None = None
    start_form: list[dict[str, Any]] = field(default_factory=list)
    history_ttl_days: int | None = None


# --- SpiffWorkflow parser extensions -------------------------------------------------------

class AlmenMessageEventDefinition(MessageEventDefinition):
    """A correlated message's variables become process variables (Camunda semantics)."""

    def update_internal_data(self, my_task: Any, event: Any) -> None:
        # Camunda's dialect forces a "<task>_Response" variable; keep the payload as sent.
        my_task.internal_data[self.name] = event.payload

    def update_task_data(self, my_task: Any) -> None:
        event_data = my_task.internal_data.get(self.name) or {}
        payload = event_data.get("payload")
        # The receiving event's variable (SpiffWorkflow's messageVariable) first, else the sender's.
        result_var = self.result_var or event_data.get("result_var")
        if result_var:
            my_task.data[result_var] = payload
        elif isinstance(payload, dict):
            my_task.set_data(**payload)

    def throw(self, my_task: Any) -> None:
        # Without camunda:expression the message carries the sender's variables, so a process started
        # by it begins with the case as it stands.
        payload = (my_task.workflow.script_engine.evaluate(my_task, self.expression) if self.expression
                   else json.loads(json.dumps(my_task.data, default=str)))
        event = BpmnEvent(self, payload={"payload": payload, "result_var": self.result_var})
        my_task.workflow.top_workflow.catch(event)


END_EVENT_XPATHS = [MESSAGE_EVENT_XPATH, CANCEL_EVENT_XPATH, ERROR_EVENT_XPATH, ESCALATION_EVENT_XPATH,
                    TERMINATION_EVENT_XPATH, SIGNAL_EVENT_XPATH]
START_EVENT_XPATHS = [MESSAGE_EVENT_XPATH, SIGNAL_EVENT_XPATH, TIMER_EVENT_XPATH, CONDITIONAL_EVENT_XPATH,
                      ERROR_EVENT_XPATH, ESCALATION_EVENT_XPATH]


class _ClockTimerMixin(EventParsingMixin):
    def parse_timer_event(self, event: Any) -> Any:
        description = self.get_event_description(event)
        name = self.node.get("name", self.node.get("id"))
        for tag, cls in (("timeDate", ClockTimeDateEventDefinition),
                         ("timeDuration", ClockDurationTimerEventDefinition),
                         ("timeCycle", ClockCycleTimerEventDefinition)):
            node = first(self.xpath(f".//bpmn:{tag}"))
            if node is not None:
                if not (node.text or "").strip():
                    raise ValidationException(f"the timer's {tag} is empty", node=self.node, file_name=self.filename)
                return cls(name, node.text, description=description)
        raise ValidationException("the timer has no timeDate, timeDuration or timeCycle", node=self.node,
                                  file_name=self.filename)

    def parse_message_event(self, message_event: Any) -> Any:
        parsed = super().parse_message_event(message_event)
        # Messages are correlated by name and business key (deploy refuses correlation properties).
        return AlmenMessageEventDefinition(parsed.name, [], parsed.expression, parsed.result_var)


def parse_form_fields(node: Any) -> list[dict[str, Any]]:
    """camunda:formData of a user task or start event as plain field dicts (what forms.py validates)."""
    fields = []
    for f in node.xpath("./bpmn:extensionElements/camunda:formData/camunda:formField", namespaces=NS):
        properties, validation, options = {}, {}, []
        for child in f:
            if not isinstance(child.tag, str):
                continue
            local = _local(child)
            if local == "properties":
                properties.update({p.get("id"): p.get("value") for p in child if isinstance(p.tag, str)})
            elif local == "validation":
                validation.update({c.get("name"): c.get("config") for c in child if isinstance(c.tag, str)})
            elif local == "value":
                options.append({"id": child.get("id"), "name": child.get("name") or child.get("id")})
        fields.append({"id": f.get("id"), "label": f.get("label") or f.get("id"), "type": f.get("type") or "string",
                       "default": f.get("defaultValue"), "options": options, "validation": validation,
                       "properties": properties})
    return fields


class _StartParser(_ClockTimerMixin, CamundaStartEventParser):
    def create_task(self) -> Any:
        # Error and escalation start events exist in event sub-processes (SpiffWorkflow reads neither).
        task = self._create_task(self.get_event_definition(START_EVENT_XPATHS))
        self.spec.start.connect(task)
        return task

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        extensions = super().parse_extensions(node)
        form = parse_form_fields(self.node)
        if form:
            extensions["form"] = form
        return extensions


class _CatchParser(_ClockTimerMixin, CamundaIntermediateCatchEventParser):
    pass


class _ThrowParser(_ClockTimerMixin, CamundaIntermediateThrowEventParser):
    pass


class _BoundaryParser(_ClockTimerMixin, CamundaBoundaryEventParser):
    pass


class _EndParser(_ClockTimerMixin, CamundaEndEventParser):
    def create_task(self) -> Any:
        # SpiffWorkflow's end event parser ignores signal end events (they ended silently).
        task = self._create_task(self.get_event_definition(END_EVENT_XPATHS))
        task.connect(self.spec.end)
        return task


class _ReceiveParser(_ClockTimerMixin, CamundaEventDefinitionParser, ReceiveTaskParser):
    create_task = ReceiveTaskParser.create_task


class _SendParser(_ClockTimerMixin, CamundaEventDefinitionParser, SendTaskParser):
    create_task = SendTaskParser.create_task


class AlmenUserTaskParser(UserTaskParser):
    """Reads the form even without camunda:formKey, and keeps the assignment attributes."""

    def get_form(self) -> Form:
        had_key = self.node.get(f"{{{CAMUNDA_NS}}}formKey")
        if had_key is None:
            self.node.set(f"{{{CAMUNDA_NS}}}formKey", "")
            try:
                return super().get_form()
            finally:
                del self.node.attrib[f"{{{CAMUNDA_NS}}}formKey"]
        return super().get_form()

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        extensions = super().parse_extensions(node)
        for attr in TASK_ATTRIBUTES:
            value = self.node.get(f"{{{CAMUNDA_NS}}}{attr}")
            if value:
                extensions[f"camunda:{attr}"] = value
        doc = first(self.xpath("./bpmn:documentation"))
        if doc is not None and doc.text:
            extensions["documentation"] = doc.text.strip()
        extensions["form"] = parse_form_fields(self.node)
        return extensions


class AlmenBusinessRuleTaskParser(BusinessRuleTaskParser):
    def create_task(self) -> Any:  # SpiffWorkflow's parser ignores the configured spec class
        decision_ref = self.get_decision_ref(self.node)
        return self.spec_class(self.spec, self.bpmn_id,
                               dmnEngine=self.process_parser.parser.get_engine(decision_ref, self.node),
                               **self.bpmn_attributes)

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        extensions = super().parse_extensions(node)
        for attr in ("resultVariable", "mapDecisionResult"):
            value = self.node.get(f"{{{CAMUNDA_NS}}}{attr}")
            if value:
                extensions[f"camunda:{attr}"] = value.strip()
        variable = extensions.get("camunda:resultVariable")
        mapping = extensions.get("camunda:mapDecisionResult")
        if variable is not None and (not variable.isidentifier() or variable.startswith("_")):
            raise ValidationException(f"camunda:resultVariable '{variable}' is not a valid variable name",
                                      node=self.node, file_name=self.filename)
        if mapping is not None and mapping not in RESULT_MAPPINGS:
            raise ValidationException(f"camunda:mapDecisionResult '{mapping}' is unknown; use one of "
                                      f"{', '.join(RESULT_MAPPINGS)}", node=self.node, file_name=self.filename)
        return extensions


class AlmenParser(CamundaParser):
    PROCESS_PARSER_CLASS = AlmenProcessParser
    OVERRIDE_PARSER_CLASSES = dict(CamundaParser.OVERRIDE_PARSER_CLASSES)
    OVERRIDE_PARSER_CLASSES.update({
        full_tag("userTask"): (AlmenUserTaskParser, UserTask),
        full_tag("businessRuleTask"): (AlmenBusinessRuleTaskParser, AlmenBusinessRuleTask),
        full_tag("parallelGateway"): (GatewayParser, LoopSafeParallelGateway),
        full_tag("startEvent"): (_StartParser, StartEvent),
        full_tag("intermediateCatchEvent"): (_CatchParser, AlmenIntermediateCatchEvent),
        full_tag("intermediateThrowEvent"): (_ThrowParser, AlmenIntermediateThrowEvent),
        full_tag("boundaryEvent"): (_BoundaryParser, AlmenBoundaryEvent),
        full_tag("endEvent"): (_EndParser, AlmenEndEvent),
        full_tag("receiveTask"): (_ReceiveParser, AlmenReceiveTask),
        full_tag("sendTask"): (_SendParser, SendTask),
        full_tag("eventBasedGateway"): (EventGatewayParser, AlmenEventBasedGateway),
        full_tag("inclusiveGateway"): (ConditionalGatewayParser, AlmenInclusiveGateway),
        # Embedded sub-processes (engine/bpmn/subprocesses.py); event sub-processes (triggeredByEvent)
        # are taken over by the events parser (engine/bpmn/event_parsers.py).
        full_tag("subProcess"): (AlmenSubWorkflowParser, AlmenSubProcess),
        full_tag("transaction"): (CamundaSubWorkflowParser, AlmenTransaction),
        full_tag("callActivity"): (AlmenCallActivityParser, AlmenCallActivity),
    })

    def get_engine(self, decision_ref: str, node: Any) -> Any:
        engine = super().get_engine(decision_ref, node)
        annotate_table(engine.decision_table, self.dmn_parsers[decision_ref])
        return engine

    def _get_parser_class(self, tag: str) -> tuple[Any, Any]:
        # Every task parser reads multiInstanceLoopCharacteristics the Camunda 7 way.
        parser_class, spec_class = super()._get_parser_class(tag)
        if parser_class is not None and issubclass(parser_class, TaskParser):
            parser_class = with_multi_instance(parser_class)
        return parser_class, spec_class


# --- loading and preprocessing ---------------------------------------------------------------

def load_resource(resource: Resource) -> tuple[LoadedResource | None, list[Problem]]:
    try:
        root = parse_xml(resource.content)
    except XmlRejected as exc:
        return None, [Problem(resource.name, None, str(exc))]
    ns = etree.QName(root).namespace
    if ns == BPMN_NS:
        loaded = LoadedResource(resource, "bpmn", root)
        problems = preprocess_bpmn(root, resource.name)
        for proc in root.iterfind(f"{{{BPMN_NS}}}process"):
            if proc.get("isExecutable", "true").lower() == "true":
                pid = proc.get("id")
                if not pid:  # the schema allows it, but the id is the process key
                    problems.append(Problem(resource.name, None, "the executable process has no id"))
                    continue
                loaded.process_ids.append(pid)
                loaded.process_names[pid] = proc.get("name") or pid
                try:
                    loaded.history_ttl[pid] = parse_history_ttl(proc.get(f"{{{CAMUNDA_NS}}}historyTimeToLive"))
                except HistoryTtlError as exc:
                    problems.append(Problem(resource.name, pid, f"process '{pid}': {exc}"))
                trigger = _extract_start_trigger(proc, root)
                if trigger:
                    loaded.start_triggers[pid] = trigger
        if not loaded.process_ids and not problems:
            problems.append(Problem(resource.name, None,
                                    "the file contains no executable process (isExecutable=\"true\")"))
        return loaded, problems
    if ns in DMN_NAMESPACES or (ns or "").rstrip("/").endswith(("DMN/20151101/dmn.xsd", "MODEL")) and "DMN" in (ns or ""):
        loaded = LoadedResource(resource, "dmn", root)
        problems = preprocess_dmn(root, resource.name)
        # A decision without an id is one of the problems (preprocess_dmn).
        loaded.decision_ids = [decision_id for d in root.iter()
                               if etree.QName(d).localname == "decision" and (decision_id := d.get("id"))]
        return loaded, problems
    return None, [Problem(resource.name, None, f"not a BPMN 2.0 or DMN document (root element {root.tag!s})")]


def _extract_start_trigger(proc: Any, root: Any) -> dict[str, str] | None:
    """A process with a single timer or message start event is started by the engine (scheduler or
    correlate), as in Camunda: the trigger is kept on the definition and the start itself made plain,
    so a started instance runs at once instead of waiting on its own start event."""
    starts = proc.findall(f"{{{BPMN_NS}}}startEvent")
    if len(starts) != 1:
        return None
    start = starts[0]
    timer = start.find(f"{{{BPMN_NS}}}timerEventDefinition")
    message = start.find(f"{{{BPMN_NS}}}messageEventDefinition")
    signal = start.find(f"{{{BPMN_NS}}}signalEventDefinition")
    if timer is not None:
        expr = next((c for c in timer if isinstance(c.tag, str)), None)
        if expr is None or not (expr.text or "").strip():
            return None
        start.remove(timer)
        return {"kind": "timer", "type": _local(expr), "expression": expr.text.strip(), "element_id": start.get("id")}
    if message is not None:
        ref = message.get("messageRef")
        msg = next((m for m in root.iter(f"{{{BPMN_NS}}}message") if m.get("id") == ref), None)
        name = (msg.get("name") if msg is not None else None) or ref or start.get("name")
        start.remove(message)
        return {"kind": "message", "name": name, "element_id": start.get("id"),
                "variable": message.get(f"{{{CAMUNDA_NS}}}resultVariable")}
    if signal is not None:
        ref = signal.get("signalRef")
        sig = next((m for m in root.iter(f"{{{BPMN_NS}}}signal") if m.get("id") == ref), None)
        name = (sig.get("name") if sig is not None else None) or start.get("name")
        start.remove(signal)
        variable = next((el.text.strip() for el in sig.iter(f"{{{SPIFF_NS}}}variableName") if el.text), None) \
            if sig is not None else None
        return {"kind": "signal", "name": name, "element_id": start.get("id"), "variable": variable}
    return None


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _owner_id(el: Any) -> str | None:
    while el is not None:
        if el.get("id") and _local(el) not in ("conditionExpression", "timeDuration", "timeDate", "timeCycle",
                                                "script", "loopCardinality", "completionCondition"):
            return el.get("id")
        el = el.getparent()
    return None


def preprocess_bpmn(root: Any, filename: str) -> list[Problem]:
    problems: list[Problem] = []
    _rename_reserved_ids(root)

    def problem(el: Any, message: str) -> None:
        problems.append(Problem(filename, public_id(_owner_id(el)), message))

    ids = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
    bpmn_ids = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")
                and etree.QName(el).namespace == BPMN_NS}
    for form_field in root.iter(f"{{{CAMUNDA_NS}}}formField"):
        if form_field.get("id") in bpmn_ids:
            problem(form_field, f"form field id '{form_field.get('id')}' is also the id of a diagram element; "
                                "rename one of them")
    flows = {f.get("id") for f in root.iter(f"{{{BPMN_NS}}}sequenceFlow")}
    for el in root.iter(f"{{{BPMN_NS}}}incoming", f"{{{BPMN_NS}}}outgoing"):
        ref = (el.text or "").strip()
        if ref and ref not in flows:
            problem(el.getparent(), f"<{_local(el)}> names sequence flow '{ref}', which does not exist")
    gateways = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and _local(el).endswith("Gateway")}
    for flow in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        for attr in ("sourceRef", "targetRef"):
            if flow.get(attr) not in ids:
                problem(flow, f"{attr} '{flow.get(attr)}' does not name an element")
        if flow.get("sourceRef") == flow.get("targetRef") and flow.get("sourceRef") in gateways:
            problem(flow, f"the sequence flow leads from gateway '{flow.get('sourceRef')}' back to itself")

    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        name = _local(el)
        if etree.QName(el).namespace != BPMN_NS:
            continue
        if name in UNSUPPORTED_ELEMENTS:
            problem(el, UNSUPPORTED_ELEMENTS[name])
        elif name in ("serviceTask", "sendTask", "businessRuleTask"):
            _check_implementation(el, name, problem)
        elif name == "scriptTask":
            fmt = (el.get("scriptFormat") or "python").lower()
            script = first(el.xpath("./bpmn:script", namespaces=NS))
            if fmt not in ("python", "python3", "py"):
                problem(el, f"script format '{fmt}' is not supported; AlmenFlow runs restricted Python")
            elif script is None or not (script.text or "").strip():
                problem(el, "the script task has no script")
            else:
                _check_compiles(el, "exec", script.text, problem)
        elif name == "conditionExpression":
            lang = (el.get("language") or "").lower()
            if lang and lang not in ("python", "juel", "${}"):
                problem(el, f"condition language '{lang}' is not supported")
            else:
                _translate(el, to_python, problem)
        elif name in ("timeDate", "timeDuration", "timeCycle"):
            _translate_timer(el, name, problem)
        elif name in ("loopCardinality", "completionCondition"):
            _translate(el, to_python, problem)
        elif name == "multiInstanceLoopCharacteristics":
            check_loop_characteristics(el, problem, lambda e, src: _check_compiles(e, "eval", src, problem))
        elif name == "callActivity":
            check_call_activity(el, problem, lambda e, src: _check_compiles(e, "eval", src, problem))
        elif name == "userTask":
            _check_task_attributes(el, problem)
    preprocess_events(root, problem)
    return problems


def _rename_reserved_ids(root: Any) -> None:
    reserved = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id") in RESERVED_IDS}
    if not reserved:
        return
    mapping = {old: old + RENAME_SUFFIX for old in reserved}
    ref_attrs = ("id", "sourceRef", "targetRef", "attachedToRef", "default", "bpmnElement", "processRef")
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for attr in ref_attrs:
            if el.get(attr) in mapping:
                el.set(attr, mapping[el.get(attr)])
        if _local(el) in ("incoming", "outgoing", "flowNodeRef", "sourceRef", "targetRef") and \
                (el.text or "").strip() in mapping:
            el.text = mapping[el.text.strip()]


def _check_implementation(el: Any, name: str, problem: Any) -> None:
    for attr in JAVA_IMPLEMENTATIONS:
        value = el.get(f"{{{CAMUNDA_NS}}}{attr}")
        if value is not None:
            if attr == "type" and value == "external":
                problem(el, "external service tasks (camunda:type=\"external\") need a worker that AlmenFlow does not have")
            else:
                problem(el, f"{name} implemented by Java (camunda:{attr}=\"{value}\") cannot run in AlmenFlow")
            return
    for attr_name, value in el.attrib.items():
        qn = etree.QName(attr_name)
        if qn.namespace and qn.namespace not in (CAMUNDA_NS,) and qn.localname in JAVA_IMPLEMENTATIONS + ("class",):
            problem(el, f"{name} implemented by another engine's extension ({qn.localname}=\"{value}\") cannot run")
            return
    if name == "businessRuleTask":
        if el.get(f"{{{CAMUNDA_NS}}}decisionRef") is None:
            problem(el, "business rule task needs camunda:decisionRef naming a DMN decision")
        return
    if name == "sendTask" and (el.get("messageRef") or el.find(f"{{{BPMN_NS}}}messageEventDefinition") is not None):
        return  # sends its message like a message throw event
    if name in ("serviceTask", "sendTask"):
        problem(el, f"{name} has no implementation AlmenFlow can run (use a script task or a user task)")


def _check_compiles(el: Any, mode: str, source: str, problem: Any) -> bool:
    try:
        compile_restricted_source(mode, source)
        return True
    except ScriptCompileError as exc:
        problem(el, f"{'script' if mode == 'exec' else 'expression'} is not allowed or invalid: {exc}")
        return False


def _translate(el: Any, fn: Any, problem: Any) -> None:
    text = (el.text or "").strip()
    if not text:
        return
    try:
        python = fn(text)
    except ExpressionError as exc:
        problem(el, f"expression '{text}' cannot be translated: {exc}")
        return
    if _check_compiles(el, "eval", python, problem):
        el.text = python


# Quartz/Unix cron: 5 to 7 fields of digits, *, ?, /, -, L, W, # or month/day names.
_CRON = re.compile(r"^(?:[0-9*?/,#LW-]+|[A-Z]{3}(?:-[A-Z]{3})?)(?:\s+(?:[0-9*?/,#LW-]+|[A-Z]{3}(?:[-,][A-Z]{3})*)){4,6}$",
                   re.IGNORECASE)


def _translate_timer(el: Any, name: str, problem: Any) -> None:
    text = (el.text or "").strip()
    if not text:
        problem(el, f"the timer's {name} is empty")
        return
    if _CRON.match(text):
        problem(el, f"cron expression '{text}' is not supported; use ISO 8601 (e.g. R/PT5M)")
        return
    _translate(el, timer_to_python, problem)


def _check_task_attributes(el: Any, problem: Any) -> None:
    for attr, fn in (("candidateGroups", names_to_python), ("assignee", names_to_python),
                     ("candidateUsers", names_to_python), ("dueDate", timer_to_python),
                     ("followUpDate", timer_to_python), ("priority", to_python)):
        value = el.get(f"{{{CAMUNDA_NS}}}{attr}")
        if not value:
            continue
        try:
            _check_compiles(el, "eval", fn(value), problem)
        except ExpressionError as exc:
            problem(el, f"camunda:{attr} '{value}' cannot be translated: {exc}")


# --- building specs ---------------------------------------------------------------------------

def build_processes(new: list[LoadedResource], context: list[LoadedResource], limits: Limits | None = None,
                    now: datetime | None = None, deployed: dict[str, list[int]] | None = None) -> list[ParsedProcess]:
    """Parse every executable process in `new`. `context` supplies decisions deployed earlier;
    `deployed` the versions of every deployed process key (to check what call activities call);
    `now` is when literal timers are checked against their bounds.
    Each BPMN file is parsed on its own, so two files may use the same sub-process id; called
    processes are resolved at run time (engine/calls.py). Raises DeploymentError listing every
    problem."""
    limits = limits or DEFAULT_LIMITS
    deployed = deployed or {}
    problems: list[Problem] = []
    new_names = {r.resource.name for r in new}
    new_decisions = {d for r in new for d in r.decision_ids}
    decisions = [r for r in new if r.kind == "dmn"] + [
        c for c in context if c.kind == "dmn" and c.resource.name not in new_names
        and not set(c.decision_ids) & new_decisions]
    defined_in: dict[str, str] = {}
    for loaded in new:
        for pid in loaded.process_ids:
            if pid in defined_in:
                problems.append(Problem(loaded.resource.name, pid,
                                        f"process id '{pid}' is also defined in {defined_in[pid]}"))
            defined_in.setdefault(pid, loaded.resource.name)
    for loaded in [r for r in new if r.kind == "dmn"]:  # each new DMN file checked on its own first
        try:
            AlmenParser().add_dmn_xml(loaded.root, filename=loaded.resource.name)
        except ValidationException as exc:
            problems.append(_problem_from(exc, loaded.resource.name))
        except Exception as exc:  # SpiffWorkflow raises many kinds; none may escape as a crash
            problems.append(Problem(loaded.resource.name, None, f"cannot be parsed: {exc}"))
    if problems:
        raise DeploymentError(problems)
    parsers: dict[str, AlmenParser] = {}
    for loaded in [r for r in new if r.kind == "bpmn"]:
        parser = AlmenParser()
        try:
            for dmn in decisions:
                parser.add_dmn_xml(dmn.root, filename=dmn.resource.name)
            parser.add_bpmn_xml(loaded.root, filename=loaded.resource.name)
            parsers[loaded.resource.name] = parser
        except ValidationException as exc:
            problems.append(_problem_from(exc, loaded.resource.name))
        except Exception as exc:  # SpiffWorkflow raises many kinds; none may escape as a crash
            problems.append(Problem(loaded.resource.name, None, f"cannot be parsed: {exc}"))
    if problems:
        raise DeploymentError(problems)

    result: list[ParsedProcess] = []
    for loaded in new:
        if loaded.kind != "bpmn":
            continue
        parser = parsers[loaded.resource.name]
        for pid in loaded.process_ids:
            try:
                spec = parser.get_spec(pid)
                subs = _embedded_specs(parser, spec)
            except ValidationException as exc:
                problems.append(_problem_from(exc, loaded.resource.name))
                continue
            except Exception as exc:
                problems.append(Problem(loaded.resource.name, pid, f"cannot be parsed: {exc}"))
                continue
            if len(spec.task_specs) <= 3:
                problems.append(Problem(loaded.resource.name, pid, "the process has no flow nodes"))
                continue
            specs = [spec, *subs.values()]
            problems.extend(_structure_problems(loaded.resource.name, spec, subs, specs, limits, deployed,
                                               set(defined_in)))
            problems.extend(_check_timer_literals(_all_task_specs(spec, subs), loaded.resource.name, limits,
                                                  now or datetime.now(UTC)))
            start_form: list[dict[str, Any]] = next((ts.extensions["form"] for ts in spec.bpmn_start_events
                                                     if (getattr(ts, "extensions", None) or {}).get("form")), [])
            result.append(ParsedProcess(pid, loaded.process_names.get(pid, pid), loaded.resource, spec, subs,
                                        loaded.start_triggers.get(pid), start_form, loaded.history_ttl.get(pid)))
    if problems:
        raise DeploymentError(problems)
    return result


def _embedded_specs(parser: AlmenParser, spec: Any) -> dict[str, Any]:
    """The specs of the sub-processes embedded in `spec`, at any depth (not called processes)."""
    found: dict[str, Any] = {}
    todo = [spec]
    while todo:
        current = todo.pop()
        for ts in current.task_specs.values():
            if isinstance(ts, SubWorkflowTask) and not isinstance(ts, AlmenCallActivity) and ts.spec not in found:
                found[ts.spec] = parser.get_spec(ts.spec)
                todo.append(found[ts.spec])
    return found


def _nesting(spec: Any, subs: dict[str, Any]) -> int:
    """How deep embedded sub-processes nest in `spec` (0: none)."""
    inner = [ts.spec for ts in spec.task_specs.values()
             if isinstance(ts, SubWorkflowTask) and not isinstance(ts, AlmenCallActivity) and ts.spec in subs]
    return 1 + max(_nesting(subs[name], subs) for name in inner) if inner else 0


def _structure_problems(filename: str, spec: Any, subs: dict[str, Any], specs: list[Any], limits: Limits,
                        deployed: dict[str, list[int]], deploying: set[str]) -> list[Problem]:
    problems = [Problem(filename, public_id(element), message)
                for element, message in check_cardinality_limits(specs, limits.max_multi_instance)]
    if _nesting(spec, subs) > limits.max_call_depth:
        problems.append(Problem(filename, spec.name, f"sub-processes nest {_nesting(spec, subs)} deep, more than "
                                                     f"the limit of {limits.max_call_depth}"))
    for element, key, binding, version in called_elements(specs):
        versions = deployed.get(key, [])
        if binding == "deployment":
            if key not in deploying:
                problems.append(Problem(filename, public_id(element),
                                        f"calls process '{key}' with calledElementBinding=\"deployment\", but '{key}' "
                                        "is not deployed together with it"))
        elif binding == "version":
            upcoming = max(versions, default=0) + 1 if key in deploying else None
            if version not in versions and version != upcoming:
                problems.append(Problem(filename, public_id(element),
                                        f"calls version {version} of process '{key}', which is not deployed"))
        elif key not in deploying and not versions:
            problems.append(Problem(filename, public_id(element),
                                    f"calls process '{key}', which is neither deployed nor in this deployment"))
    return problems


def _check_timer_literals(task_specs: list[Any], filename: str, limits: Limits, now: datetime) -> list[Problem]:
    """Literal timer values must be valid and within the bounds (computed ones are checked when they fire)."""
    problems = []
    for ts in task_specs:
        definition = getattr(ts, "event_definition", None)
        kind = getattr(definition, "kind", None)
        if kind not in TIMER_KINDS:
            continue
        value = timer_bounds.literal(getattr(definition, "expression", None))
        if value is None:
            continue
        try:
            timer_bounds.first_due(kind, value, now, limits)
        except timer_bounds.TimerBoundError as exc:
            problems.append(Problem(filename, public_id(ts.bpmn_id), f"{kind} {exc}"))
    return problems


TIMER_KINDS = ("timeDate", "timeDuration", "timeCycle")


def _all_task_specs(spec: Any, subs: dict[str, Any]) -> list[Any]:
    specs = list(spec.task_specs.values())
    for sub in subs.values():
        specs.extend(sub.task_specs.values())
    return specs


def _problem_from(exc: ValidationException, filename: str) -> Problem:
    message = str(exc.args[0]) if exc.args else str(exc)
    notes = getattr(exc, "__notes__", None)
    if notes:
        message += " (" + "; ".join(notes) + ")"
    return Problem(exc.file_name or filename, public_id(getattr(exc, "id", None)) or None, message)
