"""Conformance of the BPMN event constructs with Camunda 7: event-based gateway, link events, receive
task, SpiffWorkflow-dialect messages, signals, event sub-processes, errors and escalations. Each runs
as documented or is refused at deploy naming the element; everything runs through the public services
on a real database (the engine saves and reloads the instance at every step)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import DeploymentError, InvalidInputError, MessageCorrelationError
from engine.limits import Limits
from engine.models import AuditEvent, Wait
from tests.engine.bpmn_kit import (
    HEADER,
    chain,
    definitions,
    doc,
    end,
    flow,
    lanes,
    message,
    process,
    res,
    script,
    start,
    timer,
    user_task,
)

H = timedelta(hours=1)
SPIFF = 'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '


# -- small builders ---------------------------------------------------------------------------------

def msg_catch(id_: str, ref: str) -> str:
    return (f'<bpmn:intermediateCatchEvent id="{id_}"><bpmn:messageEventDefinition messageRef="{ref}"/>'
            '</bpmn:intermediateCatchEvent>')


def timer_catch(id_: str, kind: str, value: str) -> str:
    return f'<bpmn:intermediateCatchEvent id="{id_}">{timer(kind, value)}</bpmn:intermediateCatchEvent>'


def signal_catch(id_: str, ref: str = "Sig") -> str:
    return (f'<bpmn:intermediateCatchEvent id="{id_}"><bpmn:signalEventDefinition signalRef="{ref}"/>'
            '</bpmn:intermediateCatchEvent>')


def signal_throw(id_: str, ref: str = "Sig", inner: str = "", tag: str = "intermediateThrowEvent") -> str:
    ext = f"<bpmn:extensionElements>{inner}</bpmn:extensionElements>" if inner else ""
    return f'<bpmn:{tag} id="{id_}"><bpmn:signalEventDefinition signalRef="{ref}">{ext}</bpmn:signalEventDefinition></bpmn:{tag}>'


def signal(id_: str = "Sig", name: str = "alarm") -> str:
    return f'<bpmn:signal id="{id_}" name="{name}"/>'


def error(id_: str = "Err", code: str = "E42", extra: str = "") -> str:
    return f'<bpmn:error id="{id_}" name="Fejl {code}" errorCode="{code}" {extra}/>'


def escalation(id_: str = "Esc", code: str = "ESC1") -> str:
    return f'<bpmn:escalation id="{id_}" name="Eskalering" escalationCode="{code}"/>'


def end_with(id_: str, definition: str) -> str:
    return f'<bpmn:endEvent id="{id_}">{definition}</bpmn:endEvent>'


def event_subprocess(id_: str, start_definition: str, *body: str, interrupting: bool = True,
                     start_id: str | None = None) -> str:
    """An event sub-process: start (with the trigger) -> body... -> end."""
    sid = start_id or f"{id_}_start"
    attr = "" if interrupting else ' isInterrupting="false"'
    ids = [sid] + [b.split('id="')[1].split('"')[0] for b in body] + [f"{id_}_end"]
    return (f'<bpmn:subProcess id="{id_}" triggeredByEvent="true">'
            f'<bpmn:startEvent id="{sid}"{attr}>{start_definition}</bpmn:startEvent>' + "".join(body)
            + end(f"{id_}_end") + chain(*ids) + "</bpmn:subProcess>")


def subprocess(id_: str, *body_ids_and_parts: str, ids: list[str]) -> str:
    return f'<bpmn:subProcess id="{id_}">' + "".join(body_ids_and_parts) + chain(*ids) + "</bpmn:subProcess>"


def waits(engine, instance_id) -> list[tuple]:
    return sorted((w.kind, w.element_id, w.name) for w in engine.runtime.get(instance_id).waits)


def open_tasks(engine, instance_id) -> list[str]:
    return sorted(t.element_id for t in engine.tasks.query(instance_id=instance_id))


def complete(engine, instance_id, element_id, data=None) -> None:
    task = next(t for t in engine.tasks.query(instance_id=instance_id) if t.element_id == element_id)
    engine.tasks.complete(task.id, "anna", data or {})


def refused(engine, text: str, name: str = "test.bpmn") -> list:
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(text, name)])
    assert engine.definitions.list() == []
    for problem in exc.value.problems:
        assert problem.element_id, f"a refusal names the element: {problem}"
    return exc.value.problems


def history(engine, instance_id, type_: str) -> list:
    return [h for h in engine.runtime.get(instance_id).history if h.type == type_]


# == event-based gateway ================================================================================

def gateway_process(extra_target: str = "", extra_flow: str = "") -> str:
    """gw -> message 'betalt' | timer PT1H | signal 'alarm' | receive task 'svar'; each path sets `path`."""
    return doc(
        "gw", start(), '<bpmn:eventBasedGateway id="gw"/>',
        msg_catch("paid", "Msg_paid"), timer_catch("late", "timeDuration", "PT1H"), signal_catch("alarm"),
        '<bpmn:receiveTask id="answer" messageRef="Msg_answer"/>', extra_target,
        script("on_paid", "path = 'paid'"), script("on_late", "path = 'late'"), script("on_alarm", "path = 'alarm'"),
        script("on_answer", "path = 'answer'"), end("e1"), end("e2"), end("e3"), end("e4"),
        flow("start", "gw"), flow("gw", "paid"), flow("gw", "late"), flow("gw", "alarm"), flow("gw", "answer"),
        extra_flow,
        chain("paid", "on_paid", "e1"), chain("late", "on_late", "e2"), chain("alarm", "on_alarm", "e3"),
        chain("answer", "on_answer", "e4"),
        extra=message("Msg_paid", "betalt") + message("Msg_answer", "svar") + signal())


ALTERNATIVES = [("message", "answer", "svar"), ("message", "paid", "betalt"), ("signal", "alarm", "alarm"),
                ("timer", "late", None)]


def test_event_gateway_waits_on_every_alternative_and_the_first_message_wins(engine, clock):
    engine.definitions.deploy([res(gateway_process())])
    inst = engine.runtime.start("gw", "G-1")
    assert inst.status == "active"
    assert waits(engine, inst.id) == ALTERNATIVES
    with engine.db.transaction() as s:
        assert sorted(w.kind for w in s.scalars(select(Wait).where(Wait.instance_id == inst.id))) == \
            ["message", "message", "signal", "timer"]

    assert engine.runtime.correlate("betalt", "G-1", {"amount": 5}) == [inst.id]
    done = engine.runtime.get(inst.id)
    assert (done.status, done.data["path"], done.data["amount"]) == ("completed", "paid", 5)
    assert done.waits == [] and done.next_due is None
    with pytest.raises(MessageCorrelationError):
        engine.runtime.correlate("svar", "G-1")
    clock.advance(2 * H)
    assert engine.scheduler.run_due()["fired"] == 0
    assert engine.runtime.signal("alarm") == {"instances": [], "started": []}
    assert engine.runtime.get(inst.id).data["path"] == "paid"


def test_event_gateway_timer_wins_and_cancels_the_messages(engine, clock):
    engine.definitions.deploy([res(gateway_process())])
    inst = engine.runtime.start("gw", "G-2")
    assert inst.next_due == (clock.now() + H).isoformat()
    clock.advance(H)
    assert engine.scheduler.run_due()["fired"] == 1
    done = engine.runtime.get(inst.id)
    assert (done.status, done.data["path"], done.waits) == ("completed", "late", [])
    with pytest.raises(MessageCorrelationError):
        engine.runtime.correlate("betalt", "G-2")


def test_event_gateway_signal_and_receive_task_alternatives(engine):
    engine.definitions.deploy([res(gateway_process())])
    by_signal = engine.runtime.start("gw", "G-3")
    by_answer = engine.runtime.start("gw", "G-4")
    assert engine.runtime.correlate("svar", "G-4", {"text": "ja"}) == [by_answer.id]
    assert engine.runtime.signal("alarm", {"level": 2}) == {"instances": [by_signal.id], "started": []}
    assert engine.runtime.get(by_signal.id).data == {"path": "alarm", "level": 2}
    assert engine.runtime.get(by_answer.id).data == {"path": "answer", "text": "ja"}
    assert [w for w in engine.runtime.get(by_signal.id).waits] == []


def test_event_gateway_in_a_loop_waits_again_each_round(engine):
    text = doc("loop", start(), '<bpmn:exclusiveGateway id="join"/>', '<bpmn:eventBasedGateway id="gw"/>',
               msg_catch("again", "Msg_again"), msg_catch("stop", "Msg_stop"),
               script("count", "n = var('n', 0) + 1"), end(),
               flow("start", "join"), flow("join", "gw"), flow("gw", "again"), flow("gw", "stop"),
               chain("again", "count", "join"), flow("stop", "end"),
               extra=message("Msg_again", "igen") + message("Msg_stop", "stop"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("loop", "L")
    for n in (1, 2, 3):
        engine.runtime.correlate("igen", "L")
        assert engine.runtime.get(inst.id).data["n"] == n
        assert waits(engine, inst.id) == [("message", "again", "igen"), ("message", "stop", "stop")]
    engine.runtime.correlate("stop", "L")
    assert engine.runtime.get(inst.id).status == "completed"


@pytest.mark.parametrize(("target", "flows", "element", "reason"), [
    (user_task("t", "T"), "", "gw", "only message, timer or signal intermediate catch events and receive tasks"),
    ("", '<bpmn:sequenceFlow id="cond" sourceRef="gw" targetRef="paid"><bpmn:conditionExpression>x</bpmn:conditionExpression></bpmn:sequenceFlow>',
     "cond", "cannot have conditions"),
])
def test_event_gateway_refusals_name_the_element(engine, target, flows, element, reason):
    text = gateway_process(target, flows + (flow("gw", "t") + flow("t", "e1") if target else ""))
    problems = refused(engine, text)
    assert any(p.element_id == element and reason in p.message for p in problems), problems


def test_event_gateway_that_instantiates_is_refused(engine):
    text = gateway_process().replace('<bpmn:eventBasedGateway id="gw"/>',
                                     '<bpmn:eventBasedGateway id="gw" instantiate="true"/>')
    (problem,) = refused(engine, text)
    assert problem.element_id == "gw" and "instantiate" in problem.message


# == link events ==========================================================================================

def link_throw(id_: str, name: str) -> str:
    return f'<bpmn:intermediateThrowEvent id="{id_}"><bpmn:linkEventDefinition name="{name}"/></bpmn:intermediateThrowEvent>'


def link_catch(id_: str, name: str) -> str:
    return f'<bpmn:intermediateCatchEvent id="{id_}"><bpmn:linkEventDefinition name="{name}"/></bpmn:intermediateCatchEvent>'


def test_a_link_throw_continues_at_the_catch_of_the_same_name(engine):
    text = doc("link", start(), script("a", "steps = ['a']"), link_throw("goto_b", "B"),
               link_catch("from_a", "B"), script("b", "steps = steps + ['b']"), end(),
               chain("start", "a", "goto_b"), chain("from_a", "b", "end"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("link")
    assert (inst.status, inst.data["steps"]) == ("completed", ["a", "b"])
    assert "b" in engine.runtime.get(inst.id).completed_elements


def test_links_can_loop_back_and_wait_on_the_way(engine):
    text = doc("loop", lanes(Sekretariat=["start", "review", "gw", "again", "back", "end"]), start(),
               link_catch("back", "top"), user_task("review", "Review"), '<bpmn:exclusiveGateway id="gw" default="fdone"/>',
               link_throw("again", "top"), end(),
               flow("start", "review"), flow("back", "review"), flow("review", "gw"),
               flow("gw", "again", "more"), flow("gw", "end", id_="fdone"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("loop")
    for _ in range(3):
        complete(engine, inst.id, "review", {"more": True})
        assert open_tasks(engine, inst.id) == ["review"]
    complete(engine, inst.id, "review", {"more": False})
    assert engine.runtime.get(inst.id).status == "completed"


def test_a_link_throw_without_its_catch_is_refused(engine):
    text = doc("link", start(), link_throw("goto", "nowhere"), link_catch("other", "somewhere"), end(),
               chain("start", "goto"), chain("other", "end"))
    (problem,) = refused(engine, text)
    assert problem.element_id == "goto" and "nowhere" in problem.message


def test_two_link_catches_with_one_name_are_refused(engine):
    text = doc("link", start(), link_throw("goto", "B"), link_catch("c1", "B"), link_catch("c2", "B"), end(),
               end("end2"), chain("start", "goto"), chain("c1", "end"), chain("c2", "end2"))
    problems = refused(engine, text)
    assert [p.element_id for p in problems] == ["c2"]


def test_links_only_connect_on_the_same_process_level(engine):
    inner = subprocess("sub", start("s_in"), link_catch("inside", "X"), end("e_in"), ids=["s_in", "e_in"])
    text = doc("link", start(), inner, link_throw("goto", "X"), chain("start", "sub", "goto"),
               chain("inside", "e_in"))
    problems = refused(engine, text)
    assert any(p.element_id == "goto" for p in problems)


# == receive task ===========================================================================================

def receive_process() -> str:
    return doc("rcv", start(), '<bpmn:receiveTask id="await_answer" name="Afvent svar" messageRef="Msg_answer"/>',
               script("after", "seen = answer"), end(), chain("start", "await_answer", "after", "end"),
               extra=message("Msg_answer", "svar"))


def test_receive_task_deploys_and_waits_for_its_message_by_business_key(engine):
    engine.definitions.deploy([res(receive_process())])
    a = engine.runtime.start("rcv", "R-1")
    b = engine.runtime.start("rcv", "R-2")
    assert waits(engine, a.id) == [("message", "await_answer", "svar")]
    assert "await_answer" in engine.runtime.get(a.id).active_elements
    assert engine.runtime.correlate("svar", "R-2", {"answer": "nej"}) == [b.id]
    assert (engine.runtime.get(b.id).status, engine.runtime.get(b.id).data["seen"]) == ("completed", "nej")
    assert engine.runtime.get(a.id).status == "active"
    (received,) = history(engine, b.id, "message_received")
    assert received.element_id == "await_answer"


def test_receive_task_with_an_interrupting_boundary_timer(engine, clock):
    text = receive_process().replace(
        "</bpmn:process>", f'<bpmn:boundaryEvent id="too_late" attachedToRef="await_answer">'
        f'{timer("timeDuration", "P1D")}</bpmn:boundaryEvent>{script("remind", "answer = None")}'
        f'{flow("too_late", "remind")}{flow("remind", "after")}</bpmn:process>')
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("rcv", "R-3")
    assert waits(engine, inst.id) == [("message", "await_answer", "svar"), ("timer", "too_late", None)]
    clock.advance(timedelta(days=1))
    assert engine.scheduler.run_due()["fired"] == 1
    assert engine.runtime.get(inst.id).status == "completed"
    with pytest.raises(MessageCorrelationError):
        engine.runtime.correlate("svar", "R-3")


def test_receive_task_without_a_message_is_refused(engine):
    text = doc("rcv", start(), '<bpmn:receiveTask id="wait"/>', end(), chain("start", "wait", "end"))
    (problem,) = refused(engine, text)
    assert problem.element_id == "wait" and "messageRef" in problem.message


# == SpiffWorkflow-dialect message files =====================================================================

SPIFF_COLLABORATION = HEADER.replace("<bpmn:definitions ", "<bpmn:definitions " + SPIFF) + """
  <bpmn:message id="Msg_request" name="request"/>
  <bpmn:message id="Msg_reply" name="reply"/>
  <bpmn:process id="asker" isExecutable="true">
    <bpmn:startEvent id="a_start"/>
    <bpmn:scriptTask id="prepare" scriptFormat="python"><bpmn:script>topic = 'tag'</bpmn:script></bpmn:scriptTask>
    <bpmn:sendTask id="ask" name="Ask" messageRef="Msg_request">
      <bpmn:extensionElements>
        <spiffworkflow:messagePayload>{'topic': topic, 'priority': 2}</spiffworkflow:messagePayload>
      </bpmn:extensionElements>
    </bpmn:sendTask>
    <bpmn:receiveTask id="await_reply" messageRef="Msg_reply">
      <bpmn:extensionElements><spiffworkflow:messageVariable>reply</spiffworkflow:messageVariable></bpmn:extensionElements>
    </bpmn:receiveTask>
    <bpmn:endEvent id="a_end"/>
    <bpmn:sequenceFlow id="a1" sourceRef="a_start" targetRef="prepare"/>
    <bpmn:sequenceFlow id="a2" sourceRef="prepare" targetRef="ask"/>
    <bpmn:sequenceFlow id="a3" sourceRef="ask" targetRef="await_reply"/>
    <bpmn:sequenceFlow id="a4" sourceRef="await_reply" targetRef="a_end"/>
  </bpmn:process>
  <bpmn:process id="answerer" isExecutable="true">
    <bpmn:startEvent id="b_start">
      <bpmn:messageEventDefinition id="med1" messageRef="Msg_request">
        <bpmn:extensionElements><spiffworkflow:messageVariable>request</spiffworkflow:messageVariable></bpmn:extensionElements>
      </bpmn:messageEventDefinition>
    </bpmn:startEvent>
    <bpmn:intermediateThrowEvent id="respond">
      <bpmn:messageEventDefinition id="med2" messageRef="Msg_reply">
        <bpmn:extensionElements>
          <spiffworkflow:messagePayload>{'about': request['topic'], 'ok': True}</spiffworkflow:messagePayload>
        </bpmn:extensionElements>
      </bpmn:messageEventDefinition>
    </bpmn:intermediateThrowEvent>
    <bpmn:endEvent id="b_end"/>
    <bpmn:sequenceFlow id="b1" sourceRef="b_start" targetRef="respond"/>
    <bpmn:sequenceFlow id="b2" sourceRef="respond" targetRef="b_end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_spiff_dialect_message_payload_and_variable_map_to_the_same_semantics(engine):
    result = engine.definitions.deploy([res(SPIFF_COLLABORATION, "spiff.bpmn")])
    assert sorted(d.key for d in result["deployed"]) == ["answerer", "asker"]
    asker = engine.runtime.start("asker", "Q-1")
    done = engine.runtime.get(asker.id)
    assert done.status == "completed", done.incident
    assert done.data["reply"] == {"about": "tag", "ok": True}
    (answer,) = engine.runtime.list(key="answerer")[0]
    answered = engine.runtime.get(answer["id"])
    assert answered.status == "completed" and answered.business_key == "Q-1"
    assert answered.data["request"] == {"topic": "tag", "priority": 2}


