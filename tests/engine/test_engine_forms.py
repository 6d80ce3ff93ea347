"""camunda:formData forms: typed, validated, and an invalid submission changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine import FormValidationError
from engine.models import AuditEvent, HumanTask, Instance
from tests.engine.bpmn_kit import field, res, user_process

FORM = (
    field("title", "string", "Titel", required=True, minlength=3, maxlength=10),
    field("count", "long", "Antal", min=1, max=9),
    field("urgent", "boolean", "Haster"),
    field("meeting", "date", "Mødedato"),
    field("decision", "enum", "Beslutning", values=["approve", "reject"], required=True),
    field("members", "string", "Medlemmer", props={"widget": "list"}),
)


@pytest.fixture
def form_task(engine):
    engine.definitions.deploy([res(user_process("p", *FORM))])
    inst = engine.runtime.start("p", "case-1")
    return inst.tasks[0]


def snapshot(engine, instance_id: int) -> tuple:
    with engine.db.transaction() as s:
        inst = s.get(Instance, instance_id)
        events = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.instance_id == instance_id))
        tasks = s.execute(select(HumanTask.id, HumanTask.status, HumanTask.assignee)
                          .where(HumanTask.instance_id == instance_id).order_by(HumanTask.id)).all()
        return inst.version, inst.state_json, inst.status, dict(inst.variables), events, [tuple(t) for t in tasks]


def test_fields_are_exposed_on_the_task(form_task):
    fields = {f["id"]: f for f in form_task.fields}
    assert list(fields) == ["title", "count", "urgent", "meeting", "decision", "members"]
    assert fields["title"]["label"] == "Titel"
    assert fields["decision"]["options"] == [{"id": "approve", "name": "Approve"}, {"id": "reject", "name": "Reject"}]
    assert fields["count"]["validation"] == {"min": "1", "max": "9"}
    assert fields["members"]["properties"] == {"widget": "list"}


def test_valid_data_is_converted_and_stored(engine, form_task):
    engine.tasks.complete(form_task.id, "anna", {
        "title": "Budget", "count": "4", "urgent": "true", "meeting": "2027-02-01",
        "decision": "approve", "members": "Anna\n\n  Bo \nCarl\n"})
    inst = engine.runtime.get(form_task.instance_id)
    assert inst.status == "completed"
    assert {k: inst.data[k] for k in ("title", "count", "urgent", "meeting", "decision", "members")} == {
        "title": "Budget", "count": 4, "urgent": True, "meeting": "2027-02-01", "decision": "approve",
        "members": ["Anna", "Bo", "Carl"]}


def test_unchecked_boolean_is_false_and_optional_fields_may_be_left_out(engine, form_task):
    engine.tasks.complete(form_task.id, "anna", {"title": "Budget", "decision": "reject", "count": ""})
    data = engine.runtime.get(form_task.instance_id).data
    assert data["urgent"] is False
    assert "count" not in data and "meeting" not in data


@pytest.mark.parametrize(("data", "errors"), [
    ({"decision": "approve"}, {"title"}),                                     # required missing
    ({"title": "", "decision": "approve"}, {"title"}),                        # empty = missing
    ({"title": "ab", "decision": "approve"}, {"title"}),                      # minlength
    ({"title": "abcdefghijk", "decision": "approve"}, {"title"}),             # maxlength
    ({"title": "Budget", "decision": "maybe"}, {"decision"}),                 # enum
    ({"title": "Budget"}, {"decision"}),                                      # required enum
    ({"title": "Budget", "decision": "approve", "count": 0}, {"count"}),      # min
    ({"title": "Budget", "decision": "approve", "count": 10}, {"count"}),     # max
    ({"title": "Budget", "decision": "approve", "count": "many"}, {"count"}),  # long
    ({"title": "Budget", "decision": "approve", "urgent": "perhaps"}, {"urgent"}),
    ({"title": "Budget", "decision": "approve", "meeting": "1/2/2027"}, {"meeting"}),
    ({"title": "Budget", "decision": "approve", "typo": 1}, {"typo"}),        # unknown field
    ({"title": "x", "decision": "no", "count": 99}, {"title", "decision", "count"}),
])
def test_invalid_data_gives_field_errors_and_changes_nothing(engine, form_task, data, errors):
    before = snapshot(engine, form_task.instance_id)
    with pytest.raises(FormValidationError) as exc:
        engine.tasks.complete(form_task.id, "anna", data)
    assert set(exc.value.errors) == errors
    assert all(isinstance(m, list) and m and all(isinstance(x, str) and x for x in m)
               for m in exc.value.errors.values())
    for name in errors:
        assert name in str(exc.value)
    assert snapshot(engine, form_task.instance_id) == before
    task = engine.tasks.get(form_task.id)
    assert task.status == "open" and task.assignee is None


def test_messages_are_danish_by_default_and_english_on_request(engine, form_task):
    with pytest.raises(FormValidationError) as da:
        engine.tasks.complete(form_task.id, "anna", {"decision": "approve"})
    assert da.value.errors["title"] == ["Feltet skal udfyldes."]
    with pytest.raises(FormValidationError) as en:
        engine.tasks.complete(form_task.id, "anna", {"decision": "approve", "title": "ab"}, locale="en")
    assert en.value.errors["title"] == ["Must be at least 3 characters."]


def test_validate_without_completing(engine, form_task):
    cleaned = engine.tasks.validate(form_task.id, {"title": "Budget", "decision": "approve", "count": "2"})
    assert cleaned["count"] == 2
    with pytest.raises(FormValidationError):
        engine.tasks.validate(form_task.id, {"title": "Budget"})
    assert engine.tasks.get(form_task.id).status == "open"


def test_task_without_form_takes_any_variables(engine):
    engine.definitions.deploy([res(user_process("p"))])
    task = engine.runtime.start("p").tasks[0]
    engine.tasks.complete(task.id, "anna", {"anything": [1, 2], "note": "ok"})
    data = engine.runtime.get(task.instance_id).data
    assert data["anything"] == [1, 2] and data["note"] == "ok"


def test_required_list_field_needs_a_line(engine):
    engine.definitions.deploy([res(user_process("p", field("members", props={"widget": "list"}, required=True)))])
    task = engine.runtime.start("p").tasks[0]
    with pytest.raises(FormValidationError) as exc:
        engine.tasks.complete(task.id, "anna", {"members": "\n  \n"})
    assert set(exc.value.errors) == {"members"}
    engine.tasks.complete(task.id, "anna", {"members": ["a", "b"]})
    assert engine.runtime.get(task.instance_id).data["members"] == ["a", "b"]
