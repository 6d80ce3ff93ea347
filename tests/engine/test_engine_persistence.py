"""Persistence: compact instance state, reload by a fresh Engine, concurrent writers to one case."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from engine import Limits, OptimisticLockingError, TaskAlreadyCompletedError
from engine.models import Definition, HumanTask, Instance
from tests.engine.bpmn_kit import chain, doc, end, field, flow, lanes, res, script, start, timer, user_task


def long_process() -> str:
    """user task -> script -> timer -> user task, with a parallel branch of two tasks."""
    return doc("p", lanes(Sekretariat=["start", "first", "calc", "wait", "fork", "a", "b", "join", "end"]), start(),
               user_task("first", "Første", field("n", "long")), script("calc", "double = n * 2"),
               f'<bpmn:intermediateCatchEvent id="wait">{timer("timeDuration", "P1D")}</bpmn:intermediateCatchEvent>',
               '<bpmn:parallelGateway id="fork"/>', '<bpmn:parallelGateway id="join"/>',
               user_task("a", "A"), user_task("b", "B"), end(),
               chain("start", "first", "calc", "wait", "fork"), flow("fork", "a"), flow("fork", "b"),
               flow("a", "join"), flow("b", "join"), flow("join", "end"))


def stored(eng, instance_id) -> Instance:
    with eng.db.transaction() as s:
        return s.get(Instance, instance_id)


def test_instance_state_does_not_embed_the_spec(engine):
    engine.definitions.deploy([res(long_process())])
    inst = engine.runtime.start("p")
    row = stored(engine, inst.id)
    state = json.loads(row.state_json)
    assert "task_specs" not in row.state_json
    assert "spec" not in state and "subprocess_specs" not in state
    assert state["tasks"], "the task tree is what an instance stores"
    with engine.db.transaction() as s:
        (definition,) = s.scalars(select(Definition)).all()
        assert "task_specs" in definition.spec_json
        assert '"first"' in definition.spec_json
    assert len(row.state_json) < len(definition.spec_json) + 20_000


def test_a_new_engine_on_the_same_file_continues_the_case(engine, make_engine, clock):
    engine.definitions.deploy([res(long_process())])
    inst = engine.runtime.start("p", "case-9", {"who": "x"}, user="anna")
    engine.tasks.complete(inst.tasks[0].id, "anna", {"n": 21})
    assert stored(engine, inst.id).next_due_at is not None
    engine.dispose()

    second = make_engine()
    view = second.runtime.get(inst.id)
    assert (view.status, view.business_key, view.data["double"]) == ("active", "case-9", 42)
    assert [w.element_id for w in view.waits] == ["wait"]
    clock.advance(timedelta(days=1))
    assert second.scheduler.run_due()["fired"] == 1
    second.dispose()

    third = make_engine()
    tasks = {t.element_id: t for t in third.tasks.query(instance_id=inst.id)}
    assert sorted(tasks) == ["a", "b"]
    third.tasks.complete(tasks["a"].id, "carl")
    fourth = make_engine()
    fourth.tasks.complete(tasks["b"].id, "anna")
    final = fourth.runtime.get(inst.id)
    assert final.status == "completed"
    assert final.data["who"] == "x" and final.data["double"] == 42
    assert [h.type for h in final.history].count("task_completed") == 3


def test_each_change_bumps_the_version(engine):
    engine.definitions.deploy([res(long_process())])
    inst = engine.runtime.start("p")
    v1 = stored(engine, inst.id).version
    engine.tasks.claim(inst.tasks[0].id, "anna")
    engine.tasks.complete(inst.tasks[0].id, "anna", {"n": 1})
    assert stored(engine, inst.id).version > v1


# -- concurrent writers ----------------------------------------------------------------------------

def parallel_case(engine):
    engine.definitions.deploy([res(long_process())])
    inst = engine.runtime.start("p")
    engine.tasks.complete(inst.tasks[0].id, "anna", {"n": 1})
    return inst.id


def run_while_loaded(monkeypatch, eng, action):
    """Start `action` (a write by another engine, in its own thread) while `eng` holds the case between
    loading and saving it; returns the thread and a list that receives the action's error, if any."""
    original = eng.runtime.load
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(action, errors))

    def load(session, inst):
        wf = original(session, inst)
        if not thread.is_alive() and thread.ident is None:
            thread.start()
            time.sleep(0.3)  # the rival reaches the case's lock and waits there
        return wf

    monkeypatch.setattr(eng.runtime, "load", load)
    return thread, errors


def _capture(action, errors):
    try:
        action()
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        errors.append(exc)


def test_a_second_writer_waits_for_the_case_and_both_changes_survive(engine, make_engine, clock, monkeypatch):
    iid = parallel_case(engine)
    clock.advance(timedelta(days=1))
    engine.scheduler.run_due()
    tasks = {t.element_id: t.id for t in engine.tasks.query(instance_id=iid)}
    other = make_engine()
    seen = stored(engine, iid).version

    rival, errors = run_while_loaded(monkeypatch, engine, lambda: other.tasks.complete(tasks["b"], "carl"))
    engine.tasks.complete(tasks["a"], "anna")
    rival.join(30)

    assert errors == [] and not rival.is_alive()
    final = other.runtime.get(iid)
    assert final.status == "completed"
    assert stored(engine, iid).version > seen + 1
    with engine.db.transaction() as s:
        rows = s.execute(select(HumanTask.element_id, HumanTask.status, HumanTask.completed_by)
                         .where(HumanTask.instance_id == iid, HumanTask.element_id.in_(["a", "b"]))).all()
    assert sorted(tuple(r) for r in rows) == [("a", "completed", "anna"), ("b", "completed", "carl")]
    types = [h.type for h in final.history]
    assert types.count("task_completed") == 3 and types.count("completed") == 1


