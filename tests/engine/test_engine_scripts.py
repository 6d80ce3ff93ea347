"""Restricted scripts: helpers work, dangerous code is refused at deploy, failures become incidents."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import DeploymentError, InvalidStateError
from tests.engine.bpmn_kit import chain, doc, end, flow, res, script, start, user_process, user_task


def run_script(engine, code: str, data: dict | None = None, pid: str = "p"):
    engine.definitions.deploy([res(doc(pid, start(), script("calc", code), end(), chain("start", "calc", "end")))])
    return engine.runtime.start(pid, data=data or {})


def test_helpers_compute(engine):
    inst = run_script(engine, "\n".join([
        "n = len(items)",
        "total = sum(items)",
        "ordered = sorted(names)",
        "biggest = max(items) - min(items)",
        "day = iso(today())",
        "after_easter = iso(add_working_days(parse_date('2027-03-24'), 1))",
        "before_easter = iso(add_working_days(parse_date('2027-03-30'), -1))",
        "plain = iso(add_working_days(parse_date('2027-01-04'), 5))",
        "in_ten = iso(add_days(today(), 10))",
        "holiday = is_working_day(parse_date('2027-03-26'))",
        "squares = [i * i for i in range(4)]",
        "counts = {}",
        "for name in names:",
        "    counts[name] = counts.get(name, 0) + 1",
    ]), {"items": [3, 1, 2], "names": ["b", "a", "b"]})
    assert inst.status == "completed", inst.incident
    d = inst.data
    assert (d["n"], d["total"], d["ordered"], d["biggest"]) == (3, 6, ["a", "b", "b"], 2)
    assert d["day"] == "2027-01-04"  # the engine clock, not the wall clock
    # Skærtorsdag 25/3, langfredag 26/3, weekend, 2. påskedag 29/3 are skipped
    assert d["after_easter"] == "2027-03-30"
    assert d["before_easter"] == "2027-03-24"
    assert d["plain"] == "2027-01-11"
    assert d["in_ten"] == "2027-01-14"
    assert d["holiday"] is False
    assert d["squares"] == [0, 1, 4, 9]
    assert d["counts"] == {"b": 2, "a": 1}


def test_today_follows_the_engine_clock(engine, clock):
    engine.definitions.deploy([res(doc("p", start(), user_task("wait"), script("calc", "day = iso(today())"), end(),
                                       chain("start", "wait", "calc", "end")))])
    inst = engine.runtime.start("p")
    clock.advance(timedelta(days=3))
    engine.tasks.complete(inst.tasks[0].id, "admin")
    assert engine.runtime.get(inst.id).data["day"] == "2027-01-07"


@pytest.mark.parametrize("code", [
    "import os",
    "from os import path",
    "__import__('os')",
    "open('/etc/passwd')",
    "x = ().__class__.__bases__",
    "exec('1')",
    "eval('1')",
    "_secret = 1",
    "x = items._private",
    "compile('1', 'f', 'eval')",
    "getattr(items, 'append')",
])
def test_dangerous_scripts_are_refused_at_deploy(engine, code):
    text = doc("p", start(), script("Evil_1", code), end(), chain("start", "Evil_1", "end"))
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(text, "evil.bpmn")])
    (problem,) = exc.value.problems
    assert (problem.file, problem.element_id) == ("evil.bpmn", "Evil_1")
    assert "not allowed" in problem.message
    assert engine.definitions.list() == []


def test_dangerous_condition_is_refused_at_deploy(engine):
    text = doc("p", start(), '<bpmn:exclusiveGateway id="gw"/>', end("a"), end("b"), flow("start", "gw"),
               flow("gw", "a", cond="__import__('os').system('true')", id_="Flow_evil"), flow("gw", "b", cond="True"))
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(text)])
    assert [p.element_id for p in exc.value.problems] == ["Flow_evil"]


def test_unsupported_script_language_is_refused(engine):
    text = doc("p", start(), '<bpmn:scriptTask id="Js_1" scriptFormat="javascript"><bpmn:script>var a = 1;'
               '</bpmn:script></bpmn:scriptTask>', end(), chain("start", "Js_1", "end"))
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(text)])
    assert exc.value.problems[0].element_id == "Js_1"
    assert "javascript" in exc.value.problems[0].message


def test_infinite_loop_hits_cpu_limit_and_becomes_incident(make_engine):
    engine = make_engine(cpu_seconds=0.5)
    inst = run_script(engine, "while True:\n    pass")
    assert inst.status == "incident"
    assert inst.incident["element_id"] == "calc"
    assert "CPU time limit" in inst.incident["message"]


def test_builtins_missing_at_runtime_cannot_be_reached_indirectly(engine):
    """Aliasing a forbidden builtin gets past the deploy check but finds nothing at run time."""
    inst = run_script(engine, "f = globals\nx = f()")
    assert inst.status == "incident"
    assert "NameError" in inst.incident["message"]


@pytest.mark.parametrize(("code", "error", "fix", "expected"), [
    ("ratio = total / count", "ZeroDivisionError", {"count": 4}, {"ratio": 2.5}),
    ("y = missing + 1", "NameError", {"missing": 41}, {"y": 42}),
])
def test_runtime_error_becomes_incident_and_retry_completes(engine, make_engine, clock, code, error, fix, expected):
    inst = run_script(engine, code, {"total": 10, "count": 0})
    assert inst.status == "incident"
    assert inst.incident["element_id"] == "calc"
    assert error in inst.incident["message"]
    assert inst.incident["time"] == clock.now().isoformat()
    incident_events = [h for h in inst.history if h.type == "incident"]
    assert len(incident_events) == 1 and incident_events[0].element_id == "calc"
    assert error in incident_events[0].details["message"]
    assert [i["id"] for i in engine.runtime.list(status="incident")[0]] == [inst.id]

    # the incident is stored: a new engine object on the same database retries it
    clock.advance(timedelta(minutes=5))
    done = make_engine().runtime.retry(inst.id, user="admin", data=fix)
    assert done.status == "completed"
    assert done.incident is None
    for key, value in expected.items():
        assert done.data[key] == value
    retried = [h for h in done.history if h.type == "retried"]
    assert len(retried) == 1 and retried[0].user == "admin" and retried[0].details["data"] == fix


def test_retry_without_fix_stays_in_incident(engine):
    inst = run_script(engine, "y = 1 / 0")
    again = engine.runtime.retry(inst.id, user="admin")
    assert again.status == "incident"
    assert len([h for h in again.history if h.type == "incident"]) == 2
    assert engine.runtime.retry(inst.id, user="admin", data={"unused": 1}).status == "incident"


def test_retry_needs_an_incident(engine):
    engine.definitions.deploy([res(user_process())])
    inst = engine.runtime.start("p")
    with pytest.raises(InvalidStateError):
        engine.runtime.retry(inst.id)


def test_condition_error_becomes_incident_on_the_gateway(engine):
    text = doc("p", start(), '<bpmn:exclusiveGateway id="gw"/>', end("a"), end("b"), flow("start", "gw"),
               flow("gw", "a", cond="${amount > 10}"), flow("gw", "b", cond="${amount <= 10}"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("p")
    assert inst.status == "incident"
    assert inst.incident["element_id"] == "gw"
    assert "amount" in inst.incident["message"]
    done = engine.runtime.retry(inst.id, data={"amount": 11})
    assert done.status == "completed"
    assert "a" in done.completed_elements and "b" not in done.completed_elements
