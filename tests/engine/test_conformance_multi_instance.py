"""Multi-instance activities as Camunda 7 documents them: loopCardinality, camunda:collection with
camunda:elementVariable, loopCounter and the nrOf* variables, completionCondition, parallel and
sequential, on script tasks, user tasks, sub-processes and call activities; Limits.max_multi_instance."""

from __future__ import annotations

import time
from datetime import timedelta
from xml.sax.saxutils import escape, quoteattr

import pytest
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select

from engine import DeploymentError
from engine.limits import Limits
from engine.models import HumanTask, Instance
from tests.engine.bpmn_kit import chain, doc, end, res, script, start, timer, user_task

GROUP = 'camunda:candidateGroups="Sekretariat"'


def loop(cardinality: str | None = None, collection: str | None = None, element: str | None = None,
         sequential: bool = False, condition: str | None = None, inner: str = "") -> str:
    attrs = ' isSequential="true"' if sequential else ""
    if collection is not None:
        attrs += f" camunda:collection={quoteattr(collection)}"
    if element is not None:
        attrs += f' camunda:elementVariable="{element}"'
    if cardinality is not None:
        inner += f'<bpmn:loopCardinality xsi:type="bpmn:tFormalExpression">{escape(cardinality)}</bpmn:loopCardinality>'
    if condition is not None:
        inner += (f'<bpmn:completionCondition xsi:type="bpmn:tFormalExpression">{escape(condition)}'
                  '</bpmn:completionCondition>')
    return f"<bpmn:multiInstanceLoopCharacteristics{attrs}>{inner}</bpmn:multiInstanceLoopCharacteristics>"


def mi_script(code: str, characteristics: str) -> str:
    return (f'<bpmn:scriptTask id="each" scriptFormat="python">{characteristics}<bpmn:script>{escape(code)}'
            '</bpmn:script></bpmn:scriptTask>')


def around(element: str, element_id: str = "each", after: str = "") -> str:
    """start -> the multi-instance element -> (after) -> end."""
    if after:
        return doc("p", start(), element, after, end(), chain("start", element_id, "after", "end"))
    return doc("p", start(), element, end(), chain("start", element_id, "end"))


def deploy(engine, text: str, name: str = "p.bpmn") -> None:
    engine.definitions.deploy([res(text, name)])


def open_tasks(engine, iid: int, element_id: str = "each") -> list:
    return [t for t in engine.runtime.get(iid).tasks if t.element_id == element_id]


RECORD = ("runs = var('runs', []) + [[loopCounter, nrOfInstances, nrOfCompletedInstances, nrOfActiveInstances]]\n"
          "total = var('total', 0) + loopCounter + 1")
LOCALS = {"loopCounter", "nrOfInstances", "nrOfActiveInstances", "nrOfCompletedInstances"}


# -- cardinality and collections -----------------------------------------------------------------------

@pytest.mark.parametrize(("sequential", "runs"), [
    (False, [[0, 3, 0, 3], [1, 3, 1, 2], [2, 3, 2, 1]]),
    (True, [[0, 3, 0, 1], [1, 3, 1, 1], [2, 3, 2, 1]]),
])
def test_a_script_task_with_loop_cardinality_runs_each_instance_with_its_counters(engine, sequential, runs):
    deploy(engine, around(mi_script(RECORD, loop("3", sequential=sequential))))
    view = engine.runtime.start("p")
    assert view.status == "completed"
    assert view.data["runs"] == runs and view.data["total"] == 6
    assert not LOCALS & set(view.data), "loopCounter and the nrOf* counters are local to the instances"


@pytest.mark.parametrize("cardinality", ["${n}", "n + 1 - 1", "${n * 1}"])
def test_loop_cardinality_can_be_an_expression(engine, cardinality):
    deploy(engine, around(mi_script("total = var('total', 0) + 1", loop(cardinality))))
    assert engine.runtime.start("p", data={"n": 4}).data["total"] == 4


