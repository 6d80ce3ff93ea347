"""Timer semantics and bounds: cycles fire R times (R/ without end), missed occurrences are skipped,
no timer literal can hang the engine (minimum cycle interval, maximum horizon: refused at deploy when
literal, an incident naming the element when computed), timer-start failures are deploy refusals, and
run_due always returns after a bounded amount of work."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from engine import DeploymentError
from engine.limits import Limits
from engine.models import AuditEvent, Definition
from tests.engine.bpmn_kit import chain, doc, end, flow, lanes, res, script, start, timer, user_task

H = timedelta(hours=1)


def cycle_boundary(value: str, path: str = "user", kind: str = "timeCycle") -> str:
    """work (user task) with a non-interrupting timer boundary 'remind' whose path is a user task
    'late' or a script that counts."""
    target = user_task("late", "Rykker") if path == "user" else script("late", "reminders = var('reminders', 0) + 1")
    return doc("p", lanes(Sekretariat=["start", "work", "late", "end", "end_late"]), start(),
               user_task("work", "Arbejd"),
               f'<bpmn:boundaryEvent id="remind" name="Påmind" attachedToRef="work" cancelActivity="false">'
               f'{timer(kind, value)}</bpmn:boundaryEvent>', target, end(), end("end_late"),
               flow("start", "work"), flow("work", "end"), flow("remind", "late"), flow("late", "end_late"))


def catch_timer(kind: str, value: str) -> str:
    return doc("c", start(), f'<bpmn:intermediateCatchEvent id="wait">{timer(kind, value)}</bpmn:intermediateCatchEvent>',
               script("after", "woke = True"), end(), chain("start", "wait", "after", "end"))


def timer_start(kind: str, value: str, pid: str = "tick") -> str:
    return doc(pid, start("tick_start", timer(kind, value)), script("s", "ran = True"), end(), chain("tick_start", "s", "end"))


def tasks_at(engine, instance_id, element: str) -> int:
    return sum(1 for t in engine.tasks.query(instance_id=instance_id) if t.element_id == element)


def fired(engine, instance_id) -> list[str]:
    return [h.element_id for h in engine.runtime.get(instance_id).history if h.type == "timer_fired"]


def refused(engine, text: str) -> list:
    started = time.monotonic()
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(text)])
    assert time.monotonic() - started < 5, "a refusal is quick"
    assert engine.definitions.list() == []
    return exc.value.problems


# == cycles fire R times ==================================================================================

@pytest.mark.parametrize(("value", "times"), [("R2/PT1H", 2), ("R3/PT1H", 3), ("R/PT1H", 6)])
def test_a_non_interrupting_cycle_fires_r_times(engine, clock, value, times):
    engine.definitions.deploy([res(cycle_boundary(value))])
    inst = engine.runtime.start("p")
    for hour in range(1, 7):
        clock.advance(H)
        engine.scheduler.run_due()
        assert tasks_at(engine, inst.id, "late") == min(hour, times)
    assert fired(engine, inst.id) == ["remind"] * times
    view = engine.runtime.get(inst.id)
    if times < 6:
        assert view.waits == [] and view.next_due is None, "a finished cycle waits for nothing"
    else:
        assert view.next_due == (clock.now() + H).isoformat()


def test_r2_with_a_path_that_ends_at_once_fires_twice_and_then_stops(engine, clock):
    engine.definitions.deploy([res(cycle_boundary("R2/PT1H", path="script"))])
    inst = engine.runtime.start("p")
    for hour in range(1, 5):
        clock.advance(H)
        assert engine.scheduler.run_due()["fired"] == (1 if hour <= 2 else 0)
    view = engine.runtime.get(inst.id)
    assert fired(engine, inst.id) == ["remind", "remind"]
    assert (view.status, view.waits, view.next_due) == ("active", [], None)
    assert [t.element_id for t in view.tasks] == ["work"]


def test_the_paths_of_a_cycle_go_on_after_the_activity_ends(engine, clock):
    engine.definitions.deploy([res(cycle_boundary("R/PT1H"))])
    inst = engine.runtime.start("p")
    for _ in range(2):
        clock.advance(H)
        engine.scheduler.run_due()
    work = next(t for t in engine.tasks.query(instance_id=inst.id) if t.element_id == "work")
    engine.tasks.complete(work.id, "anna")
    view = engine.runtime.get(inst.id)
    assert view.status == "active", "two reminder paths are still open"
    assert sorted(t.element_id for t in view.tasks) == ["late", "late"]
    assert view.waits == [], "the cycle ended with its activity"
    clock.advance(3 * H)
    assert engine.scheduler.run_due()["fired"] == 0
    for task in view.tasks:
        engine.tasks.complete(task.id, "anna")
    assert engine.runtime.get(inst.id).status == "completed"


def test_missed_occurrences_are_skipped_not_caught_up(engine, clock):
    engine.definitions.deploy([res(cycle_boundary("R/PT1H"))])
    inst = engine.runtime.start("p")
    clock.advance(10 * H + timedelta(minutes=30))  # the scheduler was down for ten hours
    assert engine.scheduler.run_due()["fired"] == 1
    assert tasks_at(engine, inst.id, "late") == 1
    assert engine.runtime.get(inst.id).next_due == "2027-01-04T20:00:00+00:00"


def test_a_late_bounded_cycle_still_fires_all_its_repetitions(engine, clock):
    engine.definitions.deploy([res(cycle_boundary("R2/PT1H"))])
    inst = engine.runtime.start("p")
    clock.advance(5 * H)
    engine.scheduler.run_due()
    clock.advance(H)
    engine.scheduler.run_due()
    assert tasks_at(engine, inst.id, "late") == 2


def test_a_shorter_cycle_is_allowed_when_the_limit_allows_it(make_engine, clock):
    eng = make_engine(limits=Limits(min_timer_cycle_seconds=1))
    eng.identity.add_forum("Sekretariat")
    eng.definitions.deploy([res(cycle_boundary("R3/PT2S", path="script"))])
    inst = eng.runtime.start("p")
    for _ in range(5):
        clock.advance(timedelta(seconds=2))
        eng.scheduler.run_due()
    assert fired(eng, inst.id) == ["remind"] * 3


# == literals that would hang the engine are refused at deploy =================================================

@pytest.mark.parametrize(("text", "element", "words"), [
    (cycle_boundary("R/PT0S"), "remind", "shortest interval allowed is 60 s"),
    (cycle_boundary("R/PT0.001S"), "remind", "shortest interval"),
    (cycle_boundary("R5/PT59S"), "remind", "shortest interval"),
    (cycle_boundary("R0/PT1H"), "remind", "zero times"),
    (cycle_boundary("R/P999999999Y"), "remind", "horizon of 100 years"),
    (cycle_boundary("P999999999Y", kind="timeDuration"), "remind", "horizon"),
    (catch_timer("timeDuration", "P999999999Y"), "wait", "horizon of 100 years"),
    (catch_timer("timeDuration", "P101Y"), "wait", "horizon"),
    (catch_timer("timeDuration", "PT999999999999H"), "wait", "horizon"),
    (catch_timer("timeDate", "9999-12-31T00:00:00Z"), "wait", "horizon"),
    (catch_timer("timeDate", "P1D"), "wait", "not a date"),
    (catch_timer("timeCycle", "R/2027-01-05T00:00:00Z/PT1S"), "wait", "shortest interval"),
])
def test_timer_literals_beyond_the_bounds_are_refused_naming_the_element(engine, text, element, words):
    (problem,) = refused(engine, text)
    assert problem.element_id == element and words in problem.message, problem


@pytest.mark.parametrize(("kind", "value", "words"), [
    ("timeCycle", "R/PT0.001S", "shortest interval"),
    ("timeCycle", "R/PT0S", "shortest interval"),
    ("timeDuration", "P999999999Y", "horizon"),
    ("timeCycle", "str(1/0)", "ZeroDivisionError"),
    ("timeCycle", "'R/P' + '9' * 20 + 'Y'", "horizon"),
    ("timeDate", "'not a date'", "not an ISO 8601 date"),
])
def test_timer_start_events_that_cannot_be_scheduled_are_refused(engine, kind, value, words):
    (problem,) = refused(engine, timer_start(kind, value))
    assert problem.element_id == "tick_start" and words in problem.message, problem


def test_timer_limits_within_bounds_still_deploy(engine):
    for text in (cycle_boundary("R/PT1M"), catch_timer("timeDuration", "P99Y"), timer_start("timeCycle", "R/PT60S")):
        assert engine.definitions.deploy([res(text)])["deployed"]


# == computed values: incidents naming the element ======================================================================

def test_a_computed_duration_beyond_the_horizon_is_an_incident_and_retry_fixes_it(engine, clock):
    engine.definitions.deploy([res(catch_timer("timeDuration", "${wait}"))])
    started = time.monotonic()
    inst = engine.runtime.start("c", data={"wait": "P999999999Y"})
    assert time.monotonic() - started < 5
    assert inst.status == "incident"
    assert inst.incident["element_id"] == "wait" and "horizon" in inst.incident["message"]
    assert engine.scheduler.run_due() == {"fired": 0, "started": 0}
    fixed = engine.runtime.retry(inst.id, user="admin", data={"wait": "PT1H"})
    assert fixed.status == "active" and fixed.next_due == (clock.now() + H).isoformat()
    clock.advance(H)
    assert engine.scheduler.run_due()["fired"] == 1
    assert engine.runtime.get(inst.id).data["woke"] is True


@pytest.mark.parametrize(("value", "data", "words"), [
    ("${every}", {"every": "R/PT1S"}, "shortest interval"),
    ("${every}", {"every": "R/PT0S"}, "shortest interval"),
    ("${every}", {}, "every"),
    ("${every}", {"every": "R/P999999999Y"}, "horizon"),
])
def test_a_computed_cycle_out_of_bounds_is_an_incident(engine, value, data, words):
    engine.definitions.deploy([res(cycle_boundary(value))])
    inst = engine.runtime.start("p", data=data)
    assert inst.status == "incident"
    assert inst.incident["element_id"] == "remind" and words in inst.incident["message"]
    assert engine.scheduler.run_due() == {"fired": 0, "started": 0}


def test_a_timer_failing_inside_run_due_is_an_incident_naming_it(engine, clock):
    """The reminder path of a cycle reaches a timer whose expression fails: run_due returns, and the
    incident names that timer."""
    text = doc("p", lanes(Sekretariat=["start", "work", "end", "end_late"]), start(), user_task("work", "Arbejd"),
               f'<bpmn:boundaryEvent id="remind" attachedToRef="work" cancelActivity="false">'
               f'{timer("timeCycle", "R/PT1H")}</bpmn:boundaryEvent>',
               f'<bpmn:intermediateCatchEvent id="then_wait">{timer("timeDuration", "${pause}")}</bpmn:intermediateCatchEvent>',
               end(), end("end_late"), flow("start", "work"), flow("work", "end"), chain("remind", "then_wait", "end_late"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("p")
    clock.advance(H)
    assert engine.scheduler.run_due()["fired"] == 1
    view = engine.runtime.get(inst.id)
    assert view.status == "incident"
    assert view.incident["element_id"] == "then_wait" and "pause" in view.incident["message"]


# == run_due is bounded ============================================================================================

def test_run_due_starts_a_bounded_number_of_timer_processes_per_call(make_engine, clock):
    eng = make_engine(limits=Limits(max_timer_starts_per_run=2))
    for i in range(5):
        eng.definitions.deploy([res(timer_start("timeCycle", "R/PT1M", pid=f"tick{i}"), f"t{i}.bpmn")])
    clock.advance(timedelta(hours=24))  # a day of missed minutes: no burst
    results = [eng.scheduler.run_due()["started"] for _ in range(4)]
    assert results == [2, 2, 1, 0]
    assert eng.runtime.list()[1] == 5


def test_a_timer_start_whose_expression_fails_later_is_stopped_and_audited(engine, clock):
    engine.definitions.deploy([res(timer_start("timeCycle", "R/PT1H"))])
    with engine.db.transaction() as s:
        s.scalar(select(Definition)).start_timer = "str(1/0)"
    clock.advance(2 * H)
    assert engine.scheduler.run_due() == {"fired": 0, "started": 0}
    assert engine.definitions.get("tick").start_trigger["next"] is None
    with engine.db.transaction() as s:
        (event,) = s.scalars(select(AuditEvent).where(AuditEvent.type == "incident")).all()
        assert event.details["definition"] == "tick" and "ZeroDivisionError" in event.details["message"]


def test_run_due_returns_quickly_with_many_instances_due(engine, clock):
    engine.definitions.deploy([res(catch_timer("timeDuration", "PT1H"))])
    ids = [engine.runtime.start("c").id for _ in range(5)]
    clock.advance(H)
    assert engine.scheduler.run_due(limit=3)["fired"] == 3
    assert engine.scheduler.run_due(limit=3)["fired"] == 2
    assert all(engine.runtime.get(i).status == "completed" for i in ids)


def test_date_timers_compare_with_the_engine_clock(engine, clock):
    due = (clock.now() + 2 * H).replace(microsecond=0)
    engine.definitions.deploy([res(catch_timer("timeDate", due.isoformat()))])
    inst = engine.runtime.start("c")
    assert datetime.fromisoformat(inst.next_due) == due
    clock.set(due)
    assert engine.scheduler.run_due()["fired"] == 1


def test_a_cycle_on_an_intermediate_catch_event_fires_once(engine, clock):
    engine.definitions.deploy([res(catch_timer("timeCycle", "R3/PT1H"))])
    inst = engine.runtime.start("c")
    assert inst.next_due == (clock.now() + H).isoformat()
    clock.advance(H)
    assert engine.scheduler.run_due()["fired"] == 1
    done = engine.runtime.get(inst.id)
    assert done.status == "completed" and done.waits == []
    clock.advance(5 * H)
    assert engine.scheduler.run_due()["fired"] == 0
    assert fired(engine, inst.id) == ["wait"]


def test_a_cycle_on_an_interrupting_boundary_interrupts_at_its_first_occurrence(engine, clock):
    engine.definitions.deploy([res(cycle_boundary("R3/PT1H").replace(' cancelActivity="false"', ""))])
    inst = engine.runtime.start("p")
    clock.advance(H)
    assert engine.scheduler.run_due()["fired"] == 1
    assert [t.element_id for t in engine.tasks.query(instance_id=inst.id)] == ["late"]
    clock.advance(3 * H)
    assert engine.scheduler.run_due()["fired"] == 0
    assert tasks_at(engine, inst.id, "late") == 1 and engine.runtime.get(inst.id).waits == []
