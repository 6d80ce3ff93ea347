"""Instance migration (engine.migration): running instances move from one definition version to another,
or are refused with a reason and left exactly as they were."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import FormValidationError, InvalidInputError, NotFoundError
from engine.models import AuditEvent, Definition, HumanTask, Instance, TaskCandidate, Wait
from tests.engine.bpmn_kit import (
    chain,
    definitions,
    doc,
    end,
    field,
    flow,
    lanes,
    message,
    process,
    res,
    script,
    start,
    timer,
    user_task,
)

H = timedelta(hours=1)
FORUM = "Sekretariat"


def deploy(engine, text: str, name: str = "test.bpmn") -> None:
    assert engine.definitions.deploy([res(text, name)])["deployed"], "nothing new was deployed"


def catch_message(id_: str, ref: str = "M") -> str:
    return (f'<bpmn:intermediateCatchEvent id="{id_}"><bpmn:messageEventDefinition messageRef="{ref}"/>'
            f'</bpmn:intermediateCatchEvent>')


def catch_timer(id_: str, value: str, name: str = "Vent") -> str:
    return f'<bpmn:intermediateCatchEvent id="{id_}" name="{name}">{timer("timeDuration", value)}</bpmn:intermediateCatchEvent>'


def review(*extra_body: str, task: str | None = None, flows: str | None = None, ids: list[str] | None = None) -> str:
    """start -> review (user task, forum Sekretariat) -> [extra] -> end."""
    task = task or user_task("review", "Vurder", field("decision", required=True),
                             attrs=f'camunda:candidateGroups="{FORUM}" camunda:dueDate="P3D"')
    return doc("p", lanes(**{FORUM: ["start", "review", "end", *(ids or [])]}), start(), task, *extra_body, end(),
               flows or chain("start", "review", "end"))


V2_TASK = user_task("review", "Vurder sagen", field("decision", required=True), field("reason", required=True),
                    attrs='camunda:candidateGroups="Styregruppe" camunda:dueDate="P5D"')
V2_WITH_STEP = review(script("after", "after_ran = decision + '!'"), task=V2_TASK,
                      flows=chain("start", "review", "after", "end"), ids=["after"])


def open_tasks(engine, instance_id: int) -> list:
    return engine.tasks.query(instance_id=instance_id)


def snapshot(engine) -> dict:
    """Every row migration may touch, as plain values."""
    with engine.db.transaction() as s:
        return {
            "instances": [(i.id, i.definition_id, i.version, i.status, i.state_json, i.next_due_at, i.variables)
                          for i in s.scalars(select(Instance).order_by(Instance.id))],
            "tasks": [(t.id, t.spiff_task_id, t.name, t.forum, t.assignee, t.due_at, t.fields, t.status)
                      for t in s.scalars(select(HumanTask).order_by(HumanTask.id))],
            "candidates": sorted((c.task_id, c.forum) for c in s.scalars(select(TaskCandidate))),
            "waits": sorted((w.instance_id, w.kind, w.element_id, w.name, w.due_at) for w in s.scalars(select(Wait))),
            "audit": s.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)),
        }


def only(report, instance_id: int):
    return next(i for i in report.instances if i.id == instance_id)


# -- the basic move -----------------------------------------------------------------------------------

def test_dry_run_reports_and_changes_nothing(engine):
    deploy(engine, review())
    a = engine.runtime.start("p", "A")
    b = engine.runtime.start("p", "B")
    deploy(engine, V2_WITH_STEP)
    before = snapshot(engine)

    report = engine.migration.plan("p", 1, 2)

    assert snapshot(engine) == before
    assert report.dry_run and (report.key, report.from_version, report.to_version) == ("p", 1, 2)
    assert [(i.id, i.outcome) for i in report.instances] == [(a.id, "migratable"), (b.id, "migratable")]
    assert only(report, a.id).active_elements == ["review"]
    assert only(report, a.id).tasks == [a.tasks[0].id]
    assert any("form" in n and "due date" in n for n in only(report, a.id).notes)
    changes = report.changes.to_dict()
    assert [e["element_id"] for e in changes["added"]] == ["after"]
    changed = {e["element_id"]: e["changes"] for e in changes["changed"]}
    assert {"name", "form", "properties"} <= set(changed["review"])
    assert {e["element_id"] for e in changes["mapped"]} == {"start", "review", "end"}
    assert report.to_dict()["counts"]["migratable"] == 2
    assert engine.runtime.get(a.id).definition["version"] == 1


def test_migrate_moves_the_instance_and_it_runs_on_the_new_version(engine):
    deploy(engine, review())
    inst = engine.runtime.start("p", "A", {"case": "x"})
    task_id = inst.tasks[0].id
    engine.tasks.claim(task_id, "anna")
    created = engine.tasks.get(task_id).created
    deploy(engine, V2_WITH_STEP)

    report = engine.migration.migrate("p", 1, 2, user="admin")

    assert [(i.id, i.outcome, i.tasks) for i in report.instances] == [(inst.id, "migrated", [task_id])]
    view = engine.runtime.get(inst.id)
    assert view.definition["version"] == 2 and view.status == "active"
    migrated = [h for h in view.history if h.type == "migrated"]
    assert len(migrated) == 1 and migrated[0].user == "admin"
    assert migrated[0].details["from_version"] == 1 and migrated[0].details["to_version"] == 2
    # The open task is the same task: same id and assignee; name, form, forum and due from version 2.
    [task] = view.tasks
    assert (task.id, task.assignee, task.created) == (task_id, "anna", created)
    assert task.name == "Vurder sagen" and task.forum == "Styregruppe"
    assert [f["id"] for f in task.fields] == ["decision", "reason"]
    assert task.due.startswith("2027-01-09")  # created Monday 4 January + P5D (was P3D)
    assert [t.id for t in engine.tasks.query(user="bo")] == [task_id]  # the new forum's inbox
    assert engine.tasks.query(forum=FORUM) == []
    # Completing it follows version 2: the changed form applies and the added step runs.
    with pytest.raises(FormValidationError):
        engine.tasks.complete(task_id, "anna", {"decision": "ja"})
    engine.tasks.complete(task_id, "anna", {"decision": "ja", "reason": "fordi"})
    done = engine.runtime.get(inst.id)
    assert done.status == "completed" and done.data["after_ran"] == "ja!" and done.data["case"] == "x"


def test_migrating_back_to_an_older_version_works_too(engine):
    deploy(engine, review())
    deploy(engine, V2_WITH_STEP)
    inst = engine.runtime.start("p")
    assert inst.definition["version"] == 2
    assert only(engine.migration.migrate("p", 2, 1), inst.id).outcome == "migrated"
    engine.tasks.complete(inst.tasks[0].id, "anna", {"decision": "nej"})
    assert engine.runtime.get(inst.id).status == "completed"
    assert "after_ran" not in engine.runtime.get(inst.id).data


# -- refusals -------------------------------------------------------------------------------------------

def two_step(second_wait: str, body: str = "") -> str:
    """start -> review -> <second_wait> -> end, message M; body adds elements."""
    return definitions(process("p", lanes(**{FORUM: ["start", "review", "end"]}), start(),
                               user_task("review", "Vurder", attrs=f'camunda:candidateGroups="{FORUM}"'),
                               second_wait, body, end(), chain("start", "review", "svar", "end")),
                       message("M", "svar"))


def test_refused_when_the_active_element_was_removed(engine):
    deploy(engine, two_step(catch_message("svar")))
    at_review = engine.runtime.start("p", "R")
    at_message = engine.runtime.start("p", "S")
    engine.tasks.complete(at_message.tasks[0].id, "anna", {})
    # Version 2 renames the user task: instances waiting there cannot move; the others can.
    v2 = two_step(catch_message("svar")).replace('id="review"', 'id="vurdering"').replace(
        'Ref="review"', 'Ref="vurdering"')
    deploy(engine, v2)
    before = snapshot(engine)
    report = engine.migration.migrate("p", 1, 2)

    refused = only(report, at_review.id)
    assert refused.outcome == "refused" and refused.active_elements == ["review"]
    assert any("'review'" in r and "version 2" in r for r in refused.reasons)
    assert only(report, at_message.id).outcome == "migrated"
    after = snapshot(engine)
    assert after["instances"][0] == before["instances"][0]  # the refused one is untouched
    assert [t for t in after["tasks"] if t[0] == at_review.tasks[0].id] == \
        [t for t in before["tasks"] if t[0] == at_review.tasks[0].id]
    assert engine.runtime.get(at_review.id).definition["version"] == 1
    assert engine.runtime.correlate("svar", "S") == [at_message.id]
    assert engine.runtime.get(at_message.id).status == "completed"


def test_refused_when_what_an_active_element_waits_for_changed(engine, clock):
    deploy(engine, two_step(catch_timer("svar", "PT2H")))
    inst = engine.runtime.start("p")
    engine.tasks.complete(inst.tasks[0].id, "anna", {})
    deploy(engine, two_step(catch_timer("svar", "PT4H")))
    report = engine.migration.migrate("p", 1, 2)
    [entry] = report.instances
    assert entry.outcome == "refused"
    assert "'svar'" in entry.reasons[0] and "event" in entry.reasons[0]
    assert engine.runtime.get(inst.id).definition["version"] == 1


def test_refused_when_the_active_element_changed_type(engine):
    deploy(engine, review())
    inst = engine.runtime.start("p")
    manual = '<bpmn:manualTask id="review" name="Vurder"/>'
    deploy(engine, review(task=manual))
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "refused" and "changed type" in entry.reasons[0]
    assert engine.runtime.get(inst.id).tasks[0].id == inst.tasks[0].id


def test_refused_when_the_new_assignment_of_an_open_task_cannot_be_evaluated(engine):
    deploy(engine, review())
    inst = engine.runtime.start("p")
    deploy(engine, review(task=user_task("review", "Vurder", field("decision", required=True),
                                         attrs='camunda:candidateGroups="${forum}"')))
    before = snapshot(engine)
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "refused"
    assert f"open task {inst.tasks[0].id}" in entry.reasons[0] and "candidateGroups" in entry.reasons[0]
    assert snapshot(engine) == before
    # With the variable present the same version is fine, and the task moves to the computed forum.
    other = engine.runtime.start("p", data={"forum": "Styregruppe"}, version=1)
    report = engine.migration.migrate("p", 1, 2, instance_ids=[other.id])
    assert [i.outcome for i in report.instances] == ["migrated"]
    assert [t.forum for t in engine.runtime.get(other.id).tasks] == ["Styregruppe"]


def test_refused_inside_parallel_branches_whose_split_changed(engine):
    def parallel(branches: list[str]) -> str:
        body = [user_task(b, b.upper(), attrs=f'camunda:candidateGroups="{FORUM}"') for b in branches]
        flows = [flow("start", "fork"), flow("join", "end")]
        for b in branches:
            flows += [flow("fork", b), flow(b, "join")]
        return doc("p", start(), '<bpmn:parallelGateway id="fork"/>', *body, '<bpmn:parallelGateway id="join"/>',
                   end(), *flows)

    deploy(engine, parallel(["a", "b"]))
    inside = engine.runtime.start("p")
    deploy(engine, parallel(["a", "b", "c"]))
    [entry] = engine.migration.plan("p", 1, 2).instances
    assert entry.outcome == "refused" and "'fork'" in entry.reasons[0]
    # Branches that are the same in both versions migrate.
    deploy(engine, parallel(["a", "b"]).replace('name="A"', 'name="A2"'))
    [entry] = engine.migration.migrate("p", 1, 3).instances
    assert entry.outcome == "migrated"
    for task in engine.runtime.get(inside.id).tasks:
        engine.tasks.complete(task.id, "anna", {})
    assert engine.runtime.get(inside.id).status == "completed"


def test_branch_waiting_at_a_join_migrates_and_the_join_fires(engine):
    def parallel(name_a: str) -> str:
        return doc("p", start(), '<bpmn:parallelGateway id="fork"/>',
                   user_task("a", name_a, attrs=f'camunda:candidateGroups="{FORUM}"'),
                   user_task("b", "B", attrs=f'camunda:candidateGroups="{FORUM}"'),
                   '<bpmn:parallelGateway id="join"/>', script("after", "joined = True"), end(),
                   flow("start", "fork"), flow("fork", "a"), flow("fork", "b"), flow("a", "join"),
                   flow("b", "join"), flow("join", "after"), flow("after", "end"))

    deploy(engine, parallel("A"))
    inst = engine.runtime.start("p")
    by_element = {t.element_id: t.id for t in inst.tasks}
    engine.tasks.complete(by_element["a"], "anna", {})
    deploy(engine, parallel("A2"))
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "migrated" and entry.active_elements == ["b", "join"]
    engine.tasks.complete(by_element["b"], "anna", {})
    view = engine.runtime.get(inst.id)
    assert view.status == "completed" and view.data["joined"] is True


def test_review_loop_with_a_removed_step_in_its_history(engine):
    def loop(counting: bool) -> str:
        first = "count" if counting else "review"
        body = [start(), user_task("review", "Vurder", field("again", "boolean"),
                                   attrs=f'camunda:candidateGroups="{FORUM}"'),
                '<bpmn:exclusiveGateway id="gw"/>', end()]
        body += [script("count", "n = n + 1")] if counting else []
        flows = [flow("start", first), flow("review", "gw"), flow("gw", first, "again == True"),
                 flow("gw", "end", "again == False")] + ([flow("count", "review")] if counting else [])
        return doc("p", *body, *flows)

    deploy(engine, loop(True))
    inst = engine.runtime.start("p", data={"n": 0})
    for _ in range(3):
        engine.tasks.complete(engine.runtime.get(inst.id).tasks[0].id, "anna", {"again": True})
    deploy(engine, loop(False))
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "migrated"
    assert any("count" in n for n in entry.notes)  # completed steps of the removed element leave the tree
    for again in (True, True, False):
        engine.tasks.complete(engine.runtime.get(inst.id).tasks[0].id, "anna", {"again": again})
    view = engine.runtime.get(inst.id)
    assert view.status == "completed" and view.data["n"] == 4  # counted only while on version 1


def test_open_multi_instance_items_keep_their_tasks(engine):
    def items(name: str) -> str:
        mi = (f'<bpmn:userTask id="item" name="{name}" camunda:candidateGroups="{FORUM}">'
              '<bpmn:multiInstanceLoopCharacteristics camunda:collection="${items}" camunda:elementVariable="it"/>'
              '</bpmn:userTask>')
        return doc("p", start(), mi, script("after", "done = True"), end(), chain("start", "item", "after", "end"))

    deploy(engine, items("Punkt"))
    inst = engine.runtime.start("p", data={"items": ["x", "y", "z"]})
    engine.tasks.complete(inst.tasks[0].id, "anna", {})
    deploy(engine, items("Dagsordenspunkt"))
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "migrated"
    open_now = engine.runtime.get(inst.id).tasks
    assert [(t.id, t.name) for t in open_now] == [(inst.tasks[1].id, "Dagsordenspunkt: y"),
                                                   (inst.tasks[2].id, "Dagsordenspunkt: z")]
    for task in open_now:
        engine.tasks.complete(task.id, "anna", {})
    assert engine.runtime.get(inst.id).data["done"] is True


# -- instance states --------------------------------------------------------------------------------------

def test_incident_instance_migrates_and_retry_runs_the_fixed_script(engine):
    deploy(engine, doc("p", start(), script("calc", "x = 1 / zero"), end(), chain("start", "calc", "end")))
    inst = engine.runtime.start("p", data={"zero": 0})
    assert inst.status == "incident" and inst.incident["element_id"] == "calc"
    deploy(engine, doc("p", start(), script("calc", "x = 1 if zero == 0 else 1 / zero"), end(),
                       chain("start", "calc", "end")))
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "migrated" and entry.active_elements == ["calc"]
    view = engine.runtime.get(inst.id)
    assert view.status == "incident" and view.definition["version"] == 2
    assert engine.runtime.retry(inst.id).status == "completed"
    assert engine.runtime.get(inst.id).data["x"] == 1


def test_suspended_instance_migrates_and_stays_suspended(engine):
    deploy(engine, review())
    inst = engine.runtime.start("p")
    engine.runtime.suspend(inst.id)
    deploy(engine, V2_WITH_STEP)
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert (entry.outcome, entry.status) == ("migrated", "suspended")
    assert engine.runtime.get(inst.id).status == "suspended"
    engine.runtime.resume(inst.id)
    engine.tasks.complete(inst.tasks[0].id, "bo", {"decision": "ja", "reason": "r"})
    assert engine.runtime.get(inst.id).data["after_ran"] == "ja!"


def test_finished_instances_are_not_migrated(engine):
    deploy(engine, review())
    done = engine.runtime.start("p")
    engine.tasks.complete(done.tasks[0].id, "anna", {"decision": "ja"})
    stopped = engine.runtime.start("p")
    engine.runtime.terminate(stopped.id, reason="fejl")
    deploy(engine, V2_WITH_STEP)

    report = engine.migration.migrate("p", 1, 2)
    assert report.instances == [] and report.finished == 2

    report = engine.migration.migrate("p", 1, 2, instance_ids=[done.id, stopped.id])
    assert [(i.outcome, i.status) for i in report.instances] == [("not_running", "completed"),
                                                                  ("not_running", "terminated")]
    assert engine.runtime.get(done.id).definition["version"] == 1


def test_bad_input(engine):
    deploy(engine, review())
    inst = engine.runtime.start("p")
    with pytest.raises(NotFoundError, match="'nope'"):
        engine.migration.plan("nope", 1, 2)
    with pytest.raises(NotFoundError, match="version 2"):
        engine.migration.plan("p", 1, 2)
    with pytest.raises(InvalidInputError, match="same version"):
        engine.migration.migrate("p", 1, 1)
    with pytest.raises(InvalidInputError):
        engine.migration.migrate("p", 0, 1)
    deploy(engine, V2_WITH_STEP)
    with pytest.raises(NotFoundError, match="999"):
        engine.migration.migrate("p", 1, 2, instance_ids=[inst.id, 999])
    # An instance of another version is refused, not migrated.
    newer = engine.runtime.start("p")
    [entry] = engine.migration.migrate("p", 1, 2, instance_ids=[newer.id]).instances
    assert entry.outcome == "refused" and "version 2" in entry.reasons[0]
    # Nothing running on a version is no error: the report is empty.
    assert engine.migration.plan("p", 2, 1).instances != []
    engine.migration.migrate("p", 1, 2)
    assert engine.migration.plan("p", 1, 2).instances == []


# -- sub-processes and call activities --------------------------------------------------------------------

def with_subprocess(inner: str, flows: str, extra_ids: list[str] | None = None) -> str:
    sub = f'<bpmn:subProcess id="sp" name="Behandling">{start("s1")}{inner}{end("e1")}{flows}</bpmn:subProcess>'
    return doc("p", start(), sub, end(), chain("start", "sp", "end"))


INNER = user_task("inner", "Indstil", attrs=f'camunda:candidateGroups="{FORUM}"')


def test_active_task_inside_an_embedded_subprocess(engine):
    deploy(engine, with_subprocess(INNER, chain("s1", "inner", "e1")))
    inst = engine.runtime.start("p")
    task_id = inst.tasks[0].id
    inner_v2 = user_task("inner", "Indstil nu", field("note"), attrs=f'camunda:candidateGroups="{FORUM}"')
    deploy(engine, with_subprocess(inner_v2 + script("stamp", "stamped = True"),
                                   chain("s1", "inner", "stamp", "e1")))
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "migrated" and entry.active_elements == ["inner", "sp"]
    [task] = engine.runtime.get(inst.id).tasks
    assert (task.id, task.name, [f["id"] for f in task.fields]) == (task_id, "Indstil nu", ["note"])
    engine.tasks.complete(task_id, "anna", {"note": "ok"})
    view = engine.runtime.get(inst.id)
    assert view.status == "completed" and view.data["stamped"] is True and view.data["note"] == "ok"


def test_refused_when_the_active_task_left_the_subprocess(engine):
    deploy(engine, with_subprocess(INNER, chain("s1", "inner", "e1")))
    inst = engine.runtime.start("p")
    moved_out = doc("p", start(), INNER, end(), chain("start", "inner", "end"))
    deploy(engine, moved_out)
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "refused"
    assert any("'sp'" in r for r in entry.reasons)
    assert engine.runtime.get(inst.id).tasks[0].id == inst.tasks[0].id


def call_files(child_body: str, child_flows: str, called: str = "child") -> str:
    # Variables cross a call activity only through camunda:in / camunda:out (as in Camunda 7).
    parent = process("parent", start(), f'<bpmn:callActivity id="call" calledElement="{called}">'
                     '<bpmn:extensionElements><camunda:in variables="all"/><camunda:out variables="all"/>'
                     '</bpmn:extensionElements></bpmn:callActivity>', end(),
                     chain("start", "call", "end"))
    child = process("child", start("cs"), child_body, end("ce"), child_flows)
    other = process("other", start("os"), end("oe"), chain("os", "oe"))
    return definitions(parent, child, other)


def test_active_task_inside_a_call_activity(engine):
    deploy(engine, call_files(INNER, chain("cs", "inner", "ce")))
    inst = engine.runtime.start("parent", "C")
    task_id = inst.tasks[0].id
    deploy(engine, call_files(INNER + script("stamp", "stamped = 'v2'"), chain("cs", "inner", "stamp", "ce")))
    report = engine.migration.migrate("parent", 1, 2)
    assert [(i.id, i.outcome) for i in report.instances] == [(inst.id, "migrated")]
    assert any(e.process == "child" and e.element_id == "stamp" for e in report.changes.added)
    engine.tasks.complete(task_id, "anna", {})
    view = engine.runtime.get(inst.id)
    assert view.status == "completed" and view.data["stamped"] == "v2"


def test_refused_when_a_running_call_activity_calls_another_process(engine):
    deploy(engine, call_files(INNER, chain("cs", "inner", "ce")))
    inst = engine.runtime.start("parent")
    deploy(engine, call_files(INNER, chain("cs", "inner", "ce"), called="other"))
    [entry] = engine.migration.migrate("parent", 1, 2).instances
    assert entry.outcome == "refused"
    assert any("'call'" in r and "called process" in r for r in entry.reasons)
    engine.tasks.complete(inst.tasks[0].id, "anna", {})
    assert engine.runtime.get(inst.id).status == "completed"


def call_by_version(version: int, stamp: str) -> str:
    """parent calls version `version` of child; child stamps `stamp` after its task."""
    parent = process("parent", start(), '<bpmn:callActivity id="call" calledElement="child" '
                     f'camunda:calledElementBinding="version" camunda:calledElementVersion="{version}">'
                     '<bpmn:extensionElements><camunda:out variables="all"/></bpmn:extensionElements>'
                     '</bpmn:callActivity>', end(), chain("start", "call", "end"))
    child = process("child", start("cs"), INNER, script("stamp", f"stamped = '{stamp}'"), end("ce"),
                    chain("cs", "inner", "stamp", "ce"))
    return definitions(parent, child)


def test_a_called_process_moves_to_the_version_the_target_calls(engine):
    deploy(engine, call_by_version(1, "v1"))
    pinned = engine.runtime.start("parent", "pinned")
    moving = engine.runtime.start("parent", "moving")
    deploy(engine, call_by_version(1, "v2"))  # child v2; parent v2 still calls child version 1
    deploy(engine, call_by_version(2, "v3"))  # parent v3 calls child version 2 (stamps 'v2'), child v3
    report = engine.migration.migrate("parent", 1, 2, instance_ids=[pinned.id])
    assert [(i.id, i.outcome) for i in report.instances] == [(pinned.id, "migrated")]
    report = engine.migration.migrate("parent", 1, 3, instance_ids=[moving.id])
    assert [(i.id, i.outcome) for i in report.instances] == [(moving.id, "migrated")]
    engine.tasks.complete(pinned.tasks[0].id, "anna", {})
    engine.tasks.complete(moving.tasks[0].id, "anna", {})
    assert engine.runtime.get(pinned.id).data["stamped"] == "v1"  # parent v2 still calls child version 1
    assert engine.runtime.get(moving.id).data["stamped"] == "v2"  # parent v3 calls child version 2


def test_refused_when_the_version_a_running_call_moves_to_is_gone(engine):
    deploy(engine, call_by_version(1, "v1"))
    inst = engine.runtime.start("parent")
    deploy(engine, call_by_version(1, "v2"))
    with engine.db.transaction() as session:  # version 1 of child removed behind the engine's back
        child_v1 = session.scalar(select(Definition).where(Definition.key == "child", Definition.version == 1))
        child_v1.version = 99
    [entry] = engine.migration.migrate("parent", 1, 2).instances
    assert entry.outcome == "refused" and any("'call'" in r and "version 1" in r for r in entry.reasons)
    assert engine.runtime.get(inst.id).tasks[0].id == inst.tasks[0].id


# -- timers and boundary events -----------------------------------------------------------------------------

def test_timer_wait_keeps_its_due_time_and_the_wait_is_recomputed(engine, clock):
    v1 = doc("p", start(), catch_timer("wait", "PT2H"), end(), chain("start", "wait", "end"))
    deploy(engine, v1)
    inst = engine.runtime.start("p")
    due = clock.now() + 2 * H
    clock.advance(H)
    v2 = doc("p", start(), catch_timer("wait", "PT2H", name="Vent to timer"), script("after", "fired = True"),
             end(), chain("start", "wait", "after", "end"))
    deploy(engine, v2)
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "migrated" and entry.active_elements == ["wait"], entry.reasons
    view = engine.runtime.get(inst.id)
    assert [(w.kind, w.element_id, w.name, w.due) for w in view.waits] == \
        [("timer", "wait", "Vent to timer", due.isoformat())]  # the name from version 2, the due time kept
    assert view.next_due == due.isoformat()
    clock.advance(H)
    assert engine.scheduler.run_due()["fired"] == 1
    done = engine.runtime.get(inst.id)
    assert done.status == "completed" and done.data["fired"] is True


def reminder(on: bool, boundary: str = "late", after: str = "PT1H") -> str:
    body = [start(), user_task("work", "Arbejd", attrs=f'camunda:candidateGroups="{FORUM}"'), end()]
    flows = [flow("start", "work"), flow("work", "end")]
    if on:
        body += [f'<bpmn:boundaryEvent id="{boundary}" name="Frist" attachedToRef="work">'
                 f'{timer("timeDuration", after)}</bpmn:boundaryEvent>',
                 user_task("chase", "Ryk", attrs=f'camunda:candidateGroups="{FORUM}"'), end("end_late")]
        flows += [flow(boundary, "chase"), flow("chase", "end_late")]
    return doc("p", *body, *flows)


def test_boundary_timer_added_to_an_open_task_starts_waiting(engine, clock):
    deploy(engine, reminder(False))
    inst = engine.runtime.start("p")
    assert inst.next_due is None
    clock.advance(3 * H)
    deploy(engine, reminder(True))
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "migrated"
    assert any("'late'" in n and "added" in n for n in entry.notes)
    view = engine.runtime.get(inst.id)
    due = clock.now() + H  # counted from the migration
    assert [(w.kind, w.element_id, w.due) for w in view.waits] == [("timer", "late", due.isoformat())]
    assert view.next_due == due.isoformat() and [t.id for t in view.tasks] == [inst.tasks[0].id]
    clock.advance(H)
    assert engine.scheduler.run_due()["fired"] == 1
    view = engine.runtime.get(inst.id)
    assert [t.element_id for t in view.tasks] == ["chase"]  # the interrupting timer moved the case on
    assert engine.tasks.get(inst.tasks[0].id).status == "cancelled"


def test_boundary_timer_added_that_is_already_due_fires_at_migration(engine):
    deploy(engine, reminder(False))
    inst = engine.runtime.start("p")
    past = reminder(True).replace(timer("timeDuration", "PT1H"), timer("timeDate", "2026-12-01T00:00:00Z"))
    assert past != reminder(True)
    deploy(engine, past)
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "migrated"
    view = engine.runtime.get(inst.id)
    assert [t.element_id for t in view.tasks] == ["chase"] and view.waits == []
    assert [h.type for h in view.history][-4:] == ["migrated", "timer_fired", "task_cancelled", "task_created"]
    # A suspended instance would have to run it while suspended: refused until it is resumed.
    suspended = engine.runtime.start("p", version=1)
    engine.runtime.suspend(suspended.id)
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "refused" and "due already" in entry.reasons[0]
    engine.runtime.resume(suspended.id)
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "migrated"
    assert [t.element_id for t in engine.runtime.get(suspended.id).tasks] == ["chase"]


def test_boundary_timer_removed_from_an_open_task_stops_waiting(engine, clock):
    deploy(engine, reminder(True))
    inst = engine.runtime.start("p")
    assert inst.next_due is not None
    deploy(engine, reminder(False))
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "migrated"
    view = engine.runtime.get(inst.id)
    assert view.waits == [] and view.next_due is None
    clock.advance(2 * H)
    assert engine.scheduler.run_due()["fired"] == 0
    engine.tasks.complete(inst.tasks[0].id, "anna", {})
    assert engine.runtime.get(inst.id).status == "completed"


# -- a real process --------------------------------------------------------------------------------------------

def test_a_kk_process_instance_migrates_to_an_edited_version(engine):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "processes" / "henvendelse.bpmn"
    engine.definitions.deploy([path, path.parent / "henvendelse_routing.dmn"])
    inst = engine.runtime.start("henvendelse", "H-1", {"titel": "Vinduer"}, user="anna")
    assert inst.tasks
    text = path.read_text(encoding="utf-8")
    task = inst.tasks[0]
    edited = text.replace(f'name="{task.name.split(":")[0]}"', f'name="{task.name.split(":")[0]} (ny)"', 1)
    assert edited != text
    engine.definitions.deploy([res(edited, "henvendelse.bpmn")])
    [entry] = engine.migration.migrate("henvendelse", 1, 2).instances
    assert entry.outcome == "migrated", entry.reasons
    [moved] = engine.runtime.get(inst.id).tasks
    assert moved.id == task.id and "(ny)" in moved.name


def test_boundary_timer_replaced_by_another_one(engine, clock):
    deploy(engine, reminder(True))
    inst = engine.runtime.start("p")
    clock.advance(H / 2)
    deploy(engine, reminder(True, boundary="reminder", after="PT2H"))
    [entry] = engine.migration.migrate("p", 1, 2).instances
    assert entry.outcome == "migrated", entry.reasons
    view = engine.runtime.get(inst.id)
    assert [(w.element_id, w.due) for w in view.waits] == [("reminder", (clock.now() + 2 * H).isoformat())]
    clock.advance(H)
    assert engine.scheduler.run_due()["fired"] == 0  # the old timer is gone
    clock.advance(H)
    assert engine.scheduler.run_due()["fired"] == 1
    assert [t.element_id for t in engine.runtime.get(inst.id).tasks] == ["chase"]


def test_migration_racing_task_completions_loses_no_update(make_engine):
    """A migration (say, the CLI) and completions (the web server) on the same instances at once:
    each write is applied on top of the other, never over it."""
    from threading import Thread

    from engine import OptimisticLockingError
    from tests.conftest import add_organisation

    web, cli = make_engine(), make_engine()
    add_organisation(web)
    deploy(web, two_step(catch_message("svar")))
    started = [web.runtime.start("p", f"K{i}") for i in range(16)]
    deploy(web, two_step(catch_message("svar")).replace('name="Vurder"', 'name="Vurder nu"'))
    errors: list[BaseException] = []

    def complete_all() -> None:
        try:
            for inst in reversed(started):  # the migration goes the other way: they meet half-way
                for _ in range(20):
                    try:
                        web.tasks.complete(inst.tasks[0].id, "anna", {})
                        break
                    except OptimisticLockingError:
                        continue
        except BaseException as exc:  # reported below
            errors.append(exc)

    worker = Thread(target=complete_all)
    worker.start()
    report = cli.migration.migrate("p", 1, 2, user="admin")
    worker.join(120)
    assert not errors and not worker.is_alive()
    retried = [i.id for i in report.instances if i.outcome != "migrated"]
    if retried:  # only "changed concurrently" may stop one; a second run moves it
        assert all("concurrently" in r for i in report.instances for r in i.reasons)
        assert {i.outcome for i in cli.migration.migrate("p", 1, 2, instance_ids=retried).instances} == {"migrated"}
    for inst in started:
        view = web.runtime.get(inst.id)
        assert view.definition["version"] == 2 and view.tasks == []
        assert [(w.kind, w.element_id) for w in view.waits] == [("message", "svar")]
        assert web.tasks.get(inst.tasks[0].id).status == "completed"
        assert web.runtime.correlate("svar", f"K{started.index(inst)}") == [inst.id]
        assert web.runtime.get(inst.id).status == "completed"