@pytest.mark.parametrize("sequential", [False, True])
def test_camunda_collection_on_a_script_task(engine, sequential):
    code = "lines = var('lines', []) + [order['id'] + '/' + str(loopCounter)]"
    deploy(engine, around(mi_script(code, loop(collection="orders", element="order", sequential=sequential))))
    view = engine.runtime.start("p", data={"orders": [{"id": "a"}, {"id": "b"}]})
    assert view.status == "completed"
    assert view.data == {"orders": [{"id": "a"}, {"id": "b"}], "lines": ["a/0", "b/1"]}


def test_camunda_collection_can_be_an_expression(engine):
    code = "seen = var('seen', []) + [line]"
    deploy(engine, around(mi_script(code, loop(collection="${order.lines}", element="line", sequential=True))))
    assert engine.runtime.start("p", data={"order": {"lines": [3, 1, 2]}}).data["seen"] == [3, 1, 2]


def test_loop_data_input_ref_and_input_data_item(engine):
    inner = '<bpmn:loopDataInputRef>people</bpmn:loopDataInputRef><bpmn:inputDataItem id="person" name="person"/>'
    code = "names = var('names', []) + [person]"
    deploy(engine, around(mi_script(code, loop(sequential=True, inner=inner))))
    assert engine.runtime.start("p", data={"people": ["ib", "jo"]}).data["names"] == ["ib", "jo"]


def test_an_empty_collection_completes_at_once(engine):
    deploy(engine, around(mi_script("x = 1", loop(collection="orders", element="order"))))
    view = engine.runtime.start("p", data={"orders": []})
    assert view.status == "completed" and "x" not in view.data


def test_the_element_variable_written_by_an_instance_replaces_its_item_in_the_collection(engine):
    deploy(engine, around(mi_script("order = order * 10", loop(collection="orders", element="order"))))
    assert engine.runtime.start("p", data={"orders": [1, 2, 3]}).data["orders"] == [10, 20, 30]


def test_two_instances_of_one_definition_do_not_share_multi_instance_state(engine):
    review = user_task("each", "Review", attrs=GROUP, inner=loop(collection="orders", element="order"))
    deploy(engine, around(review))
    first = engine.runtime.start("p", data={"orders": ["a", "b"]}).id
    second = engine.runtime.start("p", data={"orders": ["c"]}).id
    assert sorted(t.name for t in open_tasks(engine, first)) == ["Review: a", "Review: b"]
    assert [t.name for t in open_tasks(engine, second)] == ["Review: c"]
    for task in open_tasks(engine, second) + open_tasks(engine, first):
        engine.tasks.complete(task.id, "anna")
    assert [engine.runtime.get(i).status for i in (first, second)] == ["completed", "completed"]


# -- completionCondition ------------------------------------------------------------------------------

def test_completion_condition_with_nr_of_completed_instances_cancels_the_remaining_user_tasks(engine):
    review = user_task("each", "Review", attrs=GROUP,
                       inner=loop(collection="reviewers", element="reviewer", condition="${nrOfCompletedInstances >= 2}"))
    deploy(engine, around(review, after=user_task("after", "After", attrs=GROUP)))
    iid = engine.runtime.start("p", data={"reviewers": ["ib", "jo", "kim"]}).id
    tasks = open_tasks(engine, iid)
    assert len(tasks) == 3
    engine.tasks.complete(tasks[0].id, "anna", {})
    assert len(open_tasks(engine, iid)) == 2
    engine.tasks.complete(tasks[1].id, "anna", {})
    view = engine.runtime.get(iid)
    assert [t.element_id for t in view.tasks] == ["after"], "the third review is cancelled"
    assert view.status == "active"
    cancelled = [e for e in view.history if e.type == "task_cancelled"]
    assert [e.element_id for e in cancelled] == ["each"]


