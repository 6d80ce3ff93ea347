"""Gateways: a parallel join inside a loop waits for every branch of the current round."""

from __future__ import annotations

import pytest

from tests.engine.bpmn_kit import chain, doc, end, field, flow, lanes, res, start, user_task


def _looping_review() -> str:
    ids = ["start", "split", "a", "b", "c", "join", "decide", "again", "end"]
    return doc(
        "loop", lanes(Sekretariat=ids), start(),
        '<bpmn:parallelGateway id="split"/>', '<bpmn:parallelGateway id="join"/>',
        user_task("a"), user_task("b"), user_task("c"),
        user_task("decide", "Decide", field("more", "boolean")),
        '<bpmn:exclusiveGateway id="again" default="done"/>', end(),
        chain("start", "split"), flow("split", "a"), flow("split", "b"), flow("split", "c"),
        flow("a", "join"), flow("b", "join"), flow("c", "join"), chain("join", "decide", "again"),
        flow("again", "split", cond="more", id_="repeat"), flow("again", "end", id_="done"))


def _open(engine, iid) -> list[str]:
    return sorted(t.element_id for t in engine.tasks.query(instance_id=iid))


def _complete(engine, iid, element, data=None) -> None:
    task = next(t for t in engine.tasks.query(instance_id=iid) if t.element_id == element)
    engine.tasks.complete(task.id, "anna", data or {})


@pytest.mark.parametrize("second_round", [["c", "b", "a"], ["b", "a", "c"], ["a", "b", "c"]])
def test_join_in_a_loop_waits_for_all_branches_in_every_round(engine, second_round):
    engine.definitions.deploy([res(_looping_review())])
    iid = engine.runtime.start("loop").id
    for element in ["a", "b", "c"]:
        _complete(engine, iid, element)
    assert _open(engine, iid) == ["decide"]
    _complete(engine, iid, "decide", {"more": True})
    assert _open(engine, iid) == ["a", "b", "c"]
    for i, element in enumerate(second_round):
        _complete(engine, iid, element)
        if i < 2:
            assert "decide" not in _open(engine, iid), f"join fired after only {second_round[:i + 1]}"
    assert _open(engine, iid) == ["decide"]
    _complete(engine, iid, "decide", {"more": False})
    assert engine.runtime.get(iid).status == "completed"