def test_spiff_dialect_payload_on_the_message_element_applies_where_it_is_used(engine):
    text = SPIFF_COLLABORATION.replace(
        '<bpmn:message id="Msg_reply" name="reply"/>',
        '<bpmn:message id="Msg_reply" name="reply"><bpmn:extensionElements><spiffworkflow:messageVariable>'
        'answer</spiffworkflow:messageVariable></bpmn:extensionElements></bpmn:message>').replace(
        "<bpmn:extensionElements><spiffworkflow:messageVariable>reply</spiffworkflow:messageVariable></bpmn:extensionElements>", "")
    engine.definitions.deploy([res(text, "spiff.bpmn")])
    asker = engine.runtime.start("asker", "Q-2")
    assert engine.runtime.get(asker.id).data["answer"] == {"about": "tag", "ok": True}


@pytest.mark.parametrize(("inner", "element", "words"), [
    ("<spiffworkflow:preScript>x = 1</spiffworkflow:preScript>", "prepare", "preScript"),
    ("<spiffworkflow:postScript>x = 1</spiffworkflow:postScript>", "prepare", "postScript"),
    ('<spiffworkflow:serviceTaskOperator id="http/GetRequest"/>', "prepare", "serviceTaskOperator"),
    ("<spiffworkflow:calledDecisionId>d</spiffworkflow:calledDecisionId>", "prepare", "calledDecisionId"),
])
def test_spiff_dialect_behaviour_we_cannot_run_is_refused_naming_the_element(engine, inner, element, words):
    text = SPIFF_COLLABORATION.replace(
        '<bpmn:scriptTask id="prepare" scriptFormat="python">',
        f'<bpmn:scriptTask id="prepare" scriptFormat="python"><bpmn:extensionElements>{inner}</bpmn:extensionElements>')
    (problem,) = refused(engine, text, "spiff.bpmn")
    assert problem.element_id == element and words in problem.message


