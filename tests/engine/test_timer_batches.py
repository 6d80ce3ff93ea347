"""Timers in batches: run_due claims due cases a batch at a time and fires each once in its own
transaction; the worker's next wake-up is the next due time, bounded by the safety tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from engine.worker import MIN_DELAY_SECONDS, TimerWaker
from tests.engine.bpmn_kit import doc, end, flow, res, start, timer
from tests.engine.test_engine_timers import catch_process, fired_events


def timer_start_process(value: str) -> str:
    return doc("tick", start("start", timer("timeDate", value)), end(), flow("start", "end"))


@pytest.fixture
def waker(engine):
    scheduler = BackgroundScheduler(daemon=True)
    scheduler.start(paused=True)  # real jobs, real next run times; nothing runs
    yield TimerWaker(engine, scheduler, interval=30)
    scheduler.shutdown(wait=False)


def test_many_due_timers_fire_in_bounded_batches_each_once(engine, clock, monkeypatch):
    engine.definitions.deploy([res(catch_process("timeDuration", "PT1H"))])
    ids = [engine.runtime.start("p").id for _ in range(23)]
    clock.advance(timedelta(hours=1))
    claims: list[int] = []
    claim = engine.scheduler._claim_batch

    def counting(size: int) -> list[int]:
        got = claim(size)
        claims.append(len(got))
        return got

    monkeypatch.setattr(engine.scheduler, "_claim_batch", counting)
    assert engine.scheduler.run_due(batch=5)["fired"] == 23
    assert claims == [5, 5, 5, 5, 3, 0]  # never more than one batch of ids in hand
    assert [len(fired_events(engine, i)) for i in ids] == [1] * 23
    assert engine.scheduler.run_due(batch=5)["fired"] == 0


def test_a_run_stops_at_its_limit_and_the_rest_is_due_at_once(engine, clock, waker):
    engine.definitions.deploy([res(catch_process("timeDuration", "PT1H"))])
    for _ in range(7):
        engine.runtime.start("p")
    clock.advance(timedelta(hours=2))
    assert engine.scheduler.run_due(limit=4, batch=3)["fired"] == 4
    assert engine.scheduler.next_due() <= clock.now()
    assert waker.next_delay() == MIN_DELAY_SECONDS  # the worker runs again at once
    assert engine.scheduler.run_due(limit=4, batch=3)["fired"] == 3


def test_the_next_wake_up_is_the_next_due_time(engine, clock, waker):
    assert engine.scheduler.next_due() is None
    assert waker.next_delay() == 30  # nothing waits: the safety tick
    engine.definitions.deploy([res(catch_process("timeDuration", "PT7S"))])
    engine.runtime.start("p")
    assert engine.scheduler.next_due() == clock.now() + timedelta(seconds=7)
    assert waker.next_delay() == 7
    before = datetime.now(UTC)
    waker.schedule()
    job = waker.wake_job()
    assert abs((job.next_run_time - before).total_seconds() - 7) < 1
    clock.advance(timedelta(seconds=7))
    waker.run()  # fires, then sets the wake-up to the next due time: none, so the safety tick
    assert fired_events(engine, engine.runtime.list(key="p")[0][0]["id"]) == ["wait"]
    later = waker.wake_job()
    assert later.id != job.id and waker.scheduler.get_job(job.id) is None  # replaced, not added to
    assert 28 < (later.next_run_time - datetime.now(UTC)).total_seconds() <= 30


def test_a_far_timer_is_looked_at_again_after_the_safety_tick(engine, clock, waker):
    engine.definitions.deploy([res(catch_process("timeDuration", "P3D"))])
    engine.runtime.start("p")
    assert waker.next_delay() == 30


def test_timer_start_events_count_as_next_due(engine, clock, waker):
    due = clock.now() + timedelta(seconds=12)
    engine.definitions.deploy([res(timer_start_process(due.isoformat()), "tick.bpmn")])
    assert engine.scheduler.next_due() == due
    assert waker.next_delay() == 12
