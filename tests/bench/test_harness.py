"""The benchmark harness's own machinery, on a real SQLite engine: copying cases, counting SQL, measuring
stored state and writing the results. No timings are asserted (benchmarks judge speed, tests judge behaviour)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text

from bench import processes
from bench.clone import CaseCloner
from bench.common import Group, SqlCounter, deploy, state_bytes
from bench.run import render
from bench.timer_burst import DUE, T0


def _five(eng) -> None:
    eng.identity.add_forum("Sekretariat")
    eng.identity.add_user("anna", forums=["Sekretariat"])
    deploy(eng, "five.bpmn", processes.five_step("five", "Sekretariat", due="P14D"))


def _scalar(eng, sql: str):
    with eng.db.engine.connect() as conn:
        return conn.scalar(text(sql))


def test_copies_carry_every_row_of_their_case_and_keep_keys_consistent(make_engine):
    eng = make_engine()
    _five(eng)
    waiting = eng.runtime.start("five", user="anna")
    done = eng.runtime.start("five", user="anna")
    eng.tasks.complete(done.tasks[0].id, "anna", {"n": 1})
    eng.tasks.complete(eng.tasks.query(instance_id=done.id)[0].id, "anna")
    counts = {t: _scalar(eng, f"SELECT count(*) FROM {t}") for t in ("instances", "human_tasks", "task_candidates",
                                                                     "audit_events")}

    cloner = CaseCloner(eng, shift=timedelta(days=1))
    assert cloner.add(3) == 6

    for table, before in counts.items():
        assert _scalar(eng, f"SELECT count(*) FROM {table}") == 4 * before, table
    # every copied row points at a copied parent, never at its template's
    assert _scalar(eng, "SELECT count(*) FROM human_tasks h LEFT JOIN instances i ON i.id = h.instance_id "
                        "WHERE i.id IS NULL") == 0
    assert _scalar(eng, "SELECT count(DISTINCT instance_id) FROM human_tasks") == 8
    assert _scalar(eng, "SELECT count(*) FROM task_candidates c JOIN human_tasks h ON h.id = c.task_id") == \
        4 * counts["task_candidates"]
    assert _scalar(eng, "SELECT count(DISTINCT spiff_task_id) FROM human_tasks") == 4 * counts["human_tasks"]
    rows, total = eng.runtime.list(key="five", status="active", limit=100)
    assert total == 4
    stride = cloner.stride["instances"]
    assert sorted(r["id"] for r in rows) == [waiting.id + k * stride for k in range(4)]
    # copies spread back in time, one day per copy
    started = {r["id"]: datetime.fromisoformat(r["started_at"]) for r in rows}
    assert [started[waiting.id] - started[waiting.id + k * stride] for k in range(4)] == \
        [timedelta(days=k) for k in range(4)]
    # the engine's own inserts after copying do not collide with the copies
    assert eng.runtime.start("five", user="anna").id > max(started)


def test_copied_timer_cases_fire_like_their_templates(make_engine, clock):
    clock.set(T0)
    eng = make_engine()
    deploy(eng, "wait.bpmn", processes.timer_wait("wait", "PT1H"))
    for _ in range(3):
        eng.runtime.start("wait", user="anna")
    CaseCloner(eng).add(4)
    assert eng.runtime.list(key="wait", status="active", limit=1)[1] == 15

    clock.set(DUE)
    while eng.scheduler.run_due()["fired"]:
        pass

    assert eng.runtime.list(key="wait", status="completed", limit=1)[1] == 15


def test_sql_counter_counts_statements_and_transactions_of_one_call(make_engine):
    eng = make_engine()
    _five(eng)
    inst = eng.runtime.start("five", user="anna")
    with SqlCounter(eng) as sql:
        eng.tasks.query(instance_id=inst.id)
        statements, transactions, commits = sql.take()
        # the inbox reads the matching ids in order, then those rows (engine/queries/tasks.py)
        assert (statements, transactions, commits) == (2, 1, 1)
        eng.tasks.complete(inst.tasks[0].id, "anna", {"n": 1})
        statements, transactions, commits = sql.take()
    assert statements > 1 and transactions >= 1 and commits >= 1
    assert not any(s.upper().startswith(("BEGIN", "COMMIT")) for s in sql.texts)


def test_state_bytes_counts_the_case_state_and_not_its_history(make_engine):
    eng = make_engine()
    _five(eng)
    inst = eng.runtime.start("five", user="anna")
    before = state_bytes(eng, inst.id)
    stored = _scalar(eng, f"SELECT length(state_json) FROM instances WHERE id = {inst.id}")
    assert before >= stored > 0
    eng.history.add_comment(inst.id, "anna", "x" * 5000)  # history: not state
    assert state_bytes(eng, inst.id) == before


def test_results_page_has_command_machine_and_a_verdict_per_target():
    group = Group("five", "1. Five steps", "About.")
    group.add("AlmenFlow on SQLite, CPU per instance", "20.00 ms", "0.10× raw", "≥ 0.5× raw", False)
    group.add("raw SpiffWorkflow", "2.00 ms")
    page = render([group], "python -m bench.run", datetime(2027, 1, 4), 61.0, "a machine")

    assert "- Command: `python -m bench.run`" in page
    assert "- Machine: a machine" in page
    assert "| 1 | AlmenFlow on SQLite, CPU per instance | 20.00 ms | 0.10× raw | ≥ 0.5× raw | **no** |" in page
    assert "| raw SpiffWorkflow | 2.00 ms |  |  |  |" in page
