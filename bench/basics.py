"""Engine basics on embedded SQLite (what `make bench` measured before the side-by-side rows): deploying,
starting and completing with form validation, the inbox query, the stored state and firing boundary timers."""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine import FrozenClock

from . import processes
from .common import ROOT, Group, Sizes, ms, new_engine, pct, state_bytes

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def run(group: Group, sizes: Sizes) -> None:
    n = sizes.basics_instances
    with tempfile.TemporaryDirectory() as tmp:
        clock = FrozenClock(START)
        eng = new_engine(f"sqlite:///{tmp}/basics.sqlite", clock)
        eng.identity.add_forum("Samarbejdsforum", 2, "sector")
        eng.identity.add_user("bench", role="member", forums=["Samarbejdsforum"])
        bpmn = Path(tmp) / "bench.bpmn"
        bpmn.write_text(processes.FORM_PROCESS)

        t0 = time.perf_counter()
        eng.definitions.deploy([bpmn], user="bench")
        group.add("deploy one 8-node process (parse, validate, store)", ms(time.perf_counter() - t0))
        library = ROOT / "processes"
        if any(library.glob("*.bpmn")):
            t0 = time.perf_counter()
            try:
                eng.definitions.deploy([library], user="bench")
                group.add("deploy the KK process library (processes/)", ms(time.perf_counter() - t0))
            except Exception as exc:  # the benchmark reports, it does not judge the library
                group.add("deploy the KK process library (processes/)", f"refused: {exc}"[:120])

        starts, ids = [], []
        for i in range(n):
            t0 = time.perf_counter()
            ids.append(eng.runtime.start("bench", business_key=f"B-{i}", user="bench").id)
            starts.append(time.perf_counter() - t0)
        group.add(f"start instance ({n}×) p50 / p95", f"{ms(pct(starts, 50))} / {ms(pct(starts, 95))}")
        group.add("starts per second (one thread)", f"{n / sum(starts):.0f}")

        tasks = {t.instance_id: t.id for t in eng.tasks.query(forum="Samarbejdsforum")}
        completes = []
        for iid in ids:
            t0 = time.perf_counter()
            eng.tasks.complete(tasks[iid], "bench", {"titel": "x", "antal": 2})
            completes.append(time.perf_counter() - t0)
        group.add(f"complete task with form validation ({n}×) p50 / p95",
                  f"{ms(pct(completes, 50))} / {ms(pct(completes, 95))}")

        q = []
        for _ in range(30):
            t0 = time.perf_counter()
            eng.tasks.query(user="bench")
            q.append(time.perf_counter() - t0)
        group.add(f"inbox query for a user, all rows ({n} open tasks)", f"p50 {ms(statistics.median(q))}")
        group.add("stored state of a case waiting in its second user task", f"{state_bytes(eng, ids[0]) / 1024:.1f} KB")

        clock.advance(timedelta(weeks=7))
        t0 = time.perf_counter()
        fired = 0
        while True:  # as the worker does: run_due until nothing is due
            done = eng.scheduler.run_due()["fired"]
            fired += done
            if not done:
                break
        took = time.perf_counter() - t0
        group.add(f"run_due until done: fire {fired} boundary timers", f"{ms(took)} ({fired / took:.0f}/s)")
        eng.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    group.add("peak RSS of the benchmark process so far", f"{peak:.0f} MB")