def test_spiff_dialect_correlation_properties_and_bad_payloads_are_refused(engine):
    correlated = SPIFF_COLLABORATION.replace(
        '<bpmn:message id="Msg_request" name="request"/>',
        '<bpmn:message id="Msg_request" name="request"/><bpmn:correlationProperty id="cp" name="Topic">'
        '<bpmn:correlationPropertyRetrievalExpression messageRef="Msg_request"><bpmn:formalExpression>topic'
        '</bpmn:formalExpression></bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>')
    (problem,) = refused(engine, correlated, "spiff.bpmn")
    assert problem.element_id == "cp" and "business key" in problem.message
    bad = SPIFF_COLLABORATION.replace("{'topic': topic, 'priority': 2}", "__import__('os')")
    (problem,) = refused(engine, bad, "spiff.bpmn")
    assert problem.element_id == "ask" and "messagePayload" in problem.message


def test_spiff_ui_only_extensions_are_ignored(engine):
    text = SPIFF_COLLABORATION.replace(
        '<bpmn:scriptTask id="prepare" scriptFormat="python">',
        '<bpmn:scriptTask id="prepare" scriptFormat="python"><bpmn:extensionElements>'
        '<spiffworkflow:instructionsForEndUser>Hej</spiffworkflow:instructionsForEndUser>'
        '<spiffworkflow:properties><spiffworkflow:property name="a" value="b"/></spiffworkflow:properties>'
        '</bpmn:extensionElements>')
    assert len(engine.definitions.deploy([res(text, "spiff.bpmn")])["deployed"]) == 2


