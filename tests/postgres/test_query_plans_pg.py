"""Query plans at scale on PostgreSQL: EXPLAIN (FORMAT JSON) of every statement the inbox, the case list
and their counts send, on a database filled by bench/dataset.py and ANALYZEd, has no sequential scan of
a big table (the planner prefers a Seq Scan on small tables, so the test inserts enough rows)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text

from bench import dataset
from engine import Engine, FrozenClock

pytestmark = pytest.mark.postgres

BIG_TABLES = {"instances", "human_tasks", "audit_events", "task_candidates", "task_candidate_users", "waits"}
INSTANCES = 20_000
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def big(pg_url: str) -> Iterator[tuple[Engine, dataset.Dataset]]:
    eng = Engine.create(pg_url, clock=FrozenClock(NOW))
    eng.init_db()
    info = dataset.fill(eng, INSTANCES)
    yield eng, info
    eng.dispose()


def seq_scans(eng: Engine, call: Callable[[], Any]) -> list[str]:
    seen: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, params, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(eng.db.engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        event.remove(eng.db.engine, "before_cursor_execute", capture)
    assert seen
    bad: list[str] = []
    raw = eng.db.engine.raw_connection()
    try:
        cur = raw.cursor()
        for sql, params in seen:
            cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            plan = cur.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            bad.extend(f"Seq Scan on {rel}  <-  {sql[:300]}" for rel in _seq_scans(plan[0]["Plan"]))
        raw.rollback()
    finally:
        raw.close()
    return bad


def _seq_scans(node: dict[str, Any]) -> list[str]:
    found = [node["Relation Name"]] if node.get("Node Type") == "Seq Scan" \
        and node.get("Relation Name") in BIG_TABLES else []
    for child in node.get("Plans", []):
        found.extend(_seq_scans(child))
    return found


@pytest.mark.parametrize("sort", ["due", "created", "name"])
def test_inbox_pages_and_count_use_indexes(big, sort):
    eng, info = big
    first = eng.tasks.page(user=info.inbox_user, sort=sort, limit=25)
    assert first.total == info.inbox_open and len(first.items) == 25 and first.next
    assert seq_scans(eng, lambda: eng.tasks.page(user=info.inbox_user, sort=sort, limit=25)) == []
    assert seq_scans(eng, lambda: eng.tasks.page(user=info.inbox_user, sort=sort, limit=25,
                                                 after=first.next)) == []


@pytest.mark.parametrize("filters", [{"overdue": True}, {"assigned": "unassigned"}, {"process_key": "henvendelse"},
                                     {"forum": "TMF"}])
def test_filtered_inbox_uses_indexes(big, filters):
    eng, info = big
    assert seq_scans(eng, lambda: eng.tasks.page(user=info.inbox_user, limit=25, **filters)) == []


@pytest.mark.parametrize("filters", [{}, {"status": "active"}, {"status": "active", "key": "henvendelse"},
                                     {"key": "faellesindstilling"}, {"forum": "TMF"}, {"started_by": "anna"}])
def test_case_list_pages_and_counts_use_indexes(big, filters):
    eng, _ = big
    first = eng.runtime.page(limit=50, **filters)
    assert seq_scans(eng, lambda: eng.runtime.page(limit=50, **filters)) == []
    if first.next:
        assert seq_scans(eng, lambda: eng.runtime.page(limit=50, after=first.next, **filters)) == []


def test_instance_page_uses_indexes(big):
    eng, _ = big
    some = eng.runtime.page(status="active", limit=1).items[0]["id"]
    assert seq_scans(eng, lambda: eng.runtime.get(some)) == []


def test_the_check_sees_a_seq_scan(big):
    eng, _ = big

    def unindexed() -> None:
        with eng.db.engine.connect() as conn:
            conn.execute(text("SELECT id FROM human_tasks WHERE documentation LIKE '%bilag%'")).all()

    assert len(seq_scans(eng, unindexed)) == 1


def test_dashboard_figures_on_postgres(big):
    """The dashboard's figures run on PostgreSQL and add up (each per-forum row from the candidate index)."""
    eng, info = big
    forums = eng.reporting.open_tasks_by_forum()
    assert sum(f.open for f in forums) >= info.open_tasks
    assert sum(sum(c.values()) for c in eng.definitions.instance_counts().values()) == info.instances
    assert sum(w.values["started"] for w in eng.reporting.instances_per_week(12)) > 0
    assert sum(w.values["completed"] for w in eng.reporting.tasks_completed_per_week(12)) > 0
    assert len(eng.scheduler.upcoming(24 * 60)) == 50
    assert seq_scans(eng, lambda: (eng.reporting.open_tasks_by_forum(), eng.reporting.instances_per_week(12),
                                   eng.reporting.tasks_completed_per_week(12), eng.scheduler.upcoming(24))) == []
