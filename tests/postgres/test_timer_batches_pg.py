"""Batch claiming on PostgreSQL: two worker processes run run_due at the same time over many due timers;
each claims batches of ids (FOR UPDATE SKIP LOCKED) and fires them one transaction each, and every
timer fires exactly once."""

from __future__ import annotations

import multiprocessing as mp
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import Engine, FrozenClock
from engine.models import AuditEvent, Instance
from tests.postgres.test_multi_worker import TIMER_PROCESS

pytestmark = pytest.mark.postgres

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
INSTANCES = 150
BATCH = 20


def _worker(url: str, now: datetime, barrier: mp.Barrier, out: mp.Queue) -> None:
    eng = Engine.create(url, clock=FrozenClock(now))
    claims: list[int] = []
    claim = eng.scheduler._claim_batch

    def counting(size: int) -> list[int]:
        got = claim(size)
        claims.append(len(got))
        return got

    eng.scheduler._claim_batch = counting  # type: ignore[method-assign]
    barrier.wait()
    fired = eng.scheduler.run_due(batch=BATCH)["fired"]
    out.put((fired, claims))
    eng.dispose()


def test_two_workers_claim_batches_and_fire_each_timer_once(pg_url: str, tmp_path: Path) -> None:
    eng = Engine.create(pg_url, clock=FrozenClock(START))
    eng.init_db()
    bpmn = tmp_path / "frist.bpmn"
    bpmn.write_text(TIMER_PROCESS)
    eng.definitions.deploy([bpmn], user="test")
    ids = [eng.runtime.start("frist", business_key=f"B-{i}").id for i in range(INSTANCES)]
    eng.dispose()

    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    out = ctx.Queue()
    later = START + timedelta(days=3)
    procs = [ctx.Process(target=_worker, args=(pg_url, later, barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0

    fired = [f for f, _ in results]
    assert sum(fired) == INSTANCES
    assert all(f > 0 for f in fired), f"work was not shared: {fired}"
    for _, claims in results:
        assert claims and max(claims) <= BATCH and claims[-1] == 0
    check = Engine.create(pg_url, clock=FrozenClock(later))
    with check.db.read() as s:
        statuses = dict(s.execute(select(Instance.status, func.count()).where(Instance.id.in_(ids))
                                  .group_by(Instance.status)).all())
        fired_events = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.type == "timer_fired", AuditEvent.instance_id.in_(ids)))
    assert statuses == {"completed": INSTANCES}
    assert fired_events == INSTANCES
    assert check.scheduler.next_due() is None
    check.dispose()
