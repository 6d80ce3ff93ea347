"""Rows 1 and 2: the 5-step process per instance, AlmenFlow (SQLite, PostgreSQL) beside raw SpiffWorkflow,
and the SQL each step sends.

Raw SpiffWorkflow 3.2 is the floor a persistent engine on the same library can reach: the spec is parsed
once, each instance runs in a BpmnWorkflow, and at every wait state the workflow is serialised to JSON
and restored (what any engine must do when a person takes days to answer). AlmenFlow does the same
through its public services: runtime.start, tasks.complete (A), tasks.query, tasks.complete (B).
CPU is time.process_time() of this process; the evaluator process that runs the script for AlmenFlow
(raw SpiffWorkflow runs it in-process) and, on PostgreSQL, the database server are counted beside it."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.util.task import TaskState

from engine import Engine

from . import processes
from .common import (
    Group,
    LoadCounter,
    Sizes,
    Skip,
    SqlCounter,
    cpu_seconds,
    deploy,
    evaluator_pids,
    median,
    new_engine,
    of_limit,
    plural,
    postgres_backend_cpu,
    postgres_database,
)

KEY = "five"
USER = "bench"
FORUM = "Sekretariat"


class RawSpiff:
    """The baseline: SpiffWorkflow alone, serialising and restoring at each wait state."""

    def __init__(self, xml: str, key: str) -> None:
        parser = CamundaParser()
        parser.add_bpmn_xml(etree.fromstring(xml.encode()), f"{key}.bpmn")
        self.spec = parser.get_spec(key)
        self.subprocess_specs = parser.get_subprocess_specs(key)
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(CAMUNDA_CONFIG))

    def start(self, **data: Any) -> str:
        wf = BpmnWorkflow(self.spec, self.subprocess_specs)
        if data:
            wf.get_tasks(state=TaskState.READY)[0].set_data(**data)
        wf.do_engine_steps()
        return self.serializer.serialize_json(wf)

    def complete(self, state: str, data: dict[str, Any], which: int = 0) -> tuple[str, BpmnWorkflow]:
        """Restore, complete the `which`-th ready user task with `data`, run on, serialise."""
        wf = self.serializer.deserialize_json(state)
        task = wf.get_tasks(state=TaskState.READY, manual=True)[which]
        task.set_data(**data)
        task.run()
        wf.do_engine_steps()
        return self.serializer.serialize_json(wf), wf

    def instance(self) -> None:
        state = self.start()
        state, _ = self.complete(state, {"n": 1})
        state, wf = self.complete(state, {})
        assert wf.is_completed()


def ours(eng: Engine) -> None:
    inst = eng.runtime.start(KEY, user=USER)
    eng.tasks.complete(inst.tasks[0].id, USER, {"n": 1})
    following = eng.tasks.query(instance_id=inst.id)
    eng.tasks.complete(following[0].id, USER)


def setup(eng: Engine) -> Engine:
    eng.identity.add_forum(FORUM)
    eng.identity.add_user(USER, forums=[FORUM])
    deploy(eng, f"{KEY}.bpmn", processes.five_step(KEY, FORUM))
    return eng


class Side:
    """One contender: runs a batch and says what CPU it took (this process, its evaluators, the database)."""

    def __init__(self, name: str, run_one: Callable[[], None], eng: Engine | None = None,
                 pg_url: str | None = None) -> None:
        self.name, self.run_one, self.eng, self.pg_url = name, run_one, eng, pg_url
        self.own: list[float] = []
        self.evaluator: list[float] = []
        self.database: list[float] = []
        self.wall: list[float] = []

    def batch(self, n: int) -> None:
        pids = evaluator_pids(self.eng) if self.eng is not None else []
        ev0 = {p: cpu_seconds(p) for p in pids}
        db0 = postgres_backend_cpu(self.pg_url) if self.pg_url else 0.0
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            self.run_one()
        c1, w1 = time.process_time(), time.perf_counter()
        db1 = postgres_backend_cpu(self.pg_url) if self.pg_url else 0.0
        # an evaluator started during the batch counts from zero
        ev1 = sum(cpu_seconds(p) - ev0.get(p, 0.0) for p in evaluator_pids(self.eng)) if self.eng else 0.0
        self.own.append((c1 - c0) / n)
        self.wall.append((w1 - w0) / n)
        self.evaluator.append(ev1 / n)
        self.database.append(max(0.0, db1 - db0) / n)


def run(group: Group, sizes: Sizes, sql_group: Group) -> None:
    raw = RawSpiff(processes.five_step(KEY, FORUM), KEY)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        sides = [Side("raw SpiffWorkflow 3.2", raw.instance)]
        sqlite = setup(new_engine(f"sqlite:///{tmp}/five.sqlite"))
        stack.callback(sqlite.dispose)
        sides.append(Side("AlmenFlow on SQLite", lambda: ours(sqlite), sqlite))
        pg_url, pg_reason = None, ""
        try:
            pg_url = stack.enter_context(postgres_database("five"))
            postgres = setup(new_engine(pg_url))
            stack.callback(postgres.dispose)
            sides.append(Side("AlmenFlow on PostgreSQL", lambda: ours(postgres), postgres, pg_url))
        except Skip as exc:
            pg_reason = str(exc)

        for side in sides:  # warm caches, start the evaluator processes, connect
            for _ in range(3):
                side.run_one()
        for r in range(sizes.five_rounds):
            for side in sides[r % len(sides):] + sides[:r % len(sides)]:
                side.batch(sizes.five_per_round)

        base = median(sides[0].own)
        n = sizes.five_rounds * sizes.five_per_round
        group.add(f"raw SpiffWorkflow 3.2, CPU per instance ({n} instances in {sizes.five_rounds} interleaved rounds)",
                  f"{base * 1000:.2f} ms (wall {median(sides[0].wall) * 1000:.2f} ms)")
        for side, target in zip(sides[1:], (0.5, 0.35), strict=False):
            own, ev, db = median(side.own), median(side.evaluator), median(side.database)
            extra = f"; evaluator process {ev * 1000:.2f} ms"
            if side.pg_url:
                extra += f"; PostgreSQL server {db * 1000:.2f} ms"
            group.add(f"{side.name}, CPU per instance (this process)",
                      f"{own * 1000:.2f} ms (wall {median(side.wall) * 1000:.2f} ms{extra})",
                      f"{base / own:.2f}× raw", f"≥ {target}× raw", base / own >= target)
            everything = own + ev + db
            group.add(f"{side.name}, CPU per instance with its other processes",
                      f"{everything * 1000:.2f} ms", f"{base / everything:.2f}× raw")
        if pg_reason:
            group.skip("AlmenFlow on PostgreSQL, CPU per instance", pg_reason, "≥ 0.35× raw")

        print(f"\n## {sql_group.title}", flush=True)
        count_sql(sql_group, sqlite, "SQLite")
        if pg_url:
            count_sql(sql_group, postgres, "PostgreSQL")
        else:
            sql_group.skip("PostgreSQL: statements per step", pg_reason, "≤ 6 per step")


def count_sql(group: Group, eng: Engine, label: str) -> None:
    """Statements and transactions of each step of one instance (after warm-up), and whether reads load
    workflow state."""
    ours(eng)  # warm
    with SqlCounter(eng) as sql, LoadCounter(eng) as loads:
        sql.take()
        loads.take()
        steps: list[tuple[str, Callable[[], Any]]] = []
        state: dict[str, Any] = {}
        steps.append(("start", lambda: state.update(inst=eng.runtime.start(KEY, user=USER))))
        steps.append(("complete A", lambda: eng.tasks.complete(state["inst"].tasks[0].id, USER, {"n": 1})))
        steps.append(("read: tasks.query (the case's open tasks)",
                      lambda: state.update(open=eng.tasks.query(instance_id=state["inst"].id))))
        steps.append(("read: runtime.get (the case page / API)", lambda: eng.runtime.get(state["inst"].id)))
        steps.append(("complete B", lambda: eng.tasks.complete(state["open"][0].id, USER)))
        total_statements = total_tx = 0
        for name, step in steps:
            step()
            statements, tx, commits = sql.take()
            decoded = loads.take()
            total_statements += statements
            total_tx += tx
            loaded = f"; workflow state loaded {decoded}×" if loads.available else ""
            value = f"{plural(statements, 'statement')} in {plural(tx, 'transaction')}, {plural(commits, 'commit')}{loaded}"
            if name.startswith("read"):
                met = (decoded == 0) if loads.available else None
                group.add(f"{label}: {name}", value, target="no workflow state loaded", met=met)
            else:
                group.add(f"{label}: {name}", value, of_limit(statements, 6), "≤ 6 statements", statements <= 6)
        group.add(f"{label}: one whole instance (start, 2 completes, 2 reads)",
                  f"{total_statements} statements in {total_tx} transactions")
