"""Timers on the engine clock: boundary, intermediate, timer start; run_due fires each once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.engine.bpmn_kit import chain, doc, end, flow, lanes, res, script, start, timer, user_task

H = timedelta(hours=1)


def boundary_process(kind: str, value: str, interrupting: bool = True) -> str:
    cancel = "" if interrupting else ' cancelActivity="false"'
    return doc("p", lanes(Sekretariat=["start", "work", "late", "end", "end_late"]), start(),
               user_task("work", "Arbejd"),
               f'<bpmn:boundaryEvent id="deadline" name="Frist" attachedToRef="work"{cancel}>'
               f'{timer(kind, value)}</bpmn:boundaryEvent>',
               user_task("late", "Rykker"), end(), end("end_late"),
               flow("start", "work"), flow("work", "end"), flow("deadline", "late"), flow("late", "end_late"))


def open_elements(engine, instance_id) -> list[str]:
    return sorted(t.element_id for t in engine.tasks.query(instance_id=instance_id))


def fired_events(engine, instance_id) -> list[str]:
    return [h.element_id for h in engine.runtime.get(instance_id).history if h.type == "timer_fired"]


# -- boundary timers -------------------------------------------------------------------------------

def test_interrupting_boundary_timer(engine, clock):
    engine.definitions.deploy([res(boundary_process("timeDuration", "PT3S"))])
    inst = engine.runtime.start("p")
    assert inst.next_due == (clock.now() + timedelta(seconds=3)).isoformat()
    assert [(w.kind, w.element_id, w.name) for w in inst.waits] == [("timer", "deadline", "Frist")]

    assert engine.scheduler.run_due() == {"fired": 0, "started": 0}  # not due yet
    clock.advance(timedelta(seconds=2))
    assert engine.scheduler.run_due()["fired"] == 0
    assert open_elements(engine, inst.id) == ["work"]

    clock.advance(timedelta(seconds=1))
    assert engine.scheduler.run_due()["fired"] == 1
    assert open_elements(engine, inst.id) == ["late"]
    view = engine.runtime.get(inst.id)
    assert view.next_due is None and view.waits == []
    assert fired_events(engine, inst.id) == ["deadline"]
    assert any(h.type == "task_cancelled" and h.element_id == "work" for h in view.history)

    assert engine.scheduler.run_due()["fired"] == 0  # a second call does not fire again
    assert fired_events(engine, inst.id) == ["deadline"]


def test_task_completed_before_the_timer_disarms_it(engine, clock):
    engine.definitions.deploy([res(boundary_process("timeDuration", "PT1H"))])
    inst = engine.runtime.start("p")
    engine.tasks.complete(inst.tasks[0].id, "anna")
    assert engine.runtime.get(inst.id).status == "completed"
    clock.advance(2 * H)
    assert engine.scheduler.run_due()["fired"] == 0
    assert fired_events(engine, inst.id) == []


def test_non_interrupting_boundary_timer_keeps_the_task(engine, clock):
    engine.definitions.deploy([res(boundary_process("timeDuration", "PT1H", interrupting=False))])
    inst = engine.runtime.start("p")
    clock.advance(H)
    assert engine.scheduler.run_due()["fired"] == 1
    tasks = {t.element_id: t for t in engine.tasks.query(instance_id=inst.id)}
    assert sorted(tasks) == ["late", "work"]
    clock.advance(H)
    assert engine.scheduler.run_due()["fired"] == 0, "a duration fires once"
    engine.tasks.complete(tasks["late"].id, "anna")
    engine.tasks.complete(tasks["work"].id, "anna")
    assert engine.runtime.get(inst.id).status == "completed"


def test_non_interrupting_cycle_fires_each_cycle(engine, clock):
    engine.definitions.deploy([res(boundary_process("timeCycle", "R3/PT1H", interrupting=False))])
    inst = engine.runtime.start("p")
    assert inst.next_due == "2027-01-04T10:00:00+00:00"
    for expected_late_tasks in (1, 2, 3):
        clock.advance(H)
        assert engine.scheduler.run_due()["fired"] == 1
        assert engine.scheduler.run_due()["fired"] == 0
        assert open_elements(engine, inst.id).count("late") == expected_late_tasks
    clock.advance(5 * H)
    assert engine.scheduler.run_due()["fired"] == 0, "R3 fires three times only"
    assert fired_events(engine, inst.id) == ["deadline"] * 3
    assert engine.runtime.get(inst.id).next_due is None


# -- intermediate timers and literals -------------------------------------------------------------------

def catch_process(kind: str, value: str) -> str:
    return doc("p", start(), f'<bpmn:intermediateCatchEvent id="wait">{timer(kind, value)}</bpmn:intermediateCatchEvent>',
               script("after", "woke = iso(now())"), end(), chain("start", "wait", "after", "end"))


@pytest.mark.parametrize(("kind", "value", "due"), [
    ("timeDuration", "PT3S", "2027-01-04T09:00:03+00:00"),
    ("timeDuration", "P1D", "2027-01-05T09:00:00+00:00"),
    ("timeDuration", "'PT2H'", "2027-01-04T11:00:00+00:00"),            # a Python string still works
    ("timeDuration", "${wait}", "2027-01-04T09:30:00+00:00"),           # JUEL variable
    ("timeDate", "2027-01-05T10:00:00Z", "2027-01-05T10:00:00+00:00"),
    ("timeDate", "2027-01-05T10:00:00+01:00", "2027-01-05T09:00:00+00:00"),
])
def test_intermediate_timer_literals(engine, clock, kind, value, due):
    engine.definitions.deploy([res(catch_process(kind, value))])
    inst = engine.runtime.start("p", data={"wait": "PT30M"})
    assert inst.status == "active", inst.incident
    assert inst.next_due is not None
    assert inst.next_due == due or _same_instant(inst.next_due, due)
    assert engine.scheduler.run_due()["fired"] == 0
    clock.set(_parse(due))
    assert engine.scheduler.run_due()["fired"] == 1
    done = engine.runtime.get(inst.id)
    assert done.status == "completed"
    assert _same_instant(done.data["woke"], due)


def test_past_date_fires_at_once(engine, clock):
    engine.definitions.deploy([res(catch_process("timeDate", "2027-01-01T10:00:00Z"))])
    inst = engine.runtime.start("p")
    assert inst.status == "completed"
    assert inst.data["woke"] == clock.now().isoformat()
    assert engine.scheduler.run_due()["fired"] == 0


def test_timers_in_the_future_do_not_fire(engine, clock):
    engine.definitions.deploy([res(catch_process("timeDuration", "P2D"))])
    inst = engine.runtime.start("p")
    clock.advance(timedelta(days=2) - timedelta(seconds=1))
    assert engine.scheduler.run_due() == {"fired": 0, "started": 0}
    assert engine.runtime.get(inst.id).status == "active"
    assert fired_events(engine, inst.id) == []


def test_run_due_fires_every_due_instance_once(engine, clock):
    engine.definitions.deploy([res(catch_process("timeDuration", "PT1H"))])
    early = [engine.runtime.start("p").id for _ in range(3)]
    clock.advance(H)
    late = engine.runtime.start("p").id  # due an hour later
    assert engine.scheduler.run_due()["fired"] == 3
    assert engine.scheduler.run_due()["fired"] == 0
    assert [engine.runtime.get(i).status for i in early] == ["completed"] * 3
    assert engine.runtime.get(late).status == "active"
    assert [len(fired_events(engine, i)) for i in early] == [1, 1, 1]


def test_upcoming_lists_timer_waits(engine, clock):
    engine.definitions.deploy([res(catch_process("timeDuration", "PT5H"))])
    inst = engine.runtime.start("p", business_key="k1")
    assert engine.scheduler.upcoming(within_hours=4) == []
    (row,) = engine.scheduler.upcoming(within_hours=6)
    assert (row["instance_id"], row["element_id"], row["business_key"]) == (inst.id, "wait", "k1")


# -- timer start events -----------------------------------------------------------------------------

def timer_start_process(kind: str, value: str) -> str:
    return doc("tick", start("start", timer(kind, value)), script("s", "ran = iso(now())"), end(),
               chain("start", "s", "end"))


def started_instances(engine) -> list[dict]:
    rows, _ = engine.runtime.list(key="tick")
    return sorted(rows, key=lambda r: r["id"])


def test_timer_start_cycle_schedules_and_starts(engine, clock):
    (info,) = engine.definitions.deploy([res(timer_start_process("timeCycle", "R3/PT1H"))])["deployed"]
    assert info.start_trigger["kind"] == "timer"
    assert info.start_trigger["next"] == "2027-01-04T10:00:00+00:00"
    assert engine.scheduler.run_due() == {"fired": 0, "started": 0}

    starts = []
    for _ in range(5):
        clock.advance(H)
        starts.append(engine.scheduler.run_due()["started"])
        assert engine.scheduler.run_due()["started"] == 0  # calling twice does not start twice
    assert starts == [1, 1, 1, 0, 0], "R3/PT1H starts three instances, one per hour"
    rows = started_instances(engine)
    assert [r["status"] for r in rows] == ["completed"] * 3
    assert [engine.runtime.get(r["id"]).data["ran"] for r in rows] == [
        "2027-01-04T10:00:00+00:00", "2027-01-04T11:00:00+00:00", "2027-01-04T12:00:00+00:00"]
    assert engine.definitions.get("tick").start_trigger["next"] is None


def test_timer_start_next_start_is_scheduled_after_each_start(engine, clock):
    engine.definitions.deploy([res(timer_start_process("timeCycle", "R/PT1H"))])
    clock.advance(H)
    assert engine.scheduler.run_due()["started"] == 1
    assert engine.definitions.get("tick").start_trigger["next"] == "2027-01-04T11:00:00+00:00"


def test_timer_start_date_fires_once(engine, clock):
    engine.definitions.deploy([res(timer_start_process("timeDate", "2027-01-05T08:00:00Z"))])
    assert engine.definitions.get("tick").start_trigger["next"] == "2027-01-05T08:00:00+00:00"
    clock.set(_parse("2027-01-05T08:00:00+00:00"))
    assert engine.scheduler.run_due()["started"] == 1
    clock.advance(timedelta(days=30))
    assert engine.scheduler.run_due()["started"] == 0
    assert len(started_instances(engine)) == 1


def test_only_the_newest_version_is_started_by_its_timer(engine, clock):
    engine.definitions.deploy([res(timer_start_process("timeCycle", "R/PT1H"))])
    engine.definitions.deploy([res(timer_start_process("timeCycle", "R/PT2H"))])
    clock.advance(2 * H)
    assert engine.scheduler.run_due()["started"] == 1
    (row,) = started_instances(engine)
    assert row["definition"]["version"] == 2


# -- helpers ----------------------------------------------------------------------------------------

def _parse(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)


def _same_instant(a: str, b: str) -> bool:
    return _parse(a) == _parse(b)


def test_missed_cycle_starts_are_not_caught_up_in_a_burst(engine, clock):
    engine.definitions.deploy([res(timer_start_process("timeCycle", "R/PT1H"))])
    clock.advance(10 * H + timedelta(minutes=30))  # the scheduler was down for ten hours
    assert engine.scheduler.run_due()["started"] == 1
    assert engine.definitions.get("tick").start_trigger["next"] == "2027-01-04T20:00:00+00:00"


def test_suspended_instances_timers_do_not_fire(engine, clock):
    engine.definitions.deploy([res(catch_process("timeDuration", "PT1H"))])
    inst = engine.runtime.start("p")
    engine.runtime.suspend(inst.id, user="admin")
    clock.advance(2 * H)
    assert engine.scheduler.run_due()["fired"] == 0
    assert engine.runtime.get(inst.id).status == "suspended"
    engine.runtime.resume(inst.id, user="admin")
    assert engine.scheduler.run_due()["fired"] == 1
    assert engine.runtime.get(inst.id).status == "completed"


def test_a_timer_already_due_at_start_fires_at_once_and_is_audited(engine):
    engine.definitions.deploy([res(doc(
        "gammel", start("s"),
        '<bpmn:intermediateCatchEvent id="frist"><bpmn:timerEventDefinition>'
        '<bpmn:timeDate>2026-01-01T00:00:00Z</bpmn:timeDate></bpmn:timerEventDefinition>'
        '</bpmn:intermediateCatchEvent>', end("e"), chain("s", "frist", "e")))])
    view = engine.runtime.start("gammel")
    assert view.status == "completed"
    fired = [h for h in view.history if h.type == "timer_fired"]
    assert [h.element_id for h in fired] == ["frist"]
    assert engine.scheduler.run_due() == {"fired": 0, "started": 0}
    assert [h.type for h in engine.runtime.get(view.id).history].count("timer_fired") == 1
