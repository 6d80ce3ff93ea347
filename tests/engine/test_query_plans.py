"""Query plans at scale on SQLite: the inbox, the case list and their counts reach the big tables
through indexes only (EXPLAIN QUERY PLAN of every statement the services send), on a realistic
database made by bench/dataset.py (thousands of cases, tens of thousands of tasks and audit events)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from bench import dataset
from engine import Engine, FrozenClock

BIG_TABLES = ("instances", "human_tasks", "audit_events", "task_candidates", "task_candidate_users", "waits")
INSTANCES = 4000
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.sqlite_only(reason="SQLite's query plans (EXPLAIN QUERY PLAN); "
                                            "tests/postgres/test_query_plans_pg.py checks PostgreSQL's")


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Iterator[tuple[Engine, dataset.Dataset]]:
    url = "sqlite:///" + str(tmp_path_factory.mktemp("plans") / "big.db")
    eng = Engine.create(url, clock=FrozenClock(NOW))
    eng.init_db()
    info = dataset.fill(eng, INSTANCES)
    yield eng, info
    eng.dispose()


def statements(eng: Engine, call: Callable[[], Any]) -> list[tuple[str, Any]]:
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
    return seen


def full_scans(eng: Engine, call: Callable[[], Any]) -> list[str]:
    """Plan lines that read a big table without an index ('SCAN t' alone), with their statements."""
    path = eng.db.engine.url.database
    bad = []
    with sqlite3.connect(path) as conn:
        for sql, params in statements(eng, call):
            for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params):
                detail = row[3]
                match = re.match(r"SCAN (\w+)(?: AS \w+)?(.*)$", detail)
                if match and match.group(1) in BIG_TABLES and "INDEX" not in match.group(2) \
                        and not _pk_walk(sql, match.group(1)):
                    bad.append(f"{detail}  <-  {sql[:300]}")
    return bad


def _pk_walk(sql: str, table: str) -> bool:
    """A walk in primary-key order that stops after LIMIT rows: a seek on the rowid, not a scan."""
    return bool(re.search(rf"ORDER BY {table}\.id( DESC)?\s+LIMIT", sql))


def test_the_dataset_is_realistic(big):
    _, info = big
    assert info.instances >= INSTANCES and info.audit_events >= 9 * INSTANCES
    assert info.open_tasks > 1000 and 0 < info.inbox_open < info.open_tasks


@pytest.mark.parametrize("sort", ["due", "created", "name"])
def test_inbox_pages_and_count_use_indexes(big, sort):
    eng, info = big
    first = eng.tasks.page(user=info.inbox_user, sort=sort, limit=25)
    assert first.total == info.inbox_open and len(first.items) == 25 and first.next
    assert full_scans(eng, lambda: eng.tasks.page(user=info.inbox_user, sort=sort, limit=25)) == []
    assert full_scans(eng, lambda: eng.tasks.page(user=info.inbox_user, sort=sort, limit=25,
                                                  after=first.next)) == []


@pytest.mark.parametrize("filters", [{"overdue": True}, {"assigned": "unassigned"}, {"process_key": "henvendelse"},
                                     {"forum": "TMF"}])
def test_filtered_inbox_uses_indexes(big, filters):
    eng, info = big
    assert full_scans(eng, lambda: eng.tasks.page(user=info.inbox_user, limit=25, **filters)) == []


def test_a_forums_task_list_uses_indexes(big):
    eng, _ = big
    assert full_scans(eng, lambda: eng.tasks.page(forum="Samarbejdsforum", limit=25)) == []


@pytest.mark.parametrize("filters", [{}, {"status": "active"}, {"status": "active", "key": "henvendelse"},
                                     {"key": "faellesindstilling"}, {"forum": "TMF"}, {"started_by": "anna"},
                                     {"business_key": "HEN-2026-*"}])
def test_case_list_pages_and_counts_use_indexes(big, filters):
    eng, _ = big
    first = eng.runtime.page(limit=50, **filters)
    assert full_scans(eng, lambda: eng.runtime.page(limit=50, **filters)) == []
    if first.next:
        assert full_scans(eng, lambda: eng.runtime.page(limit=50, after=first.next, **filters)) == []


def test_instance_page_uses_indexes(big):
    eng, _ = big
    some = eng.runtime.page(status="active", limit=1).items[0]["id"]
    assert full_scans(eng, lambda: eng.runtime.get(some)) == []


def test_the_check_sees_a_full_scan(big):
    """The checker itself: a query no index serves is reported."""
    from sqlalchemy import text

    eng, _ = big

    def unindexed() -> None:
        with eng.db.engine.connect() as conn:
            conn.execute(text("SELECT id FROM human_tasks WHERE documentation LIKE '%bilag%'")).all()

    assert len(full_scans(eng, unindexed)) == 1


def test_dashboard_figures_use_indexes(big):
    eng, info = big
    forums = eng.reporting.open_tasks_by_forum()
    assert sum(f.open for f in forums) >= info.open_tasks  # a task with two forums counts in both
    assert full_scans(eng, lambda: (eng.definitions.instance_counts(), eng.reporting.open_tasks_by_forum(),
                                    eng.reporting.instances_per_week(12), eng.reporting.tasks_completed_per_week(12),
                                    eng.scheduler.upcoming(24), eng.definitions.list(latest_only=True))) == []
