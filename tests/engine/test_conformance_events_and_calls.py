"""Where the event constructs meet call activities, multi-instance and shared variables (both arrived
in separate branches): event sub-processes, errors, timers, messages and signals inside called
processes, and the variables event paths write."""

from __future__ import annotations

from datetime import timedelta

from tests.engine.bpmn_kit import (
    chain,
    definitions,
    end,
    flow,
    message,
    process,
    res,
    script,
    start,
    timer,
    user_task,
)
from tests.engine.test_conformance_events import (
    complete,
    end_with,
    error,
    event_subprocess,
    msg_catch,
    open_tasks,
    signal,
    signal_catch,
    waits,
)

H = timedelta(hours=1)
OUT_ALL = '<bpmn:extensionElements><camunda:in variables="all"/><camunda:out variables="all"/></bpmn:extensionElements>'


def task(id_: str, name: str) -> str:
    return user_task(id_, name, attrs='camunda:candidateGroups="Sekretariat"')


def call(id_: str = "call", called: str = "child", extra: str = "") -> str:
    return f'<bpmn:callActivity id="{id_}" calledElement="{called}" {extra}>{OUT_ALL}</bpmn:callActivity>'


def parent(*extra: str, flows: str | None = None) -> str:
    return process("parent", start(), call(), end(), flows or chain("start", "call", "end"), *extra)


def test_event_subprocess_inside_a_called_process(engine):
    es = event_subprocess("note", '<bpmn:messageEventDefinition messageRef="Msg_note"/>',
                          script("noted", "notes = notes + [n]"), interrupting=False)
    child = process("child", start("cs"), script("init", "notes = []"), task("work", "Arbejd"), end("ce"),
                    chain("cs", "init", "work", "ce"), es)
    engine.definitions.deploy([res(definitions(parent(), child, message("Msg_note", "note")))])
    inst = engine.runtime.start("parent", "C-1")
    assert waits(engine, inst.id) == [("message", "note_start", "note")]
    engine.runtime.correlate("note", "C-1", {"n": 1})
    engine.runtime.correlate("note", "C-1", {"n": 2})
    assert engine.runtime.get(inst.id).status == "active"
    complete(engine, inst.id, "work", {"done": True})
    done = engine.runtime.get(inst.id)
    assert done.status == "completed", done.incident
    assert (done.data["notes"], done.data["done"]) == ([1, 2], True)


def test_interrupting_timer_event_subprocess_inside_a_called_process(engine, clock):
    es = event_subprocess("deadline", timer("timeDuration", "P1D"), script("expire", "expired = True"))
    child = process("child", start("cs"), task("work", "Arbejd"), end("ce"), chain("cs", "work", "ce"), es)
    engine.definitions.deploy([res(definitions(parent(), child))])
    inst = engine.runtime.start("parent")
    clock.advance(timedelta(days=1, hours=1))
    assert engine.scheduler.run_due()["fired"] == 1
    done = engine.runtime.get(inst.id)
    assert (done.status, done.data.get("expired")) == ("completed", True), done.incident
    assert open_tasks(engine, inst.id) == []


def test_an_error_thrown_in_a_called_process_is_caught_on_the_call_activity(engine):
    child = process("child", start("cs"), script("work", "tried = True"),
                    end_with("fail", '<bpmn:errorEventDefinition errorRef="Err"/>'), chain("cs", "work", "fail"))
    boundary = ('<bpmn:boundaryEvent id="on_err" attachedToRef="call"><bpmn:errorEventDefinition errorRef="Err"/>'
                '</bpmn:boundaryEvent>' + script("handle", "handled = True") + end("e_err")
                + chain("on_err", "handle", "e_err"))
    engine.definitions.deploy([res(definitions(parent(boundary), child, error()))])
    inst = engine.runtime.start("parent")
    assert inst.status == "completed", inst.incident
    assert inst.data["handled"] is True and "end" not in engine.runtime.get(inst.id).completed_elements


