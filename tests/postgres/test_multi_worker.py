"""Several worker processes call run_due against one PostgreSQL database at the same time:
every due timer fires exactly once (SELECT ... FOR UPDATE SKIP LOCKED), none is lost."""

from __future__ import annotations

import multiprocessing as mp
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import Engine, FrozenClock
from engine.models import AuditEvent, Instance

pytestmark = pytest.mark.postgres

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
INSTANCES = 60
WORKERS = 4

TIMER_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="frist" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="vent" name="Vent">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>P2D</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="taeller" scriptFormat="python"><bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>f3</bpmn:outgoing><bpmn:script>fyret = 1</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="e"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="vent"/>
    <bpmn:sequenceFlow id="f2" sourceRef="vent" targetRef="taeller"/>
    <bpmn:sequenceFlow id="f3" sourceRef="taeller" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>
"""


def _worker(url: str, now: datetime, barrier: mp.Barrier, out: mp.Queue) -> None:
    eng = Engine.create(url, clock=FrozenClock(now))
    barrier.wait()
    fired = 0
    while True:
        result = eng.scheduler.run_due(limit=5)
        fired += result["fired"]
        if result["fired"] == 0:
            break
    out.put(fired)
    eng.dispose()


def test_each_timer_fires_exactly_once_across_worker_processes(pg_url: str, tmp_path: Path) -> None:
    eng = Engine.create(pg_url, clock=FrozenClock(START))
    eng.init_db()
    bpmn = tmp_path / "frist.bpmn"
    bpmn.write_text(TIMER_PROCESS)
    eng.definitions.deploy([bpmn], user="test")
    ids = [eng.runtime.start("frist", business_key=f"F-{i}").id for i in range(INSTANCES)]
    eng.dispose()

    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    out = ctx.Queue()
    later = START + timedelta(days=3)
    procs = [ctx.Process(target=_worker, args=(pg_url, later, barrier, out)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    counts = [out.get(timeout=5) for _ in procs]

    assert sum(counts) == INSTANCES
    assert sum(1 for c in counts if c > 0) >= 2, f"work was not shared between workers: {counts}"
    check = Engine.create(pg_url, clock=FrozenClock(later))
    with check.db.transaction() as s:
        statuses = dict(s.execute(select(Instance.status, func.count()).where(Instance.id.in_(ids))
                                  .group_by(Instance.status)).all())
        fired_events = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.type == "timer_fired", AuditEvent.instance_id.in_(ids)))
    assert statuses == {"completed": INSTANCES}
    assert fired_events == INSTANCES
    assert all(check.runtime.get(i, history=False).data.get("fyret") == 1 for i in ids[:5])
    check.dispose()