# == signals =================================================================================================

def catcher_process(pid: str = "catcher") -> str:
    return doc(pid, start(), signal_catch("wait_alarm"), script("after", "got = var('level', 'none')"), end(),
               chain("start", "wait_alarm", "after", "end"), extra=signal())


def thrower_process(inner: str = '<camunda:in variables="all"/>', tag: str = "intermediateThrowEvent") -> str:
    if tag == "endEvent":
        return doc("thrower", start(), script("s", "level = 3"), signal_throw("raise_alarm", inner=inner, tag=tag),
                   chain("start", "s", "raise_alarm"), extra=signal())
    return doc("thrower", start(), script("s", "level = 3"), signal_throw("raise_alarm", inner=inner, tag=tag),
               end(), chain("start", "s", "raise_alarm", "end"), extra=signal())


def starter_process(pid: str = "starter", name: str = "alarm") -> str:
    return doc(pid, start("on_alarm", '<bpmn:signalEventDefinition signalRef="Sig"/>'),
               script("s2", "started_with = var('level', 'none')"), end(), chain("on_alarm", "s2", "end"),
               extra=signal(name=name))


@pytest.mark.parametrize("tag", ["intermediateThrowEvent", "endEvent"])
def test_a_thrown_signal_reaches_every_waiting_instance_and_starts_signal_start_processes(engine, tag):
    result = engine.definitions.deploy([res(catcher_process(), "c.bpmn"), res(thrower_process(tag=tag), "t.bpmn"),
                                        res(starter_process(), "s.bpmn")])
    starter = next(d for d in result["deployed"] if d.key == "starter")
    assert starter.start_trigger == {"kind": "signal", "name": "alarm"}
    catchers = [engine.runtime.start("catcher", f"C-{i}").id for i in range(2)]
    assert waits(engine, catchers[0]) == [("signal", "wait_alarm", "alarm")]

    sender = engine.runtime.start("thrower")
    assert sender.status == "completed"
    for iid in catchers:
        view = engine.runtime.get(iid)
        assert (view.status, view.data["got"]) == ("completed", 3)
        (received,) = history(engine, iid, "signal_received")
        assert (received.element_id, received.details["from_instance"]) == ("wait_alarm", sender.id)
    (started,) = engine.runtime.list(key="starter")[0]
    assert engine.runtime.get(started["id"]).data["started_with"] == 3
    (sent,) = history(engine, sender.id, "signal_sent")
    assert sent.details["to_instances"] == catchers and sent.details["started_instances"] == [started["id"]]


def test_a_signal_is_also_caught_inside_the_throwing_instance(engine):
    text = doc("both", start(), '<bpmn:parallelGateway id="fork"/>', signal_catch("hear"),
               script("prep", "x = 1"), signal_throw("shout"), script("heard", "echo = True"),
               '<bpmn:parallelGateway id="join"/>', end(),
               flow("start", "fork"), flow("fork", "hear"), flow("fork", "prep"), chain("prep", "shout", "join"),
               chain("hear", "heard", "join"), flow("join", "end"), extra=signal())
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("both")
    assert inst.status == "completed" and inst.data["echo"] is True


def test_signal_variables_follow_camunda_in_mappings(engine):
    inner = ('<camunda:in source="level" target="niveau"/>'
             '<camunda:in sourceExpression="${level * 10}" target="score"/>')
    engine.definitions.deploy([res(catcher_process(), "c.bpmn"), res(thrower_process(inner), "t.bpmn")])
    catcher = engine.runtime.start("catcher")
    engine.runtime.start("thrower")
    data = engine.runtime.get(catcher.id).data
    assert (data["niveau"], data["score"], data["got"]) == (3, 30, "none")


def test_without_camunda_in_a_signal_carries_no_variables(engine):
    engine.definitions.deploy([res(catcher_process(), "c.bpmn"), res(thrower_process(""), "t.bpmn")])
    catcher = engine.runtime.start("catcher")
    engine.runtime.start("thrower")
    assert engine.runtime.get(catcher.id).data == {"got": "none"}


