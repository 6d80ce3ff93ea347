"""The candidate rows' mirror of their task (PostgreSQL triggers): as tests/engine/test_candidate_rows_follow_tasks.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine import Engine, FrozenClock
from tests.conftest import add_organisation
from tests.engine import test_candidate_rows_follow_tasks as on_sqlite

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_engine(pg_url):
    from sqlalchemy import text

    eng = Engine.create(pg_url, clock=FrozenClock(datetime(2027, 1, 4, 9, 0, tzinfo=UTC)))
    eng.init_db()
    with eng.db.engine.begin() as conn:  # one module database: start each test from empty tables
        conn.execute(text("TRUNCATE task_candidates, task_candidate_users, human_tasks, waits, audit_events, "
                          "comments, instances, definitions, resources, deployments, memberships, users, forums "
                          "RESTART IDENTITY CASCADE"))
    add_organisation(eng)
    yield eng
    eng.dispose()


@pytest.mark.parametrize("check", [on_sqlite.test_candidate_rows_follow_completion_and_due_changes,
                                   on_sqlite.test_candidate_rows_follow_termination_and_reopening,
                                   on_sqlite.test_a_candidate_row_added_for_a_closed_task_is_not_open])
def test_candidate_rows_follow_their_task_on_postgres(pg_engine, check):
    import inspect

    args = {"engine": pg_engine, "clock": pg_engine.clock}
    check(**{name: args[name] for name in inspect.signature(check).parameters})
