"""camunda:historyTimeToLive: stored per definition version at deploy, honoured by the history cleanup
(ended instances older than their TTL go with all their rows; a dry run lists them), and a case's
history can be exported before it goes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, or_, select

from engine import DeploymentError, InvalidInputError, NotFoundError
from engine.models import AuditEvent, Comment, Definition, HumanTask, Instance, TaskCandidate, Wait
from engine.worker import _cleanup, start_background
from tests.engine.bpmn_kit import (
    chain,
    definitions,
    end,
    field,
    message,
    process,
    res,
    start,
    user_process,
    user_task,
)

ROOT = Path(__file__).resolve().parents[2]
DAY = timedelta(days=1)


def with_ttl(xml: str, ttl: str | None) -> str:
    if ttl is None:
        return xml
    return xml.replace('isExecutable="true"', f'isExecutable="true" camunda:historyTimeToLive="{ttl}"')


def deploy(engine, ttl: str | None = "P30D", key: str = "p", name: str = "test.bpmn"):
    return engine.definitions.deploy([res(with_ttl(user_process(key, field("note")), ttl), name)])


def finished(engine, key: str = "p", business_key: str | None = None, comment: str | None = None) -> int:
    """An instance of `key` that went through its user task (with a comment) and completed."""
    inst = engine.runtime.start(key, business_key, user="anna")
    if comment:
        engine.history.add_comment(inst.id, "anna", comment, task_id=inst.tasks[0].id)
    engine.tasks.complete(inst.tasks[0].id, "anna", {"note": "done"})
    assert engine.runtime.get(inst.id).status == "completed"
    return inst.id


def rows_of(engine, instance_id: int) -> dict[str, int]:
    with engine.db.transaction() as s:
        task_ids = select(HumanTask.id).where(HumanTask.instance_id == instance_id)
        return {
            "instances": s.scalar(select(func.count()).where(Instance.id == instance_id)),
            "human_tasks": s.scalar(select(func.count()).where(HumanTask.instance_id == instance_id)),
            "task_candidates": s.scalar(select(func.count()).where(TaskCandidate.task_id.in_(task_ids))),
            "waits": s.scalar(select(func.count()).where(Wait.instance_id == instance_id)),
            "audit_events": s.scalar(select(func.count()).where(AuditEvent.instance_id == instance_id)),
            "comments": s.scalar(select(func.count()).where(Comment.instance_id == instance_id)),
        }


def cleanup_events(engine) -> list[AuditEvent]:
    with engine.db.transaction() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.type == "history_cleanup").order_by(AuditEvent.id)))


# --- deploy -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("ttl", "days"), [("P30D", 30), ("30", 30), ("P0D", 0), (" P3650D ", 3650), (None, None),
                                           ("", None)])
def test_history_ttl_is_stored_on_the_definition_version(engine, ttl, days):
    deploy(engine, ttl)
    assert engine.definitions.get("p").history_ttl_days == days


@pytest.mark.parametrize("ttl", ["P1Y", "PT24H", "-5", "P-3D", "abc", "${days}", "P30", "1.5", "P9999999D"])
def test_invalid_history_ttl_is_refused_naming_the_process(engine, ttl):
    with pytest.raises(DeploymentError) as exc:
        deploy(engine, ttl, key="sag", name="sag.bpmn")
    (problem,) = exc.value.problems
    assert (problem.file, problem.element_id) == ("sag.bpmn", "sag")
    assert "historyTimeToLive" in problem.message and "'sag'" in problem.message
    assert engine.definitions.list() == []


def test_the_kk_processes_keep_their_history_ten_years(engine):
    engine.definitions.deploy([ROOT / "processes"])
    ttl = {d.key: d.history_ttl_days for d in engine.definitions.list()}
    assert set(ttl) >= {"faellesindstilling", "henvendelse", "partnerskabsaftale", "styringsdialog"}
    assert set(ttl.values()) == {3650}


def test_a_changed_ttl_is_a_new_version_and_each_version_keeps_its_own(engine):
    deploy(engine, "P30D")
    old = finished(engine)
    deploy(engine, None)
    new = finished(engine)
    assert [d.history_ttl_days for d in engine.definitions.list()] == [30, None]
    engine.clock.advance(400 * DAY)
    report = engine.cleanup.run()
    assert [i["instance_id"] for i in report["instances"]] == [old]
    assert rows_of(engine, new)["instances"] == 1


# --- cleanup ----------------------------------------------------------------------------------

def test_dry_run_lists_what_would_go_and_changes_nothing(engine):
    deploy(engine, "P30D")
    iid = finished(engine, business_key="S-1", comment="ok")
    engine.clock.advance(30 * DAY - timedelta(seconds=1))
    assert engine.cleanup.run(dry_run=True)["instances"] == []  # not yet: ended 30 days minus a second ago
    engine.clock.advance(timedelta(seconds=1))
    before = rows_of(engine, iid)
    report = engine.cleanup.run(dry_run=True)
    assert report["dry_run"] is True and report["count"] == 1 and report["more"] is False
    (item,) = report["instances"]
    assert item == {"instance_id": iid, "process_key": "p", "process_version": 1, "business_key": "S-1",
                    "status": "completed", "ended_at": "2027-01-04T09:00:00+00:00", "ttl_days": 30}
    assert rows_of(engine, iid) == before
    assert cleanup_events(engine) == []


def test_cleanup_removes_an_expired_instance_with_all_its_rows(engine):
    deploy(engine, "P30D")
    iid = finished(engine, business_key="S-1", comment="ok")
    before = rows_of(engine, iid)
    assert before["human_tasks"] and before["task_candidates"] and before["audit_events"] and before["comments"]
    engine.clock.advance(31 * DAY)
    report = engine.cleanup.run(user="admin")
    assert report["dry_run"] is False and report["count"] == 1 and report["batches"] == 1
    assert report["instances"][0]["instance_id"] == iid
    assert set(rows_of(engine, iid).values()) == {0}
    with pytest.raises(NotFoundError):
        engine.runtime.get(iid)
    (event,) = cleanup_events(engine)
    assert event.instance_id is None and event.user == "admin"
    assert event.details["count"] == 1 and event.details["instances"][0]["instance_id"] == iid
    assert event.details["rows"]["comments"] == 1 and event.details["rows"]["audit_events"] == before["audit_events"]
    assert engine.cleanup.run()["count"] == 0  # nothing left: a second run is a no-op


def test_only_ended_expired_instances_of_versions_with_a_ttl_go(engine):
    deploy(engine, "P30D")
    deploy(engine, None, key="forever", name="forever.bpmn")
    completed = finished(engine)
    terminated = engine.runtime.start("p").id
    engine.runtime.terminate(terminated, "admin", reason="duplicate")
    active = engine.runtime.start("p").id
    suspended = engine.runtime.start("p").id
    engine.runtime.suspend(suspended, "admin")
    kept_forever = finished(engine, "forever")
    engine.clock.advance(20 * DAY)
    young = finished(engine)
    engine.clock.advance(15 * DAY)
    report = engine.cleanup.run()
    assert sorted(i["instance_id"] for i in report["instances"]) == sorted([completed, terminated])
    assert {i["status"] for i in report["instances"]} == {"completed", "terminated"}
    for iid in (active, suspended, kept_forever, young):
        assert rows_of(engine, iid)["instances"] == 1
    assert engine.runtime.get(active).tasks, "a running case keeps its open task"


def test_cleanup_works_in_bounded_batches_one_audit_event_each(engine):
    deploy(engine, "P1D")
    ids = [finished(engine) for _ in range(5)]
    engine.clock.advance(2 * DAY)
    report = engine.cleanup.run(limit=3, batch_size=2)
    assert report["count"] == 3 and report["batches"] == 2 and report["more"] is True
    assert [i["instance_id"] for i in report["instances"]] == ids[:3]  # oldest first
    assert [e.details["count"] for e in cleanup_events(engine)] == [2, 1]
    report = engine.cleanup.run(limit=3, batch_size=2)
    assert report["count"] == 2 and report["more"] is False
    assert engine.runtime.list()[1] == 0


def test_dry_run_respects_the_limit(engine):
    deploy(engine, "P1D")
    for _ in range(3):
        finished(engine)
    engine.clock.advance(2 * DAY)
    report = engine.cleanup.run(dry_run=True, limit=2)
    assert report["count"] == 2 and report["more"] is True
    assert engine.runtime.list()[1] == 3


@pytest.mark.parametrize("limit", [0, -1, 2_000_000, "10", True])
def test_invalid_limit_is_refused(engine, limit):
    with pytest.raises(InvalidInputError):
        engine.cleanup.run(limit=limit)


# --- instances started by other instances -----------------------------------------------------

def _parent_and_child(engine) -> tuple[int, int]:
    """'parent' sends a message that starts 'child' (child.parent_instance_id = parent) and then waits."""
    throw = ('<bpmn:intermediateThrowEvent id="send"><bpmn:messageEventDefinition messageRef="m"/>'
             '</bpmn:intermediateThrowEvent>')
    parent = definitions(process("parent", start("s"), throw, user_task("wait", "Wait"), end("e"),
                                 chain("s", "send", "wait", "e")), message("m", "go"))
    child = definitions(process("child", start("ms", '<bpmn:messageEventDefinition messageRef="m2"/>'),
                                user_task("work", "Work"), end("e"), chain("ms", "work", "e")), message("m2", "go"))
    engine.definitions.deploy([res(with_ttl(parent, "P10D"), "parent.bpmn"), res(with_ttl(child, "P10D"), "child.bpmn")])
    parent_id = engine.runtime.start("parent", "K-1").id
    with engine.db.transaction() as s:
        child_id = s.scalar(select(Instance.id).where(Instance.parent_instance_id == parent_id))
    assert child_id is not None
    return parent_id, child_id


def _finish(engine, iid: int) -> None:
    engine.tasks.complete(engine.runtime.get(iid).tasks[0].id, "admin", {})
    assert engine.runtime.get(iid).status == "completed"


def test_a_child_stays_while_its_parent_still_runs(engine):
    parent_id, child_id = _parent_and_child(engine)
    _finish(engine, child_id)
    engine.clock.advance(11 * DAY)
    report = engine.cleanup.run()
    assert report["count"] == 0
    assert report["held_back"] == [{"instance_id": child_id, "process_key": "child", "process_version": 1,
                                    "business_key": "K-1", "status": "completed", "ended_at": report["held_back"][0][
                                        "ended_at"], "ttl_days": 10, "parent_instance_id": parent_id}]
    assert rows_of(engine, child_id)["instances"] == 1
    _finish(engine, parent_id)
    engine.clock.advance(11 * DAY)
    assert sorted(i["instance_id"] for i in engine.cleanup.run()["instances"]) == sorted([parent_id, child_id])


def test_a_parent_that_goes_first_leaves_its_running_child_unlinked(engine):
    parent_id, child_id = _parent_and_child(engine)
    _finish(engine, parent_id)
    engine.clock.advance(11 * DAY)
    assert [i["instance_id"] for i in engine.cleanup.run()["instances"]] == [parent_id]
    with engine.db.transaction() as s:
        child = s.get(Instance, child_id)
        assert child.status == "active" and child.parent_instance_id is None
    _finish(engine, child_id)  # the child runs on undisturbed


# --- export before cleanup, and the worker ----------------------------------------------------

def test_export_has_the_whole_history_of_a_case(engine):
    deploy(engine, "P30D")
    iid = finished(engine, business_key="S-9", comment="looks fine")
    export = engine.history.export(iid)
    assert export["format"] == "almenflow-history/1"
    inst = export["instance"]
    assert (inst["id"], inst["business_key"], inst["status"]) == (iid, "S-9", "completed")
    assert inst["process"] == {"key": "p", "version": 1, "name": "p"}
    assert inst["history_ttl_days"] == 30 and inst["removal_due_at"] == "2027-02-03T09:00:00+00:00"
    assert [e["type"] for e in export["events"]][:2] == ["started", "task_created"]
    assert "task_completed" in [e["type"] for e in export["events"]]
    assert [c["text"] for c in export["comments"]] == ["looks fine"]
    (task,) = export["tasks"]
    assert task["status"] == "completed" and task["completed_by"] == "anna" and task["element_id"] == "task"
    with pytest.raises(NotFoundError):
        engine.history.export(iid + 100)


def test_the_worker_runs_the_cleanup_daily(engine):
    deploy(engine, "P1D")
    iid = finished(engine)
    engine.clock.advance(2 * DAY)
    _cleanup(engine)
    assert rows_of(engine, iid)["instances"] == 0
    scheduler = start_background(engine, interval=3600)
    try:
        job = scheduler.get_job("history_cleanup")
        assert job is not None and job.trigger.interval == timedelta(hours=24)
    finally:
        scheduler.shutdown(wait=False)


def test_cleanup_keeps_other_instances_audit_and_unrelated_rows(engine):
    deploy(engine, "P1D")
    gone = finished(engine)
    stays = engine.runtime.start("p").id
    engine.clock.advance(2 * DAY)
    before = rows_of(engine, stays)
    engine.cleanup.run()
    assert rows_of(engine, stays) == before
    with engine.db.transaction() as s:
        orphans = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.instance_id.is_not(None), ~AuditEvent.instance_id.in_(select(Instance.id))))
        assert orphans == 0
        assert s.scalar(select(func.count()).select_from(Definition)) == 1
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            or_(AuditEvent.instance_id == gone, AuditEvent.instance_id.is_(None)))) == 1