def test_the_second_completion_of_one_task_is_a_conflict(engine, make_engine, clock, monkeypatch):
    iid = parallel_case(engine)
    clock.advance(timedelta(days=1))
    engine.scheduler.run_due()
    task_a = next(t.id for t in engine.tasks.query(instance_id=iid) if t.element_id == "a")
    other = make_engine()
    rival, errors = run_while_loaded(monkeypatch, engine, lambda: other.tasks.complete(task_a, "carl"))
    engine.tasks.complete(task_a, "anna")
    rival.join(30)
    assert [type(e) for e in errors] == [TaskAlreadyCompletedError]
    assert other.tasks.get(task_a).completed_by == "anna"


def fan_out_process(branches: int) -> str:
    ids = [f"t{i}" for i in range(branches)]
    return doc("fan", lanes(Sekretariat=["start", "fork", "join", "end", *ids]), start(),
               '<bpmn:parallelGateway id="fork"/>', '<bpmn:parallelGateway id="join"/>', end(),
               *[user_task(i, f"Opgave {i}", field(f"v_{i}", "long")) for i in ids],
               flow("start", "fork"), *[flow("fork", i) for i in ids], *[flow(i, "join") for i in ids],
               flow("join", "end"))


@pytest.mark.parametrize("engines", ["shared", "one per client"])
def test_sixteen_clients_complete_sixteen_tasks_of_one_case_at_once(engine, make_engine, engines):
    engine.definitions.deploy([res(fan_out_process(16))])
    inst = engine.runtime.start("fan")
    assert len(inst.tasks) == 16
    clients = [engine if engines == "shared" else make_engine() for _ in inst.tasks]
    barrier = threading.Barrier(len(inst.tasks), timeout=30)
    errors: list[BaseException] = []

    def complete(client, task):
        barrier.wait()
        _capture(lambda: client.tasks.complete(task.id, "anna", {f"v_{task.element_id}": 1}), errors)

    threads = [threading.Thread(target=complete, args=(c, t)) for c, t in zip(clients, inst.tasks, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    final = engine.runtime.get(inst.id)
    assert final.status == "completed"
    assert {f"v_t{i}" for i in range(16)} <= set(final.data)
    assert [h.type for h in final.history].count("task_completed") == 16


def test_same_task_from_many_clients_completes_exactly_once(engine, make_engine):
    engine.definitions.deploy([res(fan_out_process(2))])
    inst = engine.runtime.start("fan")
    task = inst.tasks[0]
    clients = [make_engine() for _ in range(8)]
    barrier = threading.Barrier(len(clients), timeout=30)
    errors: list[BaseException] = []

    def complete(client):
        barrier.wait()
        _capture(lambda: client.tasks.complete(task.id, "anna", {f"v_{task.element_id}": 1}), errors)

    threads = [threading.Thread(target=complete, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(type(e).__name__ for e in errors) == ["TaskAlreadyCompletedError"] * 7
    history = engine.runtime.get(inst.id).history
    assert [h.task_id for h in history if h.type == "task_completed"] == [task.id]


def test_a_case_held_too_long_gives_a_clean_conflict_and_changes_nothing(engine, make_engine, db_url):
    engine.definitions.deploy([res(fan_out_process(2))])
    inst = engine.runtime.start("fan")
    impatient = make_engine(limits=Limits(lock_wait_seconds=0.5))
    if engine.db.is_postgres:  # another process holds the case's row
        blocker = engine.db.engine.raw_connection()
        blocker.cursor().execute("SELECT id FROM instances WHERE id = %s FOR UPDATE", (inst.id,))
    else:  # another process holds the database's write lock
        blocker = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(OptimisticLockingError):
            impatient.tasks.complete(inst.tasks[0].id, "anna", {"v_t0": 1})
        assert time.monotonic() - started < 10  # gave up after about lock_wait_seconds, did not hang
    finally:
        blocker.rollback()
        blocker.close()
    assert engine.tasks.get(inst.tasks[0].id).status == "open"
    engine.tasks.complete(inst.tasks[0].id, "anna", {"v_t0": 1})  # and works once the lock is free


def test_version_column_rejects_a_stale_write(engine, make_engine):
    engine.definitions.deploy([res(long_process())])
    iid = engine.runtime.start("p", "orig").id
    other = make_engine()
    first, second = engine.db.sessions(), other.db.sessions()
    try:
        theirs = second.get(Instance, iid)
        second.commit()  # `theirs` now holds a version that is about to go stale
        mine = first.get(Instance, iid)
        assert mine.version == theirs.version
        mine.business_key = "first"
        first.commit()
        theirs.business_key = "second"
        with pytest.raises(StaleDataError):
            second.commit()
    finally:
        first.close()
        second.close()
    assert engine.runtime.get(iid).business_key == "first"
