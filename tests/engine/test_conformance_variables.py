"""Process variables across parallel paths behave as in Camunda 7: a variable written on any path
is visible to the process afterwards and the last writer wins (engine/bpmn/scopes.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.engine.bpmn_kit import chain, doc, end, flow, res, script, start, timer, user_task

GROUP = 'camunda:candidateGroups="Sekretariat"'


def task(id_: str) -> str:
    return user_task(id_, id_, attrs=GROUP)


def gateway(kind: str, id_: str) -> str:
    return f'<bpmn:{kind}Gateway id="{id_}"/>'


def complete(engine, iid: int, element_id: str, **data) -> None:
    (row,) = [t for t in engine.runtime.get(iid).tasks if t.element_id == element_id]
    engine.tasks.complete(row.id, "anna", data)


def two_branches(kind: str, branch_a: list[str], branch_b: list[str], *elements: str) -> str:
    """start -> split -> (a1..an | b1..bn) -> join -> after (a script recording what it sees) -> end."""
    ids_a = [e.split('id="')[1].split('"')[0] for e in branch_a]
    ids_b = [e.split('id="')[1].split('"')[0] for e in branch_b]
    cond = "True" if kind == "inclusive" else None
    flows = [flow("start", "split"), flow("split", ids_a[0], cond), flow("split", ids_b[0], cond),
             chain(*ids_a), chain(*ids_b), flow(ids_a[-1], "join"), flow(ids_b[-1], "join"),
             chain("join", "after", "end")]
    return doc("p", start(), gateway(kind, "split"), *branch_a, *branch_b, gateway(kind, "join"),
               script("after", "seen = {k: var(k) for k in ['p1', 'p2', 'x', 'lst', 'tmp']}"), end(),
               *elements, *flows)


def test_an_inclusive_join_keeps_what_each_branch_wrote(engine):
    engine.definitions.deploy([res(two_branches("inclusive", [script("a", "p1 = True")],
                                                [task("b"), script("b2", "p2 = True")]))])
    iid = engine.runtime.start("p", data={"p1": False, "p2": False}).id
    complete(engine, iid, "b")
    view = engine.runtime.get(iid)
    assert view.status == "completed"
    assert (view.data["seen"]["p1"], view.data["seen"]["p2"]) == (True, True)


def test_a_parallel_join_keeps_every_write_and_the_last_writer_wins(engine):
    engine.definitions.deploy([res(two_branches("parallel", [script("a", "x = 'a'\nlst = [3]")], [task("b")]))])
    iid = engine.runtime.start("p", data={"x": "orig", "lst": [1, 2]}).id
    assert engine.runtime.get(iid).data["x"] == "a", "a running case shows the current values"
    complete(engine, iid, "b", x="b")
    seen = engine.runtime.get(iid).data["seen"]
    assert seen["x"] == "b", "the user task completed last"
    assert seen["lst"] == [3], "the branch that did not write the list does not restore (or mangle) it"


def test_a_branch_that_did_not_write_a_variable_does_not_restore_its_old_value(engine):
    engine.definitions.deploy([res(two_branches("parallel", [task("a")], [task("b")]))])
    iid = engine.runtime.start("p", data={"x": "orig"}).id
    complete(engine, iid, "a", x="first")
    complete(engine, iid, "b")
    assert engine.runtime.get(iid).data["seen"]["x"] == "first"


def test_a_variable_a_script_deleted_stays_deleted_after_the_join(engine):
    engine.definitions.deploy([res(two_branches("parallel", [script("a", "del tmp")], [task("b")]))])
    iid = engine.runtime.start("p", data={"tmp": 1}).id
    complete(engine, iid, "b")
    view = engine.runtime.get(iid)
    assert view.data["seen"]["tmp"] is None and "tmp" not in view.data


def test_a_variable_changed_on_a_non_interrupting_boundary_path_is_visible_afterwards(engine, clock):
    boundary = (f'<bpmn:boundaryEvent id="remind" attachedToRef="work" cancelActivity="false">'
                f'{timer("timeDuration", "PT1H")}</bpmn:boundaryEvent>')
    text = doc("p", start(), task("work"), boundary, script("count", "reminders = reminders + 1"), end("e_remind"),
               script("after", "seen = reminders"), end(),
               chain("start", "work", "after", "end"), chain("remind", "count", "e_remind"))
    engine.definitions.deploy([res(text)])
    iid = engine.runtime.start("p", data={"reminders": 0}).id
    clock.advance(timedelta(hours=1))
    assert engine.scheduler.run_due()["fired"] == 1
    assert engine.runtime.get(iid).data["reminders"] == 1
    complete(engine, iid, "work")
    view = engine.runtime.get(iid)
    assert view.status == "completed" and view.data["seen"] == 1 and view.data["reminders"] == 1


@pytest.mark.parametrize("tag", ["subProcess", "transaction"])
def test_an_embedded_sub_process_shares_the_process_variables_with_parallel_paths(engine, tag):
    sub = (f'<bpmn:{tag} id="b">' + start("s") + task("inner") + script("look", "inside = x") + end("e")
           + chain("s", "inner", "look", "e") + f"</bpmn:{tag}>")
    engine.definitions.deploy([res(two_branches("parallel", [task("a")], [sub]))])
    iid = engine.runtime.start("p", data={"x": "orig"}).id
    complete(engine, iid, "a", x="from a")   # while the sub-process waits
    complete(engine, iid, "inner", y="from the sub-process")
    view = engine.runtime.get(iid)
    assert view.status == "completed"
    assert view.data["inside"] == "from a", "the sub-process sees what a parallel path wrote"
    assert view.data["seen"]["x"] == "from a", "the sub-process does not bring back its old copy"
    assert view.data["y"] == "from the sub-process"
