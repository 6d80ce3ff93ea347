"""Inbox queries in SQL (filters, sorting, paging, counts), dashboard figures per week and forum,
and a forum's recent decisions."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine import InvalidInputError
from tests.engine.bpmn_kit import field, res, user_process


@pytest.fixture
def inbox(engine, clock):
    """Three processes: 'a' (Sekretariat, due in 5 days), 'b' (Sekretariat, no due date) and
    'c' (Styregruppe, due in 1 day); cases started a day apart so creation times differ."""
    engine.definitions.deploy([
        res(user_process("a", field("x"), attrs='camunda:dueDate="P5D"').replace('name="Task"', 'name="Alfa"'),
            "a.bpmn"),
        res(user_process("b").replace('name="Task"', 'name="beta"'), "b.bpmn"),
        res(user_process("c", attrs='camunda:dueDate="P1D"', forum="Styregruppe")
            .replace('name="Task"', 'name="Gamma"'), "c.bpmn"),
    ])
    ids = {}
    for key in ("a", "b", "c"):
        ids[key] = engine.runtime.start(key, business_key=key.upper()).tasks[0].id
        clock.advance(timedelta(days=1))
    return ids


def names(tasks):
    return [t.name for t in tasks]


def test_query_keeps_its_old_signature(engine, inbox):
    assert names(engine.tasks.query(forum="Sekretariat")) == ["Alfa", "beta"]
    assert names(engine.tasks.query(user="bo")) == ["Gamma"]
    assert names(engine.tasks.query(instance_id=engine.tasks.get(inbox["b"]).instance_id)) == ["beta"]
    assert len(engine.tasks.query()) == 3


def test_filter_by_process(engine, inbox):
    assert names(engine.tasks.query(process_key="a")) == ["Alfa"]
    assert engine.tasks.query(process_key="nope") == []
    assert engine.tasks.count(process_key="c") == 1


def test_overdue_due_before_and_dated(engine, inbox, clock):
    # now is day 3: 'c' (started day 2) is due right now, 'a' (started day 0) on day 5
    assert engine.tasks.query(overdue=True) == []
    clock.advance(timedelta(hours=1))
    assert names(engine.tasks.query(overdue=True)) == ["Gamma"]
    clock.advance(timedelta(days=2))
    assert names(engine.tasks.query(overdue=True)) == ["Gamma", "Alfa"]
    assert engine.tasks.count(overdue=True, forum="Sekretariat") == 1
    a_due = engine.tasks.get(inbox["a"]).due
    assert names(engine.tasks.query(due_before=datetime.fromisoformat(a_due))) == ["Gamma"]
    in_copenhagen = datetime.fromisoformat(a_due).astimezone(ZoneInfo("Europe/Copenhagen"))
    assert names(engine.tasks.query(due_before=in_copenhagen)) == ["Gamma"]
    with pytest.raises(InvalidInputError):
        engine.tasks.query(due_before=datetime(2027, 1, 1))
    assert names(engine.tasks.query(has_due=True)) == ["Gamma", "Alfa"]


def test_assigned_me_and_unassigned_relative_to_the_user(engine, inbox):
    engine.tasks.claim(inbox["b"], "anna")
    assert names(engine.tasks.query(user="anna", assigned="me")) == ["beta"]
    assert names(engine.tasks.query(user="anna", assigned="unassigned")) == ["Alfa"]
    assert names(engine.tasks.query(user="carl", assigned="unassigned")) == ["Alfa"]
    assert engine.tasks.query(user="carl", assigned="me") == []
    assert engine.tasks.count(user="anna", assigned="me") == 1
    assert engine.tasks.query(user="outsider", assigned="unassigned") == []
    assert engine.tasks.count(user="outsider", assigned="unassigned") == 0
    with pytest.raises(InvalidInputError):
        engine.tasks.query(assigned="me")
    with pytest.raises(InvalidInputError):
        engine.tasks.query(user="anna", assigned="someone")


def test_a_task_assigned_to_me_outside_my_forums_is_in_my_inbox(engine, inbox):
    engine.tasks.assign(inbox["c"], "anna", by="admin")
    assert names(engine.tasks.query(user="anna")) == ["Gamma", "Alfa", "beta"]
    assert names(engine.tasks.query(user="anna", assigned="me")) == ["Gamma"]


@pytest.mark.parametrize(("sort", "expected"), [
    ("due", ["Gamma", "Alfa", "beta"]),        # soonest due first, undated last
    ("created", ["Gamma", "beta", "Alfa"]),    # newest first
    ("name", ["Alfa", "beta", "Gamma"]),       # case-insensitive
    ("process", ["Alfa", "beta", "Gamma"]),    # process name: a, b, c
])
def test_sorting(engine, inbox, sort, expected):
    assert names(engine.tasks.query(sort=sort)) == expected


def test_unknown_sort_or_status_is_refused(engine, inbox):
    with pytest.raises(InvalidInputError):
        engine.tasks.query(sort="id; drop table")
    with pytest.raises(InvalidInputError):
        engine.tasks.count(status="bogus")
    with pytest.raises(InvalidInputError):
        engine.tasks.query(limit=5, offset=-1)


def test_limit_offset_and_count_page_through_the_same_order(engine, inbox):
    assert names(engine.tasks.query(limit=2, sort="name")) == ["Alfa", "beta"]
    assert names(engine.tasks.query(limit=2, offset=2, sort="name")) == ["Gamma"]
    assert engine.tasks.count() == 3
    assert engine.tasks.count(forum="Sekretariat", user="anna") == 2
    assert engine.tasks.count(status="all") == 3


def test_queries_do_not_read_workflow_state(engine, inbox):
    """The inbox reads projection rows only: the state blob column is never selected."""
    from sqlalchemy import event

    statements: list[str] = []

    def capture(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine.db.engine, "before_cursor_execute", capture)
    try:
        engine.tasks.query(user="anna", process_key="a", overdue=False, sort="process", limit=10)
        engine.tasks.count(user="anna", assigned="unassigned")
    finally:
        event.remove(engine.db.engine, "before_cursor_execute", capture)
    assert statements and not any("state_json" in s or "spec_json" in s for s in statements)


# -- reporting -------------------------------------------------------------------------------------
def test_weeks_are_iso_weeks_ending_with_the_current_one(engine, clock):
    weeks = engine.reporting.weeks(3)
    # START is Monday 2027-01-04 (ISO week 2027-W01)
    assert [w.label for w in weeks] == ["2026-W52", "2026-W53", "2027-W01"]
    assert weeks[-1].start.isoformat() == "2027-01-04"
    with pytest.raises(InvalidInputError):
        engine.reporting.weeks(0)


def test_instances_started_and_completed_per_week(engine, clock):
    engine.definitions.deploy([res(user_process("p"))])
    first = engine.runtime.start("p")
    engine.runtime.start("p")
    clock.advance(timedelta(weeks=1))
    engine.tasks.complete(first.tasks[0].id, "anna")
    engine.runtime.start("p")
    weeks = engine.reporting.instances_per_week(3)
    assert [w.to_dict()["started"] for w in weeks] == [0, 2, 1]
    assert [w.to_dict()["completed"] for w in weeks] == [0, 0, 1]
    assert weeks[-1].to_dict()["week"] == "2027-W02"
    throughput = engine.reporting.tasks_completed_per_week(3)
    assert [w.values["completed"] for w in throughput] == [0, 0, 1]


def test_week_bounds_are_copenhagen_midnight(engine, clock):
    """Sunday 23:30 UTC is already Monday in Copenhagen: it belongs to the new week."""
    engine.definitions.deploy([res(user_process("p"))])
    clock.advance(timedelta(days=6, hours=14, minutes=30))  # Sunday 2027-01-10 23:30 UTC
    engine.runtime.start("p")
    clock.advance(timedelta(hours=1))
    weeks = engine.reporting.instances_per_week(2)
    assert [(w.label, w.values["started"]) for w in weeks] == [("2027-W01", 0), ("2027-W02", 1)]


def test_open_tasks_by_forum_with_overdue_and_age(engine, inbox, clock):
    clock.advance(timedelta(days=10))
    engine.definitions.deploy([res(user_process("d", attrs='camunda:candidateGroups="Sekretariat, Styregruppe"'),
                                   "d.bpmn")])
    engine.runtime.start("d")
    stats = {s.forum: s.to_dict() for s in engine.reporting.open_tasks_by_forum()}
    sek, sty = stats["Sekretariat"], stats["Styregruppe"]
    assert (sek["open"], sek["overdue"]) == (3, 1)   # a (overdue), b, d
    assert sek["ages"] == {"0-7": 1, "8-30": 2, "31-90": 0, "91+": 0}
    assert (sty["open"], sty["overdue"]) == (2, 1)   # c (overdue), d
    assert sek["oldest"].startswith("2027-01-04")
    assert [s.forum for s in engine.reporting.open_tasks_by_forum()][:2] == ["Sekretariat", "Styregruppe"]


# -- forum decisions -------------------------------------------------------------------------------
def test_forum_decisions_are_the_latest_completed_tasks_with_their_data(engine, clock):
    engine.definitions.deploy([res(user_process("p", field("beslutning", label="Beslutning")))])
    done = []
    for n in range(3):
        inst = engine.runtime.start("p", business_key=f"S-{n}")
        clock.advance(timedelta(hours=1))
        engine.tasks.complete(inst.tasks[0].id, "anna", {"beslutning": f"ja {n}"})
        done.append(inst.id)
    engine.runtime.start("p", business_key="open")
    decisions = engine.history.forum_decisions("Sekretariat", limit=2)
    assert [d["business_key"] for d in decisions] == ["S-2", "S-1"]
    first = decisions[0]
    assert first["data"] == {"beslutning": "ja 2"} and first["completed_by"] == "anna"
    assert first["fields"][0]["label"] == "Beslutning" and first["process_key"] == "p"
    assert engine.history.forum_decisions("Styregruppe") == []
    with pytest.raises(InvalidInputError):
        engine.history.forum_decisions("Sekretariat", limit=0)
