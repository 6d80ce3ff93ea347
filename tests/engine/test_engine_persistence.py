"""Persistence: compact instance state, reload by a fresh Engine, optimistic locking between engines."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from engine import OptimisticLockingError, TaskAlreadyCompletedError
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


# -- optimistic locking ------------------------------------------------------------------------------

def parallel_case(engine):
    engine.definitions.deploy([res(long_process())])
    inst = engine.runtime.start("p")
    engine.tasks.complete(inst.tasks[0].id, "anna", {"n": 1})
    return inst.id


def interleave(monkeypatch, eng, action, times: int = 1):
    """Run `action` (a write by another engine) while `eng` is between loading and saving an instance."""
    original = eng.runtime.load
    calls = {"n": 0}

    def load(session, inst):
        wf = original(session, inst)
        if calls["n"] < times:
            calls["n"] += 1
            action(calls["n"])
        return wf

    monkeypatch.setattr(eng.runtime, "load", load)
    return calls


def test_concurrent_writer_forces_a_reload_and_both_changes_survive(engine, make_engine, clock, monkeypatch):
    iid = parallel_case(engine)
    clock.advance(timedelta(days=1))
    engine.scheduler.run_due()
    tasks = {t.element_id: t.id for t in engine.tasks.query(instance_id=iid)}
    other = make_engine()
    seen = stored(engine, iid).version

    calls = interleave(monkeypatch, engine, lambda n: other.tasks.complete(tasks["b"], "carl"))
    engine.tasks.complete(tasks["a"], "anna")  # loses the race once, then retries on fresh state

    assert calls["n"] == 1
    final = other.runtime.get(iid)
    assert final.status == "completed"
    assert stored(engine, iid).version > seen + 1
    with engine.db.transaction() as s:
        rows = s.execute(select(HumanTask.element_id, HumanTask.status, HumanTask.completed_by)
                         .where(HumanTask.instance_id == iid, HumanTask.element_id.in_(["a", "b"]))).all()
    assert sorted(tuple(r) for r in rows) == [("a", "completed", "anna"), ("b", "completed", "carl")]
    types = [h.type for h in final.history]
    assert types.count("task_completed") == 3 and types.count("completed") == 1


def test_losing_the_race_on_the_same_task_is_a_conflict(engine, make_engine, clock, monkeypatch):
    iid = parallel_case(engine)
    clock.advance(timedelta(days=1))
    engine.scheduler.run_due()
    task_a = next(t.id for t in engine.tasks.query(instance_id=iid) if t.element_id == "a")
    other = make_engine()
    interleave(monkeypatch, engine, lambda n: other.tasks.complete(task_a, "carl"))
    with pytest.raises(TaskAlreadyCompletedError):
        engine.tasks.complete(task_a, "anna")
    assert other.tasks.get(task_a).completed_by == "carl"


def test_endless_contention_gives_optimistic_locking_error(engine, make_engine, clock, monkeypatch):
    iid = parallel_case(engine)
    clock.advance(timedelta(days=1))
    engine.scheduler.run_due()
    task_a = next(t.id for t in engine.tasks.query(instance_id=iid) if t.element_id == "a")
    other = make_engine()
    before = stored(engine, iid).state_json

    def rival_write(n):
        # another engine changes the instance every time this one has loaded it
        other.runtime.suspend(iid, user="admin")
        other.runtime.resume(iid, user="admin")

    interleave(monkeypatch, engine, rival_write, times=100)
    with pytest.raises(OptimisticLockingError):
        engine.tasks.complete(task_a, "anna")
    assert engine.tasks.get(task_a).status == "open"
    assert stored(engine, iid).state_json == before


def test_version_column_rejects_a_stale_write(engine, make_engine):
    engine.definitions.deploy([res(long_process())])
    iid = engine.runtime.start("p", "orig").id
    other = make_engine()
    first, second = engine.db.sessions(), other.db.sessions()
    try:
        mine, theirs = first.get(Instance, iid), second.get(Instance, iid)
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
