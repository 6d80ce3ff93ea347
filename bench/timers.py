"""Timers due at the same moment, fired by real worker processes: how late each fires (lag), side by side.

`python -m bench.timers`:
- SQLite: 2,000 timers due in the same second, 1 worker process (`almenflow worker`'s loop);
  target: all fired within 10 s of their due time.
- PostgreSQL (with BENCH_PG_URL, an admin URL): 10,000 timers, 2 worker processes, (a) all due in the same
  second and (b) due times spread evenly at BENCH_TIMERS_RATE per second (default 50); target lag p99 < 1 s.
Prints lag p50/p99/max, when the last fired, and each worker's peak memory (VmHWM), which must not grow
with the number of timers waiting.

The cases are made quickly: a few real cases are started (one per distinct due time), and their rows
(state, variables, next due time, timer wait) are copied with bulk inserts; firing a copy runs the
whole step (load, fire the timer, a script task, the end event, persist). BENCH_TIMERS_SQLITE and
BENCH_TIMERS_PG change the counts.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text

from engine import Engine
from engine.models import AuditEvent, Instance, Wait

PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="frist" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="vent" name="Vent">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDate>frist</bpmn:timeDate></bpmn:timerEventDefinition>
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
SETUP_MARGIN = timedelta(seconds=20)


def _worker(url: str) -> None:
    from engine.worker import run_blocking

    run_blocking(Engine.create(url))


def _peak_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def prepare(url: str, count: int, dues: list[datetime], folder: Path) -> dict[str, int]:
    """`count` waiting cases, spread round-robin over the due times; {business key prefix: due index}."""
    eng = Engine.create(url)
    eng.init_db()
    bpmn = folder / "frist.bpmn"
    bpmn.write_text(PROCESS)
    eng.definitions.deploy([bpmn], user="bench")
    templates = []
    for i, due in enumerate(dues):
        view = eng.runtime.start("frist", business_key=f"T{i}-0", data={"frist": due.isoformat()})
        with eng.db.engine.connect() as conn:
            row = conn.execute(select(Instance).where(Instance.id == view.id)).one()._mapping
        templates.append(dict(row))
    with eng.db.engine.begin() as conn:
        next_id = (conn.scalar(select(func.max(Instance.id))) or 0) + 1
        batch: list[dict[str, Any]] = []
        waits: list[dict[str, Any]] = []
        for n in range(len(dues), count):
            i = n % len(dues)
            t = templates[i]
            batch.append({k: v for k, v in t.items() if k != "id"} | {"id": next_id, "business_key": f"T{i}-{n}"})
            waits.append({"instance_id": next_id, "kind": "timer", "element_id": "vent", "name": "Vent",
                          "due_at": t["next_due_at"]})
            next_id += 1
            if len(batch) == 2000:
                conn.execute(insert(Instance), batch)
                conn.execute(insert(Wait), waits)
                batch, waits = [], []
        if batch:
            conn.execute(insert(Instance), batch)
            conn.execute(insert(Wait), waits)
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('instances', 'id'), (SELECT max(id) FROM instances))"))
            conn.execute(text("ANALYZE"))
    eng.dispose()
    return {f"T{i}": i for i in range(len(dues))}


def run(url: str, count: int, workers: int, spread_seconds: float, label: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        first_due = datetime.now(UTC) + SETUP_MARGIN
        distinct = max(1, min(count, int(spread_seconds) + 1)) if spread_seconds else 1
        dues = [first_due + timedelta(seconds=spread_seconds * i / max(1, distinct - 1)) if distinct > 1
                else first_due for i in range(distinct)]
        t0 = time.monotonic()
        prepare(url, count, dues, Path(tmp))
        setup = time.monotonic() - t0
        if datetime.now(UTC) >= first_due:
            return [f"| {label} | setup took {setup:.0f} s, past the first due time: not measured | | | | |"]
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_worker, args=(url,), daemon=True) for _ in range(workers)]
        for p in procs:
            p.start()
        eng = Engine.create(url)
        deadline = dues[-1] + timedelta(seconds=max(120, count / 20))
        peaks = [0] * workers
        try:
            while datetime.now(UTC) < deadline:
                time.sleep(0.5)
                peaks = [max(a, _peak_kb(p.pid or 0)) for a, p in zip(peaks, procs, strict=True)]
                with eng.db.engine.connect() as conn:
                    left = conn.scalar(select(func.count()).select_from(Instance).where(Instance.status == "active"))
                if not left:
                    break
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.join(10)
        with eng.db.engine.connect() as conn:
            rows = conn.execute(select(Instance.business_key, AuditEvent.time).join(
                AuditEvent, AuditEvent.instance_id == Instance.id).where(AuditEvent.type == "timer_fired")).all()
            left = conn.scalar(select(func.count()).select_from(Instance).where(Instance.status == "active"))
        eng.dispose()
    lags = sorted((when - dues[int(key.split("-")[0][1:])]).total_seconds() for key, when in rows)
    if not lags:
        return [f"| {label} | nothing fired | | | | |"]
    last = max(lags)
    p99 = lags[min(len(lags) - 1, int(0.99 * (len(lags) - 1)))]
    return [f"| {label} | {len(lags):,} fired, {left:,} left | {statistics.median(lags):.2f} s / {p99:.2f} s / "
            f"{last:.2f} s | {last:.1f} s | {', '.join(f'{k / 1024:.0f}' for k in peaks)} MB | setup {setup:.0f} s |"]


def main() -> list[str]:
    lines = ["## Timers due at once (`python -m bench.timers`)", "",
             "| run | fired | lag p50 / p99 / max | all fired after | worker peak RSS | |",
             "| --- | --- | --- | --- | --- | --- |"]
    sqlite_count = int(os.environ.get("BENCH_TIMERS_SQLITE", "2000"))  # 0: skip
    if sqlite_count:
        with tempfile.TemporaryDirectory() as tmp:
            lines += run(f"sqlite:///{tmp}/timers.sqlite", sqlite_count, 1, 0,
                         f"SQLite, {sqlite_count:,} due in the same second, 1 worker (target: all within 10 s)")
    admin_url = os.environ.get("BENCH_PG_URL")
    if admin_url:
        pg_count = int(os.environ.get("BENCH_TIMERS_PG", "10000"))
        rate = float(os.environ.get("BENCH_TIMERS_RATE", "50"))
        for spread, what in ((0.0, "due in the same second"), (pg_count / rate, f"due {rate:g}/s")):
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            name = f"almenflow_timers_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                lines += run(admin_url.rsplit("/", 1)[0] + f"/{name}", pg_count, 2, spread,
                             f"PostgreSQL, {pg_count:,} {what}, 2 workers (target: lag p99 < 1 s)")
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    lines.append("")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