def test_completion_condition_sees_what_the_instance_wrote(engine):
    review = user_task("each", "Review", attrs=GROUP, inner=loop(
        collection="reviewers", element="reviewer", condition="${approved == false}"))
    deploy(engine, around(review))
    iid = engine.runtime.start("p", data={"reviewers": ["ib", "jo", "kim"]}).id
    first, second, _ = open_tasks(engine, iid)
    engine.tasks.complete(first.id, "anna", {"approved": True})
    assert engine.runtime.get(iid).status == "active"
    engine.tasks.complete(second.id, "anna", {"approved": False})
    view = engine.runtime.get(iid)
    assert view.status == "completed" and view.data["approved"] is False


@pytest.mark.parametrize("sequential", [False, True])
def test_completion_condition_stops_automatic_instances(engine, sequential):
    deploy(engine, around(mi_script("count = var('count', 0) + 1",
                                    loop("5", sequential=sequential, condition="${nrOfCompletedInstances >= 2}"))))
    view = engine.runtime.start("p")
    # Had the other three run, each would have counted too: the rest never ran.
    assert view.status == "completed" and view.data["count"] == 2
    with engine.db.transaction() as session:
        wf = engine.runtime.load(session, session.get(Instance, view.id))
        # Finished tasks are pruned from the stored state (engine/pruning.py); none is left to run.
        assert [t for t in wf.get_tasks() if t.task_spec.name == "each [child]"
                and not t.has_state(TaskState.FINISHED_MASK)] == []


def test_completion_condition_can_use_the_loop_counter(engine):
    deploy(engine, around(mi_script("count = var('count', 0) + 1", loop("4", sequential=True,
                                                                        condition="${loopCounter == 1}"))))
    assert engine.runtime.start("p").data["count"] == 2


def test_a_failing_completion_condition_is_an_incident_and_retry_evaluates_it_again(engine):
    review = user_task("each", "Review", attrs=GROUP,
                       inner=loop("3", condition="${nrOfCompletedInstances >= threshold}"))
    deploy(engine, around(review))
    iid = engine.runtime.start("p").id
    first = open_tasks(engine, iid)[0]
    engine.tasks.complete(first.id, "anna", {})  # the service call itself succeeds
    view = engine.runtime.get(iid)
    assert view.status == "incident" and view.incident["element_id"] == "each"
    assert "threshold" in view.incident["message"]
    view = engine.runtime.retry(iid, user="admin", data={"threshold": 1})
    assert view.status == "completed" and view.tasks == []


def test_a_failing_instance_is_an_incident_and_retry_runs_it_with_the_corrected_data(engine):
    deploy(engine, around(mi_script("r = var('r', []) + [10 // item]", loop(collection="items", element="item"))))
    view = engine.runtime.start("p", data={"items": [1, 0, 2]})
    assert view.status == "incident" and view.incident["element_id"] == "each"
    assert "ZeroDivisionError" in view.incident["message"]
    view = engine.runtime.retry(view.id, user="admin", data={"item": 5})
    assert view.status == "completed" and sorted(view.data["r"]) == [2, 5, 10]
    assert view.data["items"] == [1, 5, 2], "the corrected element variable is written back"


# -- sub-processes, call activities, user tasks --------------------------------------------------------

def test_a_multi_instance_sub_process_sees_the_counters_while_its_instances_wait(engine):
    body = (start("s") + user_task("do", "Do", attrs=GROUP)
            + script("note", "item = [item, nrOfCompletedInstances, loopCounter]") + end("e")
            + chain("s", "do", "note", "e"))
    sub = (f'<bpmn:subProcess id="each">{loop(collection="items", element="item")}{body}</bpmn:subProcess>')
    deploy(engine, around(sub))
    iid = engine.runtime.start("p", data={"items": ["x", "y"]}).id
    tasks = {t.name: t for t in engine.runtime.get(iid).tasks}
    assert sorted(tasks) == ["Do: x", "Do: y"]
    engine.tasks.complete(tasks["Do: x"].id, "anna")
    engine.tasks.complete(tasks["Do: y"].id, "anna")
    view = engine.runtime.get(iid)
    assert view.status == "completed"
    assert view.data == {"items": [["x", 0, 0], ["y", 1, 1]]}