def test_runtime_signal_broadcasts_with_data_and_nobody_listening_is_audited_not_an_error(engine):
    engine.definitions.deploy([res(catcher_process(), "c.bpmn"), res(starter_process(), "s.bpmn")])
    catcher = engine.runtime.start("catcher")
    result = engine.runtime.signal("alarm", {"level": 7}, user="admin")
    assert result["instances"] == [catcher.id] and len(result["started"]) == 1
    assert engine.runtime.get(catcher.id).data["got"] == 7
    assert engine.runtime.signal("nobody_listens", user="admin") == {"instances": [], "started": []}
    with engine.db.transaction() as s:
        sent = s.scalars(select(AuditEvent).where(AuditEvent.type == "signal_sent").order_by(AuditEvent.id)).all()
        assert [(e.instance_id, e.user, e.details["signal"]) for e in sent] == [
            (None, "admin", "alarm"), (None, "admin", "nobody_listens")]
    for bad in ("", "   "):
        with pytest.raises(InvalidInputError):
            engine.runtime.signal(bad)
    with pytest.raises(InvalidInputError):
        engine.runtime.signal("alarm", ["not", "an", "object"])


def test_a_thrown_signal_nobody_receives_is_not_an_incident(engine):
    engine.definitions.deploy([res(thrower_process(), "t.bpmn")])
    sender = engine.runtime.start("thrower")
    assert sender.status == "completed"
    (sent,) = history(engine, sender.id, "signal_sent")
    assert sent.details["to_instances"] == [] and sent.details["started_instances"] == []


def test_suspended_instances_do_not_receive_signals(engine):
    engine.definitions.deploy([res(catcher_process(), "c.bpmn")])
    inst = engine.runtime.start("catcher")
    engine.runtime.suspend(inst.id, user="admin")
    assert engine.runtime.signal("alarm")["instances"] == []
    engine.runtime.resume(inst.id, user="admin")
    assert engine.runtime.signal("alarm")["instances"] == [inst.id]


def test_only_the_newest_version_is_started_by_its_signal(engine):
    engine.definitions.deploy([res(starter_process(), "s.bpmn")])
    engine.definitions.deploy([res(starter_process().replace("started_with", "started_v2"), "s.bpmn")])
    (started,) = engine.runtime.signal("alarm")["started"]
    assert engine.runtime.get(started).definition["version"] == 2