def test_an_interrupting_timer_on_a_call_activity_ends_the_called_process(engine, clock):
    child = process("child", start("cs"), task("work", "Arbejd"), msg_catch("wait", "Msg_go"), end("ce"),
                    chain("cs", "work", "wait", "ce"))
    boundary = ('<bpmn:boundaryEvent id="late" attachedToRef="call">' + timer("timeDuration", "PT2H")
                + '</bpmn:boundaryEvent>' + script("on_late", "late = True") + end("e_late")
                + chain("late", "on_late", "e_late"))
    engine.definitions.deploy([res(definitions(parent(boundary), child, message("Msg_go", "go")))])
    inst = engine.runtime.start("parent", "C-2")
    assert open_tasks(engine, inst.id) == ["work"]
    clock.advance(3 * H)
    assert engine.scheduler.run_due()["fired"] == 1
    done = engine.runtime.get(inst.id)
    assert (done.status, done.data["late"]) == ("completed", True), done.incident
    assert open_tasks(engine, inst.id) == [] and done.waits == []


def test_signals_and_timers_reach_a_called_process(engine, clock):
    child = process("child", start("cs"), signal_catch("alarm"),
                    f'<bpmn:intermediateCatchEvent id="pause">{timer("timeDuration", "PT1H")}</bpmn:intermediateCatchEvent>',
                    script("after", "after = True"), end("ce"), chain("cs", "alarm", "pause", "after", "ce"))
    engine.definitions.deploy([res(definitions(parent(), child, signal()))])
    inst = engine.runtime.start("parent")
    assert waits(engine, inst.id) == [("signal", "alarm", "alarm")]
    engine.runtime.signal("alarm", {"level": 2})
    assert [w[0] for w in waits(engine, inst.id)] == ["timer"]
    clock.advance(2 * H)
    engine.scheduler.run_due()
    done = engine.runtime.get(inst.id)
    assert (done.status, done.data["after"]) == ("completed", True), done.incident


def test_an_event_subprocess_writes_the_variables_of_its_scope(engine):
    """A non-interrupting event sub-process shares its scope's variables: what it writes is there for the
    main path, and what the main path wrote meanwhile is not overwritten by its older copy."""
    es = event_subprocess("note", '<bpmn:messageEventDefinition messageRef="Msg_note"/>',
                          task("read_note", "Læs"), script("noted", "seen = 'note'"), interrupting=False)
    text = definitions(process("esp", start(), task("first", "Først"), task("second", "Så"),
                               script("check", "both = (seen, step)"), end(),
                               chain("start", "first", "second", "check", "end"), es),
                       message("Msg_note", "note"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("esp", "E-9", {"step": 0})
    engine.runtime.correlate("note", "E-9", {})
    complete(engine, inst.id, "first", {"step": 1})
    complete(engine, inst.id, "read_note")  # its copy of `step` is 0; the scope has 1
    assert engine.runtime.get(inst.id).data["step"] == 1
    complete(engine, inst.id, "second", {"step": 2})
    done = engine.runtime.get(inst.id)
    assert done.status == "completed", done.incident
    assert done.data["both"] == ["note", 2]


def test_a_message_boundary_on_a_multi_instance_call_activity(engine):
    mi = ('<bpmn:callActivity id="call" calledElement="child">' + OUT_ALL
          + '<bpmn:multiInstanceLoopCharacteristics camunda:collection="items" camunda:elementVariable="item"/>'
          '</bpmn:callActivity>')
    boundary = ('<bpmn:boundaryEvent id="stop" attachedToRef="call">'
                '<bpmn:messageEventDefinition messageRef="Msg_stop"/></bpmn:boundaryEvent>'
                + script("stopped", "was_stopped = True") + end("e_stop") + chain("stop", "stopped", "e_stop"))
    child = process("child", start("cs"), task("work", "Arbejd"), end("ce"), chain("cs", "work", "ce"))
    text = definitions(process("parent", start(), mi, end(), flow("start", "call"), flow("call", "end"), boundary),
                       child, message("Msg_stop", "stop"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("parent", "M-1", {"items": ["a", "b", "c"]})
    assert open_tasks(engine, inst.id) == ["work", "work", "work"]
    complete(engine, inst.id, "work")
    engine.runtime.correlate("stop", "M-1", {})
    done = engine.runtime.get(inst.id)
    assert (done.status, done.data["was_stopped"]) == ("completed", True), done.incident
    assert open_tasks(engine, inst.id) == [] and done.waits == []