def test_an_interrupting_boundary_event_cancels_every_instance_of_a_multi_instance_sub_process(engine, clock):
    body = start("s") + user_task("do", "Do", attrs=GROUP) + end("e") + chain("s", "do", "e")
    sub = f'<bpmn:subProcess id="each">{loop("3")}{body}</bpmn:subProcess>'
    boundary = (f'<bpmn:boundaryEvent id="late" attachedToRef="each">{timer("timeDuration", "P1D")}'
                '</bpmn:boundaryEvent>')
    text = doc("p", start(), sub, boundary, user_task("chase", "Chase", attrs=GROUP), end(), end("e2"),
               chain("start", "each", "end"), chain("late", "chase", "e2"))
    deploy(engine, text)
    iid = engine.runtime.start("p").id
    first = [t for t in engine.runtime.get(iid).tasks if t.element_id == "do"]
    assert len(first) == 3
    engine.tasks.complete(first[0].id, "anna")
    clock.advance(timedelta(days=1))
    assert engine.scheduler.run_due()["fired"] == 1
    view = engine.runtime.get(iid)
    assert view.status == "active" and [t.element_id for t in view.tasks] == ["chase"]
    with engine.db.transaction() as session:
        wf = engine.runtime.load(session, session.get(Instance, iid))
        assert not wf.get_active_subprocesses(), "no instance keeps running after the interruption"


def test_a_multi_instance_sub_process_with_loop_cardinality(engine):
    body = start("s") + script("work", "done = var('done', 0) + loopCounter") + end("e") + chain("s", "work", "e")
    deploy(engine, around(f'<bpmn:subProcess id="each">{loop("${n}")}{body}</bpmn:subProcess>'))
    view = engine.runtime.start("p", data={"n": 3})
    assert view.status == "completed" and "done" in view.data and not LOCALS & set(view.data)


def test_a_waiting_multi_instance_call_activity_does_not_pass_the_counters_to_the_called_process(engine):
    mappings = '<bpmn:extensionElements><camunda:out variables="all"/></bpmn:extensionElements>'
    parent = around(f'<bpmn:callActivity id="each" calledElement="child">{mappings}{loop("2")}</bpmn:callActivity>')
    child = doc("child", start(), user_task("inner", "Inner", attrs=GROUP),
                script("work", "leaked = var('nrOfCompletedInstances')"), end(), chain("start", "inner", "work", "end"))
    engine.definitions.deploy([res(parent, "p.bpmn"), res(child, "child.bpmn")])
    iid = engine.runtime.start("p").id
    for task in engine.runtime.get(iid).tasks:
        engine.tasks.complete(task.id, "anna")
    view = engine.runtime.get(iid)
    assert view.status == "completed" and view.data["leaked"] is None


def test_a_multi_instance_call_activity(engine):
    mappings = ('<bpmn:extensionElements><camunda:in source="item" target="name"/>'
                '<camunda:out source="result" target="item"/></bpmn:extensionElements>')
    parent = around(f'<bpmn:callActivity id="each" calledElement="child">{mappings}'
                    f'{loop(collection="items", element="item")}</bpmn:callActivity>')
    child = doc("child", start(), script("work", "result = name.upper()"), end(), chain("start", "work", "end"))
    engine.definitions.deploy([res(parent, "p.bpmn"), res(child, "child.bpmn")])
    assert engine.runtime.start("p", data={"items": ["ab", "cd"]}).data["items"] == ["AB", "CD"]


