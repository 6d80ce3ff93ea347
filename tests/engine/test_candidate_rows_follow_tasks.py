"""task_candidates / task_candidate_users mirror their task (is_open, created_at, due_at) whoever writes
the task: the engine's own steps and plain SQL alike (database triggers, migration 0008_query_indexes).
The inbox count and the dashboard's figures per forum rely on it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select, text, update

from engine.models import HumanTask, TaskCandidate, TaskCandidateUser
from tests.engine.bpmn_kit import res, user_process

TWO_FORUMS = 'camunda:candidateGroups="Sekretariat, Styregruppe" camunda:candidateUsers="bo" camunda:dueDate="P3D"'


def mirrored(engine, task_id: int) -> list[tuple]:
    with engine.db.engine.connect() as conn:
        task = conn.execute(select(HumanTask.status, HumanTask.created_at, HumanTask.due_at)
                            .where(HumanTask.id == task_id)).one()
        forums = conn.execute(select(TaskCandidate.forum, TaskCandidate.is_open, TaskCandidate.created_at,
                                     TaskCandidate.due_at).where(TaskCandidate.task_id == task_id)
                              .order_by(TaskCandidate.forum)).all()
        users = conn.execute(select(TaskCandidateUser.is_open).where(TaskCandidateUser.task_id == task_id)).all()
    assert forums and users
    for _forum, is_open, created, due in forums:
        assert (bool(is_open), created, due) == (task.status == "open", task.created_at, task.due_at)
    assert all(bool(u.is_open) == (task.status == "open") for u in users)
    return [(f, bool(o)) for f, o, _, _ in forums]


def test_candidate_rows_follow_completion_and_due_changes(engine, clock):
    engine.definitions.deploy([res(user_process("p", attrs=TWO_FORUMS))])
    task = engine.runtime.start("p").tasks[0]
    assert mirrored(engine, task.id) == [("Sekretariat", True), ("Styregruppe", True)]
    assert engine.tasks.count(user="bo") == 1 and engine.tasks.count(forum="Styregruppe") == 1
    with engine.db.engine.begin() as conn:  # plain SQL, as an operator or a later migration might
        conn.execute(update(HumanTask).where(HumanTask.id == task.id)
                     .values(due_at=clock.now() + timedelta(days=9)))
    mirrored(engine, task.id)
    engine.tasks.complete(task.id, "anna")
    assert mirrored(engine, task.id) == [("Sekretariat", False), ("Styregruppe", False)]
    assert engine.tasks.count(user="bo") == 0 and engine.tasks.count(forum="Styregruppe") == 0
    assert engine.tasks.count(forum="Styregruppe", status="completed") == 1


def test_candidate_rows_follow_termination_and_reopening(engine):
    engine.definitions.deploy([res(user_process("p", attrs=TWO_FORUMS))])
    case = engine.runtime.start("p")
    task = case.tasks[0]
    engine.runtime.terminate(case.id, "admin", reason="test")
    assert mirrored(engine, task.id) == [("Sekretariat", False), ("Styregruppe", False)]
    with engine.db.engine.begin() as conn:
        conn.execute(text("UPDATE human_tasks SET status = 'open' WHERE id = :id"), {"id": task.id})
    assert mirrored(engine, task.id) == [("Sekretariat", True), ("Styregruppe", True)]


def test_a_candidate_row_added_for_a_closed_task_is_not_open(engine):
    engine.definitions.deploy([res(user_process("p", attrs=TWO_FORUMS))])
    task = engine.runtime.start("p").tasks[0]
    engine.tasks.complete(task.id, "anna")
    with engine.db.engine.begin() as conn:
        conn.execute(insert(TaskCandidate).values(task_id=task.id, forum="Boligorganisation", is_open=True))
    assert ("Boligorganisation", False) in mirrored(engine, task.id)
    assert engine.tasks.count(forum="Boligorganisation") == 0
