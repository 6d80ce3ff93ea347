"""Deploy-time checks and rewrites of the event constructs, on the XML before SpiffWorkflow parses it.

Everything here either makes a construct run as Camunda 7 documents it or refuses it with the element
and the reason:
- link events become a sequence flow from each throw to the catch of the same name in the same scope;
- event-based gateways, event sub-processes, receive and send tasks, start events are checked;
- signal, error and escalation references and `camunda:in` mappings are checked and translated;
- the SpiffWorkflow extension dialect is mapped onto the same semantics (message payload and variable,
  signal/error/escalation payloads) or refused (pre/post scripts, service operators, correlation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from ..expressions import ExpressionError, to_python
from ..scripting import ScriptCompileError, compile_restricted_source

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"

Report = Callable[[Any, str], None]

SCOPES = ("process", "subProcess", "transaction", "adHocSubProcess")
EVENT_DEFINITIONS = ("messageEventDefinition", "timerEventDefinition", "signalEventDefinition",
                     "errorEventDefinition", "escalationEventDefinition", "conditionalEventDefinition",
                     "compensateEventDefinition", "linkEventDefinition", "terminateEventDefinition",
                     "cancelEventDefinition")
GATEWAY_TARGET_DEFINITIONS = ("messageEventDefinition", "timerEventDefinition", "signalEventDefinition")
EVENT_SUBPROCESS_TRIGGERS = ("messageEventDefinition", "timerEventDefinition", "signalEventDefinition",
                             "errorEventDefinition", "escalationEventDefinition")
# SpiffWorkflow extensions that only feed Spiff Arena's user interface: nothing to run.
SPIFF_IGNORED = {"instructionsForEndUser", "properties", "property", "unitTests", "unitTest", "inputJson",
                 "expectedOutputJson", "taskMetadataValues", "taskMetadataValue", "allowGuest",
                 "guestConfirmation", "signalButtonLabel", "processModelToStartOnTaskAvailable", "category"}
SPIFF_ITEM_OWNERS = ("signal", "error", "escalation")


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _is_bpmn(el: Any, *names: str) -> bool:
    return isinstance(el.tag, str) and etree.QName(el).namespace == BPMN_NS and (not names or _local(el) in names)


def _children(el: Any, *names: str) -> list[Any]:
    return [c for c in el if _is_bpmn(c, *names)]


def _definitions(event: Any) -> list[Any]:
    return _children(event, *EVENT_DEFINITIONS)


def _python(text: str, problem: Report, el: Any, what: str, *, juel: bool = True) -> str | None:
    try:
        python = to_python(text) if juel else text.strip()
        compile_restricted_source("eval", python)
    except (ExpressionError, ScriptCompileError) as exc:
        problem(el, f"{what} '{text.strip()}' is not allowed or invalid: {exc}")
        return None
    return python


def preprocess_events(root: Any, problem: Report) -> None:
    flows = list(root.iter(f"{{{BPMN_NS}}}sequenceFlow"))
    incoming: dict[str, list[Any]] = {}
    outgoing: dict[str, list[Any]] = {}
    for f in flows:
        outgoing.setdefault(f.get("sourceRef"), []).append(f)
        incoming.setdefault(f.get("targetRef"), []).append(f)
    by_id = {el.get("id"): el for el in root.iter() if isinstance(el.tag, str) and el.get("id")}

    _map_spiff_dialect(root, by_id, problem)
    _check_references(root, by_id, problem)
    for scope in root.iter(*(f"{{{BPMN_NS}}}{s}" for s in SCOPES)):
        _check_starts(scope, problem)
        _rewrite_links(scope, incoming, outgoing, problem)
    for gateway in root.iter(f"{{{BPMN_NS}}}eventBasedGateway"):
        _check_event_gateway(gateway, by_id, incoming, outgoing, problem)
    for sub in root.iter(f"{{{BPMN_NS}}}subProcess"):
        if sub.get("triggeredByEvent") == "true":
            _check_event_subprocess(sub, incoming, outgoing, problem)


# -- references and event definitions ---------------------------------------------------------------

def _check_references(root: Any, by_id: dict[str, Any], problem: Report) -> None:
    def target(ref: str | None, tag: str) -> Any:
        el = by_id.get(ref) if ref else None
        return el if el is not None and _is_bpmn(el, tag) else None

    for event in root.iter():
        if not _is_bpmn(event) or not _local(event).endswith("Event"):
            continue
        definitions = _definitions(event)
        if len(definitions) > 1:
            problem(event, "an event with more than one event definition (a multiple event) is not supported")
            continue
        if not definitions:
            if _local(event) == "boundaryEvent":
                problem(event, "a boundary event needs a trigger (timer, message, signal, error or escalation)")
            continue
        definition = definitions[0]
        kind = _local(definition)
        throwing = _local(event) in ("intermediateThrowEvent", "endEvent")
        if throwing and kind in ("timerEventDefinition", "conditionalEventDefinition"):
            problem(event, f"a throw or end event cannot have a {kind.replace('EventDefinition', '')} trigger")
        elif kind == "conditionalEventDefinition":
            problem(event, "conditional events are not supported (AlmenFlow does not re-evaluate conditions "
                           "when variables change); use a gateway or a message")
        elif kind == "signalEventDefinition":
            signal = target(definition.get("signalRef"), "signal")
            name = signal.get("name") if signal is not None else event.get("name")
            if definition.get("signalRef") and signal is None:
                problem(event, f"signalRef '{definition.get('signalRef')}' does not name a bpmn:signal")
            elif not name:
                problem(event, "the signal has no name")
            elif "${" in name or "#{" in name:
                problem(event, f"signal name '{name}' is an expression; only literal signal names are supported")
            if throwing:  # on a catching signal camunda:in means nothing (as in Camunda)
                for mapping in definition.iter(f"{{{CAMUNDA_NS}}}in"):
                    _check_signal_mapping(event, mapping, problem)
        elif kind in ("errorEventDefinition", "escalationEventDefinition"):
            tag = "error" if kind == "errorEventDefinition" else "escalation"
            ref = definition.get(f"{tag}Ref")
            if ref and target(ref, tag) is None:
                problem(event, f"{tag}Ref '{ref}' does not name a bpmn:{tag}")
            elif throwing and not ref:
                problem(event, f"a throwing {tag} event must reference a bpmn:{tag}")
        elif kind == "messageEventDefinition":
            ref = definition.get("messageRef")
            if ref and target(ref, "message") is None:
                problem(event, f"messageRef '{ref}' does not name a bpmn:message")
    for task in root.iter(f"{{{BPMN_NS}}}receiveTask", f"{{{BPMN_NS}}}sendTask"):
        ref = task.get("messageRef")
        inner = _children(task, "messageEventDefinition")
        if inner:
            ref = ref or inner[0].get("messageRef")
        if not ref:
            if _local(task) == "receiveTask":
                problem(task, "a receive task needs a messageRef: AlmenFlow delivers messages by name")
            continue
        message = target(ref, "message")
        if message is None or not message.get("name"):
            problem(task, f"messageRef '{ref}' does not name a bpmn:message with a name")
        elif inner and not task.get("messageRef"):
            task.set("messageRef", ref)


def _check_signal_mapping(event: Any, mapping: Any, problem: Report) -> None:
    if mapping.get("variables") == "all":
        return
    target = mapping.get("target")
    if not target or not target.isidentifier():
        problem(event, "camunda:in needs variables=\"all\" or a target variable name")
        return
    expression = mapping.get("sourceExpression")
    if expression:
        python = _python(expression, problem, event, "camunda:in sourceExpression")
        if python is not None:
            mapping.set("sourceExpression", python)
    elif not (mapping.get("source") or "").isidentifier():
        problem(event, "camunda:in needs a source variable or a sourceExpression")


# -- start events -----------------------------------------------------------------------------------

def _check_starts(scope: Any, problem: Report) -> None:
    starts = _children(scope, "startEvent")
    if _local(scope) == "process":
        triggered = [s for s in starts if _definitions(s)]
        if len(starts) > 1 and triggered:
            problem(triggered[0], f"the process has {len(starts)} start events; AlmenFlow starts a process with a "
                                  "message, signal or timer start event only when it is the process's one start "
                                  "event")
    elif scope.get("triggeredByEvent") != "true":
        for start in starts:
            if _definitions(start):
                problem(start, "the start event of an embedded sub-process cannot have a trigger (message, "
                               "timer, signal...); only an event sub-process (triggeredByEvent) can")


# -- link events ------------------------------------------------------------------------------------

def _link(event: Any) -> tuple[Any, str | None] | None:
    links = _children(event, "linkEventDefinition")
    if not links:
        return None
    return links[0], (links[0].get("name") or event.get("name") or "").strip() or None


def _rewrite_links(scope: Any, incoming: dict[str, list[Any]], outgoing: dict[str, list[Any]],
                   problem: Report) -> None:
    """A link throw event continues at the link catch event of the same name on the same process level:
    that is a sequence flow from the one to the other."""
    catches: dict[str, Any] = {}
    for event in _children(scope, "intermediateCatchEvent"):
        link = _link(event)
        if link is None:
            continue
        name = link[1]
        if name is None:
            problem(event, "the link catch event has no name")
        elif name in catches:
            problem(event, f"two link catch events on one process level are named '{name}'")
        else:
            catches[name] = event
            if incoming.get(event.get("id")):
                problem(event, "a link catch event cannot have incoming sequence flows")
    for event in _children(scope, "intermediateThrowEvent"):
        link = _link(event)
        if link is None:
            continue
        name = link[1]
        catch = catches.get(name) if name else None
        if name is None:
            problem(event, "the link throw event has no name")
        elif catch is None:
            problem(event, f"no link catch event named '{name}' on the same process level")
        elif outgoing.get(event.get("id")):
            problem(event, "a link throw event cannot have outgoing sequence flows")
        else:
            flow = etree.SubElement(scope, f"{{{BPMN_NS}}}sequenceFlow")
            flow.set("id", f"{event.get('id')}__link")
            flow.set("sourceRef", event.get("id"))
            flow.set("targetRef", catch.get("id"))


# -- event-based gateway ------------------------------------------------------------------------------

def _check_event_gateway(gateway: Any, by_id: dict[str, Any], incoming: dict[str, list[Any]],
                         outgoing: dict[str, list[Any]], problem: Report) -> None:
    if gateway.get("instantiate") == "true":
        problem(gateway, "an event-based gateway that starts the process (instantiate) is not supported; "
                         "use a message or signal start event")
        return
    if (gateway.get("eventGatewayType") or "Exclusive") != "Exclusive":
        problem(gateway, "only exclusive event-based gateways are supported")
        return
    flows = outgoing.get(gateway.get("id"), [])
    if len(flows) < 2:
        problem(gateway, "an event-based gateway needs at least two outgoing sequence flows")
    attached = {el.get("attachedToRef") for el in gateway.getroottree().getroot().iter(f"{{{BPMN_NS}}}boundaryEvent")}
    seen: dict[tuple[str, str | None], str] = {}
    for flow in flows:
        if _children(flow, "conditionExpression"):
            problem(flow, "the outgoing flows of an event-based gateway cannot have conditions")
        target = by_id.get(flow.get("targetRef"))
        if target is None:
            continue
        kinds = [_local(d) for d in _definitions(target)]
        if _is_bpmn(target, "receiveTask") or (_is_bpmn(target, "intermediateCatchEvent") and len(kinds) == 1
                                                and kinds[0] in GATEWAY_TARGET_DEFINITIONS):
            if len(incoming.get(target.get("id"), [])) > 1:
                problem(target, "an event after an event-based gateway cannot have other incoming flows")
            if target.get(f"{{{CAMUNDA_NS}}}asyncBefore") == "true":
                problem(target, "an event after an event-based gateway cannot be asynchronous")
            if target.get("id") in attached:
                problem(target, "a receive task after an event-based gateway cannot have boundary events")
            trigger = _trigger(target)
            if trigger in seen and trigger[0] != "timerEventDefinition":
                problem(target, f"'{seen[trigger]}' after the same event-based gateway waits for the same event")
            seen.setdefault(trigger, target.get("id"))
        else:
            problem(gateway, f"'{target.get('id')}' follows an event-based gateway; only message, timer or "
                             "signal intermediate catch events and receive tasks can")


def _trigger(target: Any) -> tuple[str, str | None]:
    if _is_bpmn(target, "receiveTask"):
        return "messageEventDefinition", target.get("messageRef")
    definition = _definitions(target)[0]
    return _local(definition), definition.get("messageRef") or definition.get("signalRef") or target.get("id")


# -- event sub-processes ------------------------------------------------------------------------------

def _check_event_subprocess(sub: Any, incoming: dict[str, list[Any]], outgoing: dict[str, list[Any]],
                            problem: Report) -> None:
    if incoming.get(sub.get("id")) or outgoing.get(sub.get("id")):
        problem(sub, "an event sub-process cannot have incoming or outgoing sequence flows")
    if _children(sub, "multiInstanceLoopCharacteristics", "standardLoopCharacteristics"):
        problem(sub, "an event sub-process cannot be a loop or multi-instance")
    starts = _children(sub, "startEvent")
    if len(starts) != 1:
        problem(sub, f"an event sub-process needs exactly one start event, not {len(starts)}")
        return
    start = starts[0]
    kinds = [_local(d) for d in _definitions(start)]
    if not kinds:
        problem(start, "the start event of an event sub-process needs a trigger (message, timer, signal, "
                       "error or escalation)")
    elif kinds[0] not in EVENT_SUBPROCESS_TRIGGERS:
        problem(start, f"an event sub-process started by a {kinds[0].replace('EventDefinition', '')} event "
                       "is not supported")
    elif kinds[0] == "errorEventDefinition" and start.get("isInterrupting", "true").lower() == "false":
        problem(start, "an error start event always interrupts (isInterrupting cannot be false)")


# -- the SpiffWorkflow dialect ---------------------------------------------------------------------------

def _map_spiff_dialect(root: Any, by_id: dict[str, Any], problem: Report) -> None:
    for el in list(root.iter()):
        if not isinstance(el.tag, str):
            continue
        for attr in list(el.attrib):
            qn = etree.QName(attr)
            if qn.namespace == SPIFF_NS and qn.localname == "scriptsOnInstances" and el.get(attr) == "true":
                problem(el.getparent(), "spiffworkflow:scriptsOnInstances (pre/post scripts) is not supported")
        if etree.QName(el).namespace != SPIFF_NS:
            continue
        parent = el.getparent()
        if parent is not None and isinstance(parent.tag, str) and etree.QName(parent).namespace == SPIFF_NS:
            continue  # reported with its container
        owner = parent.getparent() if parent is not None and _local(parent) == "extensionElements" else parent
        name = _local(el)
        if name in SPIFF_IGNORED or owner is None:
            continue
        if name in ("messagePayload", "messageVariable"):
            _map_message_extension(root, owner, el, problem)
        elif name in ("payloadExpression", "variableName") and _is_bpmn(owner, *SPIFF_ITEM_OWNERS):
            _check_item_extension(root, owner, el, problem)
        else:
            problem(_user_of(root, owner), f"spiffworkflow:{name} is not supported by AlmenFlow "
                                           f"({_REASONS.get(name, 'it is SpiffWorkflow-specific behaviour')})")
    for prop in root.iter(f"{{{BPMN_NS}}}correlationProperty"):
        if _children(prop, "correlationPropertyRetrievalExpression"):
            problem(prop, "message correlation by correlation properties is not supported: AlmenFlow "
                          "correlates messages by name and business key (as Camunda 7)")


_REASONS = {
    "preScript": "use a script task before the activity",
    "postScript": "use a script task after the activity",
    "serviceTaskOperator": "AlmenFlow has no service connectors",
    "calledDecisionId": "use camunda:decisionRef",
    "processVariableCorrelation": "AlmenFlow correlates messages by name and business key",
    "variableName": "AlmenFlow forms set variables by field id",
}


def _user_of(root: Any, owner: Any) -> Any:
    """The flow element to name for a problem found on a root-level element (message, signal...)."""
    if owner.get("id") and _is_bpmn(owner, "message", "signal", "error", "escalation"):
        attr = f"{_local(owner)}Ref"
        for el in root.iter():
            if isinstance(el.tag, str) and el.get(attr) == owner.get("id"):
                return el.getparent() if _local(el).endswith("EventDefinition") else el
    return owner


def _map_message_extension(root: Any, owner: Any, el: Any, problem: Report) -> None:
    """messagePayload is the message's content (as camunda:expression); messageVariable the variable a
    received message goes into (as camunda:resultVariable)."""
    text = (el.text or "").strip()
    if _local(el) == "messagePayload":
        attr = f"{{{CAMUNDA_NS}}}expression"
        value = _python(text, problem, _user_of(root, owner), "spiffworkflow:messagePayload", juel=False) if text else None
    else:
        attr = f"{{{CAMUNDA_NS}}}resultVariable"
        value = text if text.isidentifier() else None
        if not value:
            problem(_user_of(root, owner), f"spiffworkflow:messageVariable '{text}' is not a variable name")
    if value is None:
        return
    if _is_bpmn(owner, "message"):
        # Older files keep the extension on the message itself: it applies wherever the message is used.
        for user in root.iter():
            if not isinstance(user.tag, str) or user.get("messageRef") != owner.get("id"):
                continue
            if _is_bpmn(user, "messageEventDefinition", "receiveTask", "sendTask") and user.get(attr) is None:
                user.set(attr, value)
    elif _is_bpmn(owner, "messageEventDefinition", "receiveTask", "sendTask"):
        owner.set(attr, value)
    else:
        problem(owner, f"spiffworkflow:{_local(el)} belongs on a message event, a send or a receive task")


def _check_item_extension(root: Any, owner: Any, el: Any, problem: Report) -> None:
    text = (el.text or "").strip()
    if _local(el) == "payloadExpression":
        python = _python(text, problem, _user_of(root, owner), "spiffworkflow:payloadExpression", juel=False)
        if python is not None:
            el.text = python
    elif not text.isidentifier():
        problem(_user_of(root, owner), f"spiffworkflow:variableName '{text}' is not a variable name")
