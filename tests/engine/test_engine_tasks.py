"""Human tasks: forum, assignee and due date; inbox queries; claim; permissions; completion."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import (
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    TaskAlreadyClaimedError,
    TaskAlreadyCompletedError,
)
from tests.engine.bpmn_kit import chain, doc, end, field, flow, lanes, res, start, user_process, user_task


def only_task(engine, instance_id):
    (task,) = engine.tasks.query(instance_id=instance_id)
    return task


# -- forum, assignee, due date ---------------------------------------------------------------------

def test_forum_comes_from_the_lane_name(engine):
    text = doc("p", lanes(Sekretariat=["start", "a"], Styregruppe=["b", "end"]), start(),
               user_task("a", "Forbered"), user_task("b", "Beslut"), end(), chain("start", "a", "b", "end"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("p")
    first = only_task(engine, inst.id)
    assert (first.element_id, first.name, first.forum, first.candidate_groups) == (
        "a", "Forbered", "Sekretariat", ["Sekretariat"])
    engine.tasks.complete(first.id, "anna")
    second = only_task(engine, inst.id)
    assert (second.element_id, second.forum) == ("b", "Styregruppe")


def test_candidate_groups_literal_override_the_lane(engine):
    engine.definitions.deploy([res(user_process("p", attrs='camunda:candidateGroups="Styregruppe, Boligorganisation"'))])
    task = engine.runtime.start("p").tasks[0]
    assert task.forum == "Styregruppe"
    assert task.candidate_groups == ["Styregruppe", "Boligorganisation"]
    with pytest.raises(PermissionDeniedError):
        engine.tasks.complete(task.id, "anna")  # member of the lane's forum only
    engine.tasks.complete(task.id, "dorte")  # member of the second candidate group
    assert engine.runtime.get(task.instance_id).status == "completed"


def test_candidate_groups_expression(engine):
    engine.definitions.deploy([res(user_process("p", attrs='camunda:candidateGroups="${forum}"'))])
    task = engine.runtime.start("p", data={"forum": "Boligorganisation"}).tasks[0]
    assert task.forum == "Boligorganisation"
    assert [t.id for t in engine.tasks.query(forum="Boligorganisation")] == [task.id]
    assert engine.tasks.query(forum="Sekretariat") == []


def test_assignee_literal_and_expression(engine):
    engine.definitions.deploy([res(user_process("lit", attrs='camunda:assignee="bo"')),
                               res(user_process("expr", attrs='camunda:assignee="${owner}"'), "expr.bpmn")])
    lit = engine.runtime.start("lit").tasks[0]
    expr = engine.runtime.start("expr", data={"owner": "dorte"}).tasks[0]
    assert lit.assignee == "bo" and expr.assignee == "dorte"
    # an assigned task belongs to its assignee: another forum member may not complete it
    with pytest.raises(PermissionDeniedError):
        engine.tasks.complete(lit.id, "anna")
    engine.tasks.complete(lit.id, "bo")
    engine.tasks.complete(expr.id, "dorte")


@pytest.mark.parametrize(("due", "data", "expected"), [
    ("P3D", {}, "2027-01-07T09:00:00+00:00"),
    ("PT2H", {}, "2027-01-04T11:00:00+00:00"),
    ("2027-02-01T12:00:00Z", {}, "2027-02-01T12:00:00+00:00"),
    ("${deadline}", {"deadline": "2027-03-01T10:30:00+00:00"}, "2027-03-01T10:30:00+00:00"),
    ("${frist}", {"frist": "P1W"}, "2027-01-11T09:00:00+00:00"),
])
def test_due_date(engine, due, data, expected):
    engine.definitions.deploy([res(user_process("p", attrs=f'camunda:dueDate="{due}"'))])
    task = engine.runtime.start("p", data=data).tasks[0]
    assert task.due == expected


def test_created_time_and_documentation(engine, clock):
    text = doc("p", start(), user_task("t", "Læs", inner="<bpmn:documentation>Læs bilaget.</bpmn:documentation>"),
               end(), chain("start", "t", "end"))
    engine.definitions.deploy([res(text)])
    task = engine.runtime.start("p").tasks[0]
    assert task.created == clock.now().isoformat()
    assert task.documentation == "Læs bilaget."


# -- queries -------------------------------------------------------------------------------------

@pytest.fixture
def inbox(engine):
    """Three cases: a Sekretariat task, a Styregruppe task, and a Boligorganisation task assigned to anna."""
    engine.definitions.deploy([
        res(user_process("sek", forum="Sekretariat"), "sek.bpmn"),
        res(user_process("sty", forum="Styregruppe"), "sty.bpmn"),
        res(user_process("bolig", forum="Boligorganisation", attrs='camunda:assignee="anna"'), "bolig.bpmn"),
    ])
    return {key: engine.runtime.start(key, business_key=key).tasks[0].id for key in ("sek", "sty", "bolig")}


def test_query_by_forum_user_and_instance(engine, inbox):
    def ids(**kw):
        return sorted(t.id for t in engine.tasks.query(**kw))

    assert ids(forum="Sekretariat") == [inbox["sek"]]
    assert ids(forum="Styregruppe") == [inbox["sty"]]
    assert ids(user="anna") == sorted([inbox["sek"], inbox["bolig"]])  # her forum + assigned to her
    assert ids(user="carl") == [inbox["sek"]]
    assert ids(user="bo") == [inbox["sty"]]
    # dorte's forum holds the task, so her inbox lists it, but it is anna's to do
    assert ids(user="dorte") == [inbox["bolig"]]
    with pytest.raises(PermissionDeniedError):
        engine.tasks.complete(inbox["bolig"], "dorte")
    assert ids(user="outsider") == []
    sty_instance = engine.tasks.get(inbox["sty"]).instance_id
    assert ids(instance_id=sty_instance) == [inbox["sty"]]
    assert len(ids()) == 3


def test_query_status_filter(engine, inbox):
    engine.tasks.complete(inbox["sek"], "carl")
    assert inbox["sek"] not in [t.id for t in engine.tasks.query()]
    done = engine.tasks.query(status="completed")
    assert [(t.id, t.completed_by) for t in done] == [(inbox["sek"], "carl")]
    assert len(engine.tasks.query(status="all")) == 3


def test_candidate_group_members_see_the_task_in_their_inbox(engine):
    engine.definitions.deploy([res(user_process("p", attrs='camunda:candidateGroups="Styregruppe,Boligorganisation"'))])
    task = engine.runtime.start("p").tasks[0]
    assert [t.id for t in engine.tasks.query(user="bo")] == [task.id]
    assert [t.id for t in engine.tasks.query(user="dorte")] == [task.id], \
        "dorte may complete the task (second candidate group) so her inbox must show it"
    assert [t.id for t in engine.tasks.query(forum="Boligorganisation")] == [task.id]


# -- claim and permissions ----------------------------------------------------------------------------

def test_claim_and_unclaim(engine, inbox):
    task_id = inbox["sek"]
    claimed = engine.tasks.claim(task_id, "anna")
    assert claimed.assignee == "anna"
    with pytest.raises(TaskAlreadyClaimedError):
        engine.tasks.claim(task_id, "carl")
    with pytest.raises(PermissionDeniedError):
        engine.tasks.complete(task_id, "carl")  # claimed by a colleague
    with pytest.raises(PermissionDeniedError):
        engine.tasks.unclaim(task_id, "carl")
    assert engine.tasks.unclaim(task_id, "anna").assignee is None
    with pytest.raises(InvalidStateError):
        engine.tasks.unclaim(task_id, "anna")
    assert engine.tasks.claim(task_id, "carl").assignee == "carl"
    assert engine.tasks.unclaim(task_id, "admin").assignee is None  # an administrator may release it
    history = engine.runtime.get(engine.tasks.get(task_id).instance_id).history
    assert [(h.type, h.user) for h in history if h.type in ("claimed", "unclaimed")] == [
        ("claimed", "anna"), ("unclaimed", "anna"), ("claimed", "carl"), ("unclaimed", "admin")]


@pytest.mark.parametrize("user", ["outsider", "bo", "nobody", ""])
def test_non_members_may_not_claim_or_complete(engine, inbox, user):
    with pytest.raises(PermissionDeniedError):
        engine.tasks.claim(inbox["sek"], user)
    with pytest.raises(PermissionDeniedError):
        engine.tasks.complete(inbox["sek"], user)
    task = engine.tasks.get(inbox["sek"])
    assert task.status == "open" and task.assignee is None


@pytest.mark.parametrize(("user", "task"), [("anna", "sek"), ("carl", "sek"), ("admin", "sek"), ("admin", "sty"),
                                            ("anna", "bolig"), ("admin", "bolig")])
def test_members_assignees_and_admins_may_complete(engine, inbox, user, task):
    done = engine.tasks.complete(inbox[task], user)
    assert done.status == "completed" and done.completed_by == user


def test_unknown_task(engine):
    with pytest.raises(NotFoundError):
        engine.tasks.complete(999, "anna")


def test_completing_twice_is_a_conflict(engine, inbox):
    engine.tasks.complete(inbox["sek"], "anna")
    with pytest.raises(TaskAlreadyCompletedError, match="already completed by anna"):
        engine.tasks.complete(inbox["sek"], "carl")
    with pytest.raises(TaskAlreadyCompletedError):
        engine.tasks.claim(inbox["sek"], "carl")


def test_completed_event_holds_the_submitted_data(engine, clock):
    engine.definitions.deploy([res(user_process("p", field("note"), field("n", "long")))])
    inst = engine.runtime.start("p", user="anna")
    clock.advance(timedelta(hours=1))
    engine.tasks.complete(inst.tasks[0].id, "carl", {"note": "ok", "n": "3"})
    history = engine.runtime.get(inst.id).history
    (event,) = [h for h in history if h.type == "task_completed"]
    assert event.user == "carl" and event.element_id == "task"
    assert event.details["data"] == {"note": "ok", "n": 3}
    assert event.time == "2027-01-04T10:00:00+00:00"
    assert [h.type for h in history] == ["started", "task_created", "task_completed", "completed"]
    assert history[0].user == "anna"


# -- parallel tasks -------------------------------------------------------------------------------

def parallel_process() -> str:
    return doc("p", lanes(Sekretariat=["start", "fork", "a", "join", "end"], Styregruppe=["b"]), start(),
               '<bpmn:parallelGateway id="fork"/>', '<bpmn:parallelGateway id="join"/>',
               user_task("a", "A", field("x")), user_task("b", "B", field("y")), end(),
               flow("start", "fork"), flow("fork", "a"), flow("fork", "b"), flow("a", "join"), flow("b", "join"),
               flow("join", "end"))


def test_parallel_tasks_completed_one_after_another(engine):
    engine.definitions.deploy([res(parallel_process())])
    inst = engine.runtime.start("p")
    tasks = {t.element_id: t for t in engine.tasks.query(instance_id=inst.id)}
    assert {k: t.forum for k, t in tasks.items()} == {"a": "Sekretariat", "b": "Styregruppe"}
    engine.tasks.complete(tasks["b"].id, "bo", {"y": "from b"})
    assert engine.runtime.get(inst.id).status == "active"
    assert [t.element_id for t in engine.tasks.query(instance_id=inst.id)] == ["a"]
    engine.tasks.complete(tasks["a"].id, "anna", {"x": "from a"})
    done = engine.runtime.get(inst.id)
    assert done.status == "completed"
    assert done.data["x"] == "from a" and done.data["y"] == "from b"


def test_task_events_name_the_task_for_the_history(engine):
    engine.definitions.deploy([res(user_process("p"))])
    task = engine.runtime.start("p").tasks[0]
    engine.tasks.claim(task.id, "anna")
    engine.tasks.unclaim(task.id, "anna")
    events = {h.type: h for h in engine.runtime.get(task.instance_id).history}
    assert events["claimed"].details["name"] == "Task" and events["unclaimed"].details["name"] == "Task"