def test_signal_boundary_events_interrupting_and_repeating_non_interrupting(engine):
    text = doc("b", lanes(Sekretariat=["start", "work", "noted", "e1", "e2", "e3", "stopped"]), start(),
               user_task("work", "Arbejd"),
               '<bpmn:boundaryEvent id="on_note" attachedToRef="work" cancelActivity="false">'
               '<bpmn:signalEventDefinition signalRef="Note"/></bpmn:boundaryEvent>',
               '<bpmn:boundaryEvent id="on_stop" attachedToRef="work"><bpmn:signalEventDefinition signalRef="Stop"/>'
               '</bpmn:boundaryEvent>',
               script("noted", "notes = var('notes', 0) + 1"), script("stopped", "stopped = True"),
               end("e1"), end("e2"), end("e3"), chain("start", "work", "e1"), chain("on_note", "noted", "e2"),
               chain("on_stop", "stopped", "e3"),
               extra=signal("Note", "note") + signal("Stop", "stop"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("b")
    for _ in range(3):
        assert engine.runtime.signal("note")["instances"] == [inst.id]
    assert open_tasks(engine, inst.id) == ["work"]
    assert len(history(engine, inst.id, "signal_received")) == 3
    assert engine.runtime.signal("stop")["instances"] == [inst.id]
    done = engine.runtime.get(inst.id)
    assert (done.status, done.data["stopped"]) == ("completed", True)
    assert open_tasks(engine, inst.id) == []


def test_signal_loops_between_processes_end_as_an_incident(make_engine):
    eng = make_engine(limits=Limits(max_signal_depth=4))
    ping = doc("ping", start("s", '<bpmn:signalEventDefinition signalRef="Sig"/>'), signal_throw("again"), end(),
               chain("s", "again", "end"), extra=signal())
    eng.definitions.deploy([res(ping)])
    result = eng.runtime.signal("alarm")
    assert len(result["started"]) == 1
    rows, total = eng.runtime.list(key="ping")
    assert total == 4, "each level started one more instance, up to the bound"
    (stopped,) = [r for r in rows if r["status"] == "incident"]
    assert "levels deep" in eng.runtime.get(stopped["id"]).incident["message"]


def test_signal_names_must_be_literal_and_known(engine):
    text = catcher_process().replace('name="alarm"', 'name="alarm-${id}"')
    (problem,) = refused(engine, text)
    assert problem.element_id == "wait_alarm" and "literal" in problem.message
    text = catcher_process().replace('signalRef="Sig"', 'signalRef="Nope"')
    (problem,) = refused(engine, text)
    assert problem.element_id == "wait_alarm" and "Nope" in problem.message


def test_cli_signal_command(db_url, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from webapp.cli import cli

    monkeypatch.setenv("ALMENFLOW_DATABASE_URL", db_url)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    (tmp_path / "c.bpmn").write_text(catcher_process(), encoding="utf-8")
    assert runner.invoke(cli, ["deploy", str(tmp_path / "c.bpmn")]).exit_code == 0
    started = json.loads(runner.invoke(cli, ["start", "catcher", "--json"]).stdout)
    ok = runner.invoke(cli, ["signal", "alarm", "--data", '{"level": 4}', "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == {"instances": [started["id"]], "started": []}
    text = runner.invoke(cli, ["signal", "alarm"])
    assert text.exit_code == 0 and "delivered to 0 instance(s)" in text.stdout
    for args in (["signal", "alarm", "--data", "{bad"], ["signal", "alarm", "--data", "[1]"], ["signal", " "]):
        bad = runner.invoke(cli, args)
        lines = [line for line in bad.stderr.splitlines() if line.strip()]
        assert bad.exit_code == 2 and len(lines) == 1 and "Traceback" not in bad.stderr, (args, bad.stderr)


# == event sub-processes ========================================================================================

def with_event_subprocess(es: str, extra: str = "", main_task: str = "work") -> str:
    return doc("esp", lanes(Sekretariat=["start", main_task, "end"]), start(), user_task(main_task, "Arbejd"), end(),
               chain("start", main_task, "end"), es, extra=extra)


def test_interrupting_message_event_subprocess_cancels_the_scope_and_ends_it(engine):
    es = event_subprocess("cancel_case", '<bpmn:messageEventDefinition messageRef="Msg_stop"/>',
                          script("on_stop", "reason_seen = reason"))
    engine.definitions.deploy([res(with_event_subprocess(es, message("Msg_stop", "stop")))])
    inst = engine.runtime.start("esp", "E-1", {"a": 1})
    assert waits(engine, inst.id) == [("message", "cancel_case_start", "stop")]
    assert engine.runtime.correlate("stop", "E-1", {"reason": "trukket"}) == [inst.id]
    done = engine.runtime.get(inst.id)
    assert done.status == "completed"
    assert (done.data["reason_seen"], done.data["a"]) == ("trukket", 1)
    assert open_tasks(engine, inst.id) == [] and done.waits == []
    assert any(h.type == "task_cancelled" and h.element_id == "work" for h in done.history)


def test_non_interrupting_message_event_subprocess_runs_beside_the_scope_each_time(engine):
    es = event_subprocess("note", '<bpmn:messageEventDefinition messageRef="Msg_note"/>',
                          user_task("read_note", "Læs note"), interrupting=False)
    text = with_event_subprocess(es, message("Msg_note", "note")).replace(
        "<bpmn:flowNodeRef>end</bpmn:flowNodeRef>", "<bpmn:flowNodeRef>end</bpmn:flowNodeRef>"
        "<bpmn:flowNodeRef>read_note</bpmn:flowNodeRef>")
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("esp", "E-2")
    engine.runtime.correlate("note", "E-2", {"n": 1})
    engine.runtime.correlate("note", "E-2", {"n": 2})
    assert open_tasks(engine, inst.id) == ["read_note", "read_note", "work"]
    assert waits(engine, inst.id) == [("message", "note_start", "note")]
    complete(engine, inst.id, "work", {"done": True})
    assert engine.runtime.get(inst.id).status == "active", "the running event sub-processes keep the scope open"
    # The scope is still active, so its event sub-process can still be triggered (as in Camunda).
    assert waits(engine, inst.id) == [("message", "note_start", "note")]
    engine.runtime.correlate("note", "E-2", {"n": 3})
    for _ in range(3):
        complete(engine, inst.id, "read_note")
    done = engine.runtime.get(inst.id)
    assert done.status == "completed" and done.data["done"] is True


def test_scope_without_a_triggered_event_subprocess_completes_normally(engine):
    es = event_subprocess("note", '<bpmn:messageEventDefinition messageRef="Msg_note"/>',
                          script("never", "x = 1"), interrupting=False)
    engine.definitions.deploy([res(with_event_subprocess(es, message("Msg_note", "note")))])
    inst = engine.runtime.start("esp", "E-3")
    complete(engine, inst.id, "work")
    done = engine.runtime.get(inst.id)
    assert done.status == "completed" and done.waits == [] and "x" not in done.data


def test_timer_event_subprocesses_interrupting_and_cycling(engine, clock):
    interrupting = event_subprocess("deadline", timer("timeDuration", "P2D"), script("expire", "expired = True"))
    reminder = event_subprocess("remind", timer("timeCycle", "R2/P1D"), script("ping", "pings = var('pings', 0) + 1"),
                                interrupting=False)
    engine.definitions.deploy([res(with_event_subprocess(interrupting + reminder))])
    inst = engine.runtime.start("esp")
    assert waits(engine, inst.id) == [("timer", "deadline_start", None), ("timer", "remind_start", None)]
    clock.advance(timedelta(days=1))
    assert engine.scheduler.run_due()["fired"] == 1
    assert open_tasks(engine, inst.id) == ["work"]
    clock.advance(timedelta(days=1))
    assert engine.scheduler.run_due()["fired"] == 1
    done = engine.runtime.get(inst.id)
    assert (done.status, done.data["expired"]) == ("completed", True)
    fired = sorted(h.element_id for h in done.history if h.type == "timer_fired")
    assert fired.count("remind_start") >= 1 and "deadline_start" in fired


def test_non_interrupting_timer_cycle_event_subprocess_fires_r_times(engine, clock):
    reminder = event_subprocess("remind", timer("timeCycle", "R3/PT1H"), user_task("ping", "Påmind"),
                                interrupting=False)
    engine.definitions.deploy([res(with_event_subprocess(reminder))])
    inst = engine.runtime.start("esp")
    for expected in (1, 2, 3, 3):
        clock.advance(H)
        engine.scheduler.run_due()
        assert open_tasks(engine, inst.id).count("ping") == expected
    assert engine.runtime.get(inst.id).next_due is None


def test_error_end_event_triggers_the_error_event_subprocess(engine):
    es = event_subprocess("on_error", '<bpmn:errorEventDefinition errorRef="Err" camunda:errorCodeVariable="code" '
                                      'camunda:errorMessageVariable="why"/>', script("handle", "handled = True"))
    text = doc("err", start(), script("s", "a = 1"), end_with("fail", '<bpmn:errorEventDefinition errorRef="Err"/>'),
               chain("start", "s", "fail"), es, extra=error(extra='camunda:errorMessage="gik galt"'))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("err")
    assert inst.status == "completed", inst.incident
    assert (inst.data["handled"], inst.data["code"], inst.data["why"], inst.data["a"]) == (True, "E42", "gik galt", 1)
    assert "fail" not in engine.runtime.get(inst.id).completed_elements, "the thrower stopped at the handler"


def test_an_error_in_a_sub_process_goes_to_the_nearest_handler(engine):
    inner = subprocess("sub", start("s_in"), script("work_in", "inner = 1"),
                       end_with("fail", '<bpmn:errorEventDefinition errorRef="Err"/>'), ids=["s_in", "work_in", "fail"])
    outer_es = event_subprocess("outer", '<bpmn:errorEventDefinition errorRef="Err"/>', script("outer_h", "by = 'outer'"))
    boundary = ('<bpmn:boundaryEvent id="on_err" attachedToRef="sub"><bpmn:errorEventDefinition errorRef="Err"/>'
                '</bpmn:boundaryEvent>' + script("boundary_h", "by = 'boundary'") + end("e_b") + chain("on_err", "boundary_h", "e_b"))
    base = [start(), inner, script("after", "after = True"), end(), chain("start", "sub", "after", "end"), outer_es]
    engine.definitions.deploy([res(doc("near", *base, boundary, extra=error()))])
    inst = engine.runtime.start("near")
    assert (inst.status, inst.data["by"]) == ("completed", "boundary")
    assert "after" not in inst.data
    engine.definitions.deploy([res(doc("far", *base, extra=error()), "far.bpmn")])
    inst = engine.runtime.start("far")
    assert (inst.status, inst.data["by"]) == ("completed", "outer")
    assert "after" not in inst.data


def test_a_specific_error_code_wins_over_a_catch_all(engine):
    inner = subprocess("sub", start("s_in"), end_with("fail", '<bpmn:errorEventDefinition errorRef="Err"/>'),
                       ids=["s_in", "fail"])
    text = doc("codes", start(), inner, end(), chain("start", "sub", "end"),
               '<bpmn:boundaryEvent id="any" attachedToRef="sub"><bpmn:errorEventDefinition/></bpmn:boundaryEvent>',
               '<bpmn:boundaryEvent id="exact" attachedToRef="sub"><bpmn:errorEventDefinition errorRef="Err"/></bpmn:boundaryEvent>',
               script("h_any", "by = 'any'"), script("h_exact", "by = 'exact'"), end("e1"), end("e2"),
               chain("any", "h_any", "e1"), chain("exact", "h_exact", "e2"), extra=error())
    engine.definitions.deploy([res(text)])
    assert engine.runtime.start("codes").data["by"] == "exact"


def test_an_uncaught_error_is_an_incident_naming_the_end_event(engine):
    text = doc("err", start(), end_with("fail", '<bpmn:errorEventDefinition errorRef="Err"/>'),
               chain("start", "fail"), extra=error())
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("err")
    assert inst.status == "incident"
    assert inst.incident["element_id"] == "fail" and "E42" in inst.incident["message"]


def test_error_from_a_called_process_reaches_the_call_activity_boundary(engine):
    called = doc("called", start("cs"), end_with("cfail", '<bpmn:errorEventDefinition errorRef="Err"/>'),
                 chain("cs", "cfail"), extra=error())
    caller = doc("caller", start(), '<bpmn:callActivity id="call" calledElement="called"/>', end(),
                 '<bpmn:boundaryEvent id="caught" attachedToRef="call"><bpmn:errorEventDefinition errorRef="Err"/>'
                 '</bpmn:boundaryEvent>', script("h", "caught = True"), end("e2"),
                 chain("start", "call", "end"), chain("caught", "h", "e2"), extra=error())
    engine.definitions.deploy([res(called, "called.bpmn"), res(caller, "caller.bpmn")])
    inst = engine.runtime.start("caller")
    assert (inst.status, inst.data.get("caught")) == ("completed", True)


def escalation_throw(id_: str) -> str:
    return (f'<bpmn:intermediateThrowEvent id="{id_}"><bpmn:escalationEventDefinition escalationRef="Esc"/>'
            '</bpmn:intermediateThrowEvent>')


def test_escalation_non_interrupting_event_subprocess_and_the_thrower_continues(engine):
    es = event_subprocess("on_esc", '<bpmn:escalationEventDefinition escalationRef="Esc" '
                                    'camunda:escalationCodeVariable="esc"/>',
                          script("notify", "notified = True"), interrupting=False)
    text = doc("esc", start(), escalation_throw("raise_it"), script("goes_on", "went_on = True"), end(),
               chain("start", "raise_it", "goes_on", "end"), es, extra=escalation())
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("esc")
    assert inst.status == "completed"
    assert (inst.data["went_on"], inst.data["notified"], inst.data["esc"]) == (True, True, "ESC1")


def test_escalation_boundary_on_a_sub_process_interrupts_it(engine):
    inner = subprocess("sub", start("s_in"), escalation_throw("raise_it"), script("rest", "rest = True"), end("e_in"),
                       ids=["s_in", "raise_it", "rest", "e_in"])
    text = doc("escb", start(), inner, end(), chain("start", "sub", "end"),
               '<bpmn:boundaryEvent id="caught" attachedToRef="sub"><bpmn:escalationEventDefinition escalationRef="Esc"/>'
               '</bpmn:boundaryEvent>', script("h", "handled = True"), end("e2"), chain("caught", "h", "e2"),
               extra=escalation())
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("escb")
    assert inst.status == "completed" and inst.data["handled"] is True
    assert "rest" not in inst.data, "the sub-process stopped at the escalation"


def test_an_uncaught_escalation_just_continues(engine):
    text = doc("escu", start(), escalation_throw("raise_it"), script("goes_on", "went_on = True"), end(),
               chain("start", "raise_it", "goes_on", "end"), extra=escalation())
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("escu")
    assert (inst.status, inst.data["went_on"]) == ("completed", True)


def test_signal_event_subprocess_and_one_inside_an_embedded_sub_process(engine):
    inner_es = event_subprocess("inner_stop", '<bpmn:signalEventDefinition signalRef="Sig"/>',
                                script("inner_h", "inner_stopped = True"))
    inner = subprocess("sub", start("s_in"), user_task("inner_work", "Indre"), end("e_in"), inner_es,
                       ids=["s_in", "inner_work", "e_in"])
    text = doc("nested", lanes(Sekretariat=["start", "sub", "inner_work", "after", "end"]), start(), inner,
               user_task("after", "Efter"), end(), chain("start", "sub", "after", "end"), extra=signal())
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("nested")
    assert waits(engine, inst.id) == [("signal", "inner_stop_start", "alarm")]
    assert open_tasks(engine, inst.id) == ["inner_work"]
    assert engine.runtime.signal("alarm")["instances"] == [inst.id]
    assert open_tasks(engine, inst.id) == ["after"], "the sub-process ended; the process goes on"
    assert engine.runtime.get(inst.id).data["inner_stopped"] is True


@pytest.mark.parametrize(("es", "element", "words"), [
    (event_subprocess("es", "", script("x", "a = 1")), "es_start", "needs a trigger"),
    (event_subprocess("es", '<bpmn:errorEventDefinition errorRef="Err"/>', script("x", "a = 1"), interrupting=False),
     "es_start", "always interrupts"),
    (event_subprocess("es", '<bpmn:conditionalEventDefinition><bpmn:condition>a</bpmn:condition>'
                            '</bpmn:conditionalEventDefinition>', script("x", "a = 1")), "es_start", "conditional"),
])
def test_event_subprocess_refusals(engine, es, element, words):
    problems = refused(engine, with_event_subprocess(es, error()))
    assert any(p.element_id == element and words in p.message for p in problems), problems


def test_instances_with_event_subprocesses_survive_reload_between_every_step(engine):
    """Every service call loads the instance from its JSON: a second engine on the same database sees
    the same waits and goes on."""
    es = event_subprocess("note", '<bpmn:messageEventDefinition messageRef="Msg_note"/>',
                          script("n", "notes = var('notes', 0) + 1"), interrupting=False)
    engine.definitions.deploy([res(with_event_subprocess(es, message("Msg_note", "note")))])
    inst = engine.runtime.start("esp", "R")
    for _ in range(3):
        engine.runtime.correlate("note", "R")
    assert waits(engine, inst.id) == [("message", "note_start", "note")]
    complete(engine, inst.id, "work")
    assert engine.runtime.get(inst.id).status == "completed"


# == other event constructs ======================================================================================

def test_multiple_event_definitions_on_one_event_are_refused(engine):
    text = doc("multi", start(), '<bpmn:intermediateCatchEvent id="both"><bpmn:messageEventDefinition '
               'messageRef="M"/><bpmn:signalEventDefinition signalRef="Sig"/></bpmn:intermediateCatchEvent>', end(),
               chain("start", "both", "end"), extra=message("M", "m") + signal())
    (problem,) = refused(engine, text)
    assert problem.element_id == "both" and "more than one" in problem.message


def test_a_triggered_start_event_in_an_embedded_sub_process_is_refused(engine):
    inner = subprocess("sub", start("s_in", '<bpmn:messageEventDefinition messageRef="M"/>'), end("e_in"),
                       ids=["s_in", "e_in"])
    text = doc("bad", start(), inner, end(), chain("start", "sub", "end"), extra=message("M", "m"))
    problems = refused(engine, text)
    assert any(p.element_id == "s_in" for p in problems)


def test_repeating_non_interrupting_message_boundary(engine):
    text = doc("mb", lanes(Sekretariat=["start", "work", "read", "end", "e2"]), start(), user_task("work", "Arbejd"),
               '<bpmn:boundaryEvent id="info" attachedToRef="work" cancelActivity="false">'
               '<bpmn:messageEventDefinition messageRef="M"/></bpmn:boundaryEvent>', user_task("read", "Læs"),
               end(), end("e2"), chain("start", "work", "end"), chain("info", "read", "e2"), extra=message("M", "info"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("mb", "MB")
    engine.runtime.correlate("info", "MB", {"k": 1})
    engine.runtime.correlate("info", "MB", {"k": 2})
    assert open_tasks(engine, inst.id) == ["read", "read", "work"]
    complete(engine, inst.id, "work")
    assert open_tasks(engine, inst.id) == ["read", "read"], "the paths the boundary started go on"
    with pytest.raises(MessageCorrelationError):
        engine.runtime.correlate("info", "MB")
    complete(engine, inst.id, "read")
    complete(engine, inst.id, "read")
    assert engine.runtime.get(inst.id).status == "completed"


def test_message_end_event_and_definitions_that_cannot_be_stored_are_refused_cleanly(engine):
    # A process whose parts cannot be stored would have crashed deploy with a TypeError.
    text = definitions(process("p", start(), end_with("e", '<bpmn:messageEventDefinition messageRef="M"/>'),
                               chain("start", "e")), message("M", "m"))
    assert engine.definitions.deploy([res(text)])["deployed"]


def test_event_gateway_alternatives_waiting_for_the_same_message_are_refused(engine):
    text = gateway_process(msg_catch("paid_again", "Msg_paid"), flow("gw", "paid_again") + flow("paid_again", "e1"))
    problems = refused(engine, text)
    assert any(p.element_id == "paid_again" and "same event" in p.message for p in problems), problems


def test_a_throw_event_with_a_timer_and_a_boundary_event_without_trigger_are_refused(engine):
    text = doc("t", start(), f'<bpmn:intermediateThrowEvent id="tick">{timer("timeDuration", "PT1H")}'
               '</bpmn:intermediateThrowEvent>', end(), chain("start", "tick", "end"))
    (problem,) = refused(engine, text)
    assert problem.element_id == "tick" and "timer" in problem.message
    text = doc("b", start(), script("s", "a = 1"), '<bpmn:boundaryEvent id="nothing" attachedToRef="s"/>', end(),
               end("e2"), chain("start", "s", "end"), chain("nothing", "e2"))
    (problem,) = refused(engine, text)
    assert problem.element_id == "nothing" and "trigger" in problem.message


def test_non_interrupting_signal_event_subprocess_collects_each_signal(engine):
    es = event_subprocess("count", '<bpmn:signalEventDefinition signalRef="Sig"/>',
                          script("tick", "ticks = var('ticks', 0) + 1"), interrupting=False)
    engine.definitions.deploy([res(with_event_subprocess(es, signal()))])
    inst = engine.runtime.start("esp")
    for _ in range(2):
        assert engine.runtime.signal("alarm", {"level": 1})["instances"] == [inst.id]
    assert waits(engine, inst.id) == [("signal", "count_start", "alarm")]
    assert open_tasks(engine, inst.id) == ["work"]
    assert [h.element_id for h in history(engine, inst.id, "signal_received")] == ["count_start"] * 2
    complete(engine, inst.id, "work")
    assert engine.runtime.get(inst.id).status == "completed"


def multi_instance(sub: str, n: int = 3) -> str:
    return sub.replace('<bpmn:subProcess id="sub">', '<bpmn:subProcess id="sub"><bpmn:multiInstanceLoopCharacteristics>'
                       f'<bpmn:loopCardinality>{n}</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>', 1)


def test_an_interrupting_boundary_timer_on_a_multi_instance_sub_process_cancels_every_instance(engine, clock):
    inner = multi_instance(subprocess("sub", start("s_in"), user_task("w", "W"), end("e_in"), ids=["s_in", "w", "e_in"]))
    text = doc("mi", lanes(Sekretariat=["start", "w", "sub", "end"]), start(), inner, end(), chain("start", "sub", "end"),
               f'<bpmn:boundaryEvent id="late" attachedToRef="sub">{timer("timeDuration", "PT1H")}</bpmn:boundaryEvent>',
               script("handle", "late = True"), end("e2"), chain("late", "handle", "e2"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("mi")
    assert open_tasks(engine, inst.id) == ["w", "w", "w"]
    clock.advance(H)
    assert engine.scheduler.run_due()["fired"] == 1
    done = engine.runtime.get(inst.id)
    assert (done.status, done.data["late"], done.tasks) == ("completed", True, [])


def test_every_instance_of_a_multi_instance_sub_process_throwing_is_caught_once(engine):
    inner = multi_instance(subprocess("sub", start("s_in"), end_with("fail", '<bpmn:errorEventDefinition errorRef="Err"/>'),
                                      ids=["s_in", "fail"]))
    text = doc("mi", start(), inner, end(), chain("start", "sub", "end"),
               '<bpmn:boundaryEvent id="caught" attachedToRef="sub"><bpmn:errorEventDefinition errorRef="Err"/>'
               '</bpmn:boundaryEvent>', script("handle", "handled = var('handled', 0) + 1"), end("e2"),
               chain("caught", "handle", "e2"), extra=error())
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("mi")
    assert (inst.status, inst.data["handled"]) == ("completed", 1)
