"""Message correlation, and the instance operations suspend / resume / terminate."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import InvalidInputError, InvalidStateError, MessageCorrelationError, NotFoundError
from engine.models import AuditEvent, Instance
from tests.engine.bpmn_kit import (
    chain,
    definitions,
    doc,
    end,
    field,
    message,
    process,
    res,
    script,
    start,
    timer,
    user_process,
)


def catch_process() -> str:
    return doc("order", start(),
               '<bpmn:intermediateCatchEvent id="paid" name="Betaling"><bpmn:messageEventDefinition '
               'messageRef="Msg_paid"/></bpmn:intermediateCatchEvent>',
               end(), chain("start", "paid", "end"), extra=message("Msg_paid", "payment_received"))


def state_of(engine, instance_id) -> tuple:
    with engine.db.transaction() as s:
        inst = s.get(Instance, instance_id)
        events = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.instance_id == instance_id))
        return inst.version, inst.status, inst.state_json, events


# -- messages ---------------------------------------------------------------------------------------

def test_correlate_delivers_to_the_waiting_instance_and_data_becomes_variables(engine):
    engine.definitions.deploy([res(catch_process())])
    a = engine.runtime.start("order", "A-1", {"amount": 10})
    b = engine.runtime.start("order", "B-2")
    assert [(w.kind, w.element_id, w.name) for w in a.waits] == [("message", "paid", "payment_received")]

    delivered = engine.runtime.correlate("payment_received", "A-1", {"paid_by": "bank", "sum": 10}, user="anna")
    assert delivered == [a.id]
    done = engine.runtime.get(a.id)
    assert done.status == "completed"
    assert done.data["paid_by"] == "bank" and done.data["sum"] == 10 and done.data["amount"] == 10
    (event,) = [h for h in done.history if h.type == "message_received"]
    assert (event.user, event.element_id, event.details["data"]) == ("anna", "paid", {"paid_by": "bank", "sum": 10})
    assert engine.runtime.get(b.id).status == "active"


def test_uncorrelated_messages_are_errors_and_change_nothing(engine):
    engine.definitions.deploy([res(catch_process())])
    inst = engine.runtime.start("order", "A-1")
    before = state_of(engine, inst.id)
    with pytest.raises(MessageCorrelationError, match="no_such_message"):
        engine.runtime.correlate("no_such_message", "A-1", {"x": 1})
    with pytest.raises(MessageCorrelationError, match="WRONG"):
        engine.runtime.correlate("payment_received", "WRONG", {"x": 1})
    assert state_of(engine, inst.id) == before
    assert engine.runtime.list()[1] == 1


def test_ambiguous_correlation_needs_a_business_key_or_all(engine):
    engine.definitions.deploy([res(catch_process())])
    ids = [engine.runtime.start("order", f"K-{i}").id for i in range(2)]
    with pytest.raises(MessageCorrelationError, match="2 instances"):
        engine.runtime.correlate("payment_received")
    assert all(engine.runtime.get(i).status == "active" for i in ids)
    assert sorted(engine.runtime.correlate("payment_received", all_instances=True)) == ids
    assert all(engine.runtime.get(i).status == "completed" for i in ids)


def test_message_to_a_completed_instance_is_an_error(engine):
    engine.definitions.deploy([res(catch_process())])
    engine.runtime.start("order", "A-1")
    engine.runtime.correlate("payment_received", "A-1")
    with pytest.raises(MessageCorrelationError):
        engine.runtime.correlate("payment_received", "A-1")


def test_message_start_event_starts_a_new_instance(engine):
    text = doc("inbound", start("start", '<bpmn:messageEventDefinition messageRef="Msg_new"/>'),
               '<bpmn:userTask id="handle" name="Behandl"/>', end(), chain("start", "handle", "end"),
               extra=message("Msg_new", "new_request"))
    (info,) = engine.definitions.deploy([res(text)])["deployed"]
    assert info.start_trigger == {"kind": "message", "name": "new_request"}
    (iid,) = engine.runtime.correlate("new_request", "REQ-7", {"subject": "Tag"}, user="anna")
    inst = engine.runtime.get(iid)
    assert (inst.status, inst.business_key, inst.data["subject"]) == ("active", "REQ-7", "Tag")
    assert [t.element_id for t in inst.tasks] == ["handle"]
    assert [h.type for h in inst.history][:2] == ["started", "task_created"]
    assert "message_received" in [h.type for h in inst.history]
    (second,) = engine.runtime.correlate("new_request", "REQ-8")
    assert second != iid


def test_message_start_and_catch_in_two_processes(engine):
    """A message that a waiting instance expects goes to that instance, not to a new start."""
    starter = process("starter", start("start", '<bpmn:messageEventDefinition messageRef="M1"/>'),
                      '<bpmn:userTask id="t"/>', end(), chain("start", "t", "end"))
    waiter = process("waiter", start(), '<bpmn:intermediateCatchEvent id="c"><bpmn:messageEventDefinition '
                     'messageRef="M1"/></bpmn:intermediateCatchEvent>', end(), chain("start", "c", "end"))
    engine.definitions.deploy([res(definitions(starter, waiter, message("M1", "ping")))])
    w = engine.runtime.start("waiter", "W")
    assert engine.runtime.correlate("ping", "W") == [w.id]
    assert engine.runtime.get(w.id).status == "completed"
    assert engine.runtime.list(key="starter")[1] == 0


# -- suspend / resume / terminate -------------------------------------------------------------------

@pytest.fixture
def case(engine):
    engine.definitions.deploy([res(user_process("p", field("note")))])
    return engine.runtime.start("p", "case-1", user="anna")


def test_suspend_blocks_tasks_and_resume_releases_them(engine, case):
    task_id = case.tasks[0].id
    assert engine.runtime.suspend(case.id, user="admin").status == "suspended"
    before = state_of(engine, case.id)
    with pytest.raises(InvalidStateError):
        engine.tasks.complete(task_id, "anna", {"note": "x"})
    with pytest.raises(InvalidStateError):
        engine.tasks.claim(task_id, "anna")
    assert state_of(engine, case.id) == before
    with pytest.raises(InvalidStateError):
        engine.runtime.suspend(case.id, user="admin")
    assert engine.runtime.resume(case.id, user="admin").status == "active"
    with pytest.raises(InvalidStateError):
        engine.runtime.resume(case.id, user="admin")
    engine.tasks.complete(task_id, "anna", {"note": "x"})
    assert engine.runtime.get(case.id).status == "completed"


def test_terminate_needs_a_reason_and_cancels_open_tasks(engine, case, clock):
    for reason in (None, "", "   "):
        with pytest.raises(InvalidInputError):
            engine.runtime.terminate(case.id, user="admin", reason=reason)
    assert engine.runtime.get(case.id).status == "active"
    done = engine.runtime.terminate(case.id, user="admin", reason="  Sagen er trukket tilbage ")
    assert done.status == "terminated"
    assert done.ended_at == clock.now().isoformat()
    assert done.tasks == []
    assert engine.tasks.get(case.tasks[0].id).status == "cancelled"
    (event,) = [h for h in done.history if h.type == "terminated"]
    assert event.user == "admin" and event.details == {"reason": "Sagen er trukket tilbage"}
    for op in (engine.runtime.suspend, engine.runtime.resume):
        with pytest.raises(InvalidStateError):
            op(case.id, user="admin")
    with pytest.raises(InvalidStateError):
        engine.runtime.terminate(case.id, user="admin", reason="again")
    with pytest.raises(InvalidStateError):
        engine.tasks.complete(case.tasks[0].id, "anna", {"note": "x"})


def test_terminate_a_suspended_instance(engine, case):
    engine.runtime.suspend(case.id, user="admin")
    assert engine.runtime.terminate(case.id, user="bo", reason="dublet").status == "terminated"


def test_every_operation_is_in_the_history_with_its_user(engine, case):
    engine.runtime.suspend(case.id, user="admin")
    engine.runtime.resume(case.id, user="bo")
    engine.tasks.claim(case.tasks[0].id, "anna")
    engine.runtime.terminate(case.id, user="carl", reason="stop")
    history = engine.runtime.get(case.id).history
    assert [(h.type, h.user) for h in history] == [
        ("started", "anna"), ("task_created", None), ("suspended", "admin"), ("resumed", "bo"),
        ("claimed", "anna"), ("terminated", "carl")]
    assert all(h.time for h in history)
    assert [e.type for e in engine.history.events(case.id)] == [h.type for h in history]
    assert [e.user for e in engine.history.events(type_="terminated")] == ["carl"]


def test_operations_on_unknown_instances(engine):
    with pytest.raises(NotFoundError):
        engine.runtime.suspend(404, user="admin")
    with pytest.raises(NotFoundError):
        engine.runtime.get(404)


def test_start_validates_its_input(engine, case):
    with pytest.raises(NotFoundError):
        engine.runtime.start("unknown")
    with pytest.raises(InvalidInputError):
        engine.runtime.start("p", data=["not", "an", "object"])
    with pytest.raises(InvalidInputError):
        engine.runtime.start("p", data={"_private": 1})
    with pytest.raises(InvalidInputError):
        engine.runtime.start("p", data={"when": object()})
    assert engine.runtime.list()[1] == 1


# -- waits and incidents inside a called process ------------------------------------------------------

def call_processes(child_script: str = "x = 1") -> str:
    child = process("child", start(),
                    f'<bpmn:intermediateCatchEvent id="wait">{timer("timeDuration", "PT1H")}</bpmn:intermediateCatchEvent>',
                    '<bpmn:intermediateCatchEvent id="msg"><bpmn:messageEventDefinition messageRef="M"/>'
                    '</bpmn:intermediateCatchEvent>', script("work", child_script), end(),
                    chain("start", "wait", "msg", "work", "end"))
    parent = process("parent", start(), '<bpmn:callActivity id="call" calledElement="child"><bpmn:extensionElements>'
                     '<camunda:in variables="all"/><camunda:out variables="all"/></bpmn:extensionElements>'
                     '</bpmn:callActivity>', end(),
                     chain("start", "call", "end"))
    return definitions(parent, child, message("M", "go"))


def test_timer_message_and_incident_inside_a_call_activity(engine, clock):
    engine.definitions.deploy([res(call_processes("x = total / count"))])
    inst = engine.runtime.start("parent", "B1", {"total": 6, "count": 0})
    assert [(w.kind, w.element_id) for w in inst.waits] == [("timer", "wait")]
    clock.advance(timedelta(hours=1))
    assert engine.scheduler.run_due()["fired"] == 1
    assert [(w.kind, w.element_id) for w in engine.runtime.get(inst.id).waits] == [("message", "msg")]
    assert engine.runtime.correlate("go", "B1", {"count": 0}) == [inst.id]
    failed = engine.runtime.get(inst.id)
    assert failed.status == "incident" and failed.incident["element_id"] == "work"
    done = engine.runtime.retry(inst.id, user="admin", data={"count": 3})
    assert done.status == "completed"
    assert done.data["x"] == 2