def test_sequential_user_tasks_come_one_at_a_time_and_their_writes_reach_the_process(engine):
    review = user_task("each", "Review", attrs=GROUP, inner=loop(collection="orgs", element="org", sequential=True))
    deploy(engine, around(review, after=user_task("after", "After", attrs=GROUP)))
    iid = engine.runtime.start("p", data={"orgs": ["fsb", "3B"]}).id
    (first,) = open_tasks(engine, iid)
    assert first.name == "Review: fsb"
    engine.tasks.complete(first.id, "anna", {"comment": "fine"})
    (second,) = open_tasks(engine, iid)
    assert second.name == "Review: 3B"
    engine.tasks.complete(second.id, "anna", {"comment": "also fine"})
    view = engine.runtime.get(iid)
    assert [t.element_id for t in view.tasks] == ["after"]
    assert view.data == {"orgs": ["fsb", "3B"], "comment": "also fine"}


# -- Limits.max_multi_instance -------------------------------------------------------------------------

@pytest.mark.parametrize(("cardinality", "reason"), [("5001", "exceeds the limit of 5000"), ("-1", "negative")])
def test_a_literal_cardinality_out_of_bounds_is_refused_at_deploy(engine, cardinality, reason):
    with pytest.raises(DeploymentError) as err:
        deploy(engine, around(mi_script("x = 1", loop(cardinality))))
    assert [(p.element_id, reason in p.message) for p in err.value.problems] == [("each", True)]


def human_task_rows(engine, iid: int) -> int:
    with engine.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.instance_id == iid))


def test_a_computed_cardinality_above_the_limit_is_an_incident_before_any_instance_exists(engine):
    deploy(engine, around(user_task("each", "Review", attrs=GROUP, inner=loop("${n}"))))
    began = time.process_time()
    view = engine.runtime.start("p", data={"n": 200_000})
    assert time.process_time() - began < 5
    assert view.status == "incident" and view.incident["element_id"] == "each"
    assert "200000 instances exceed the limit of 5000" in view.incident["message"]
    assert human_task_rows(engine, view.id) == 0
    with engine.db.transaction() as session:
        assert len(session.get(Instance, view.id).state_json) < 20_000
    view = engine.runtime.retry(view.id, user="admin", data={"n": 2})
    assert view.status == "active" and len(open_tasks(engine, view.id)) == 2


def test_a_collection_larger_than_the_limit_is_an_incident(make_engine):
    engine = make_engine(limits=Limits.from_env(max_multi_instance=3))
    deploy(engine, around(mi_script("x = 1", loop(collection="items", element="item"))))
    view = engine.runtime.start("p", data={"items": [1, 2, 3, 4]})
    assert view.status == "incident" and "4 instances exceed the limit of 3" in view.incident["message"]
    assert engine.runtime.start("p", data={"items": [1, 2, 3]}).status == "completed"


@pytest.mark.parametrize(("characteristics", "data", "reason"), [
    (loop("${n}"), {"n": "many"}, "whole number"),
    (loop("${n}"), {"n": -2}, "whole number"),
    (loop(collection="items", element="item"), {"items": "abc"}, "must be a list"),
    (loop(collection="items", element="item"), {}, "'items' is not set"),
    (loop("${n}", collection="items", element="item"), {"n": 3, "items": [1]}, "larger than the collection"),
])
def test_a_cardinality_or_collection_that_cannot_be_used_is_an_incident(engine, characteristics, data, reason):
    deploy(engine, around(mi_script("x = 1", characteristics)))
    view = engine.runtime.start("p", data=data)
    assert view.status == "incident" and view.incident["element_id"] == "each"
    assert reason in view.incident["message"]


@pytest.mark.parametrize(("characteristics", "reason"), [
    (loop(), "needs loopCardinality or camunda:collection"),
    (loop(collection="${items.all()}", element="item"), "cannot be translated"),
    (loop(collection="items", element="2x"), "not a valid variable name"),
    (loop("2", inner='<bpmn:loopDataOutputRef>out</bpmn:loopDataOutputRef>'), "not supported by Camunda 7"),
])
def test_multi_instance_settings_that_cannot_run_are_refused_at_deploy(engine, characteristics, reason):
    with pytest.raises(DeploymentError) as err:
        deploy(engine, around(mi_script("x = 1", characteristics)))
    assert any(reason in p.message and p.element_id == "each" for p in err.value.problems), err.value.problems
