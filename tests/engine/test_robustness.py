"""Robustness: untrusted code runs in evaluator processes under OS limits, engine steps are bounded,
assignment failures and bad data become incidents, and a long loop never ends a case silently."""

from __future__ import annotations

import json
import resource
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import DeploymentError, InvalidInputError, Limits
from engine.errors import StateNotStorable
from engine.models import HumanTask, Instance
from engine.sandbox.pool import shared_pool
from engine.serialization import WorkflowCodec
from tests.engine.bpmn_kit import chain, doc, end, field, flow, lanes, res, script, start, timer, user_task


def run_script(engine, code: str, data: dict | None = None):
    engine.definitions.deploy([res(doc("p", start(), script("calc", code), end(), chain("start", "calc", "end")))])
    return engine.runtime.start("p", data=data or {})


def stored(engine, instance_id: int) -> Instance:
    with engine.db.read() as session:
        return session.get(Instance, instance_id)


# -- resources: memory and CPU are the evaluator's, not the engine's -----------------------------------

@pytest.mark.parametrize(("code", "kind"), [
    ("x = 'x' * 10**10", "memory limit"),
    ("x = [0] * 10**9", "memory limit"),
    ("x = '%*d' % (10**10, 1)", "memory limit"),
    ("w = 10**10\nx = f'{1:>{w}}'", "memory limit"),
    ("s = 'a' * 1000\nfor i in range(30):\n    s = s.replace('a', 'aa')", "limit"),  # memory or CPU first
    ("x = 10**10**8", "time limit"),  # CPU, or wall-clock on a busy machine
    ("x = sum([[0] * 1000] * 100000, [])", "time limit"),
    ("while True:\n    try:\n        pass\n    except:\n        pass", "CPU time limit"),
])
def test_resource_bombs_become_incidents_and_the_engine_stays_small(make_engine, code, kind):
    engine = make_engine(limits=Limits(eval_cpu_seconds=0.5, eval_memory_mb=128))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    inst = run_script(engine, code)
    assert inst.status == "incident"
    assert inst.incident["element_id"] == "calc"
    assert kind in inst.incident["message"]
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100, f"the engine's own process grew by {grown_mb:.0f} MB"


def test_a_broken_evaluator_is_replaced_and_the_next_case_runs(make_engine):
    engine = make_engine(limits=Limits(eval_cpu_seconds=0.5))
    pool = shared_pool(engine.limits.evaluator_processes)
    replaced = pool.replaced
    assert run_script(engine, "x = sum([[0] * 1000] * 100000, [])").status == "incident"
    assert pool.replaced > replaced
    engine.definitions.deploy([res(doc("q", start(), script("ok", "y = n * 2"), end(), chain("start", "ok", "end")))])
    inst = engine.runtime.start("q", data={"n": 21})
    assert inst.status == "completed" and inst.data["y"] == 42


def test_simple_conditions_and_literals_do_not_leave_the_process(engine):
    """Literals, variables and comparisons are evaluated in-process: no evaluator round trip."""
    text = doc("g", lanes(Sekretariat=["start", "gw", "yes", "no", "wait", "end"]), start(),
               '<bpmn:exclusiveGateway id="gw"/>', user_task("yes", "Ja"), user_task("no", "Nej"),
               f'<bpmn:intermediateCatchEvent id="wait">{timer("timeDuration", "P1D")}</bpmn:intermediateCatchEvent>',
               end(), flow("start", "gw"), flow("gw", "yes", cond="${udfald == 'ja' && !haster}"),
               flow("gw", "no", cond="udfald != 'ja' or haster"), flow("yes", "wait"), flow("no", "wait"),
               flow("wait", "end"))
    engine.definitions.deploy([res(text)])
    pool = shared_pool(engine.limits.evaluator_processes)
    calls = pool.calls
    inst = engine.runtime.start("g", data={"udfald": "ja", "haster": False})
    assert [t.element_id for t in inst.tasks] == ["yes"]
    assert pool.calls == calls


def test_scripts_still_see_the_helpers_and_the_engine_clock(engine, clock):
    clock.advance(timedelta(days=2))
    inst = run_script(engine, "day = iso(today())\nnext_day = iso(add_working_days(today(), 1))")
    assert (inst.data["day"], inst.data["next_day"]) == ("2027-01-06", "2027-01-07")


# -- data stays JSON ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "variable", "reason"), [
    ("x = {1, 2}", "x", "a set"),
    ("x = {(1, 2): 3}", "x", "a key that is a tuple"),
    ("x = float('nan')", "x", "not a JSON number"),
    ("x = float('inf')", "x", "not a JSON number"),
    ("x = 10**5000", "x", "more than 10000 bits"),
    ("x = {}\nx['self'] = x", "x.self", "a cycle"),
    ("x = []\nfor i in range(100000):\n    x = [x]", "x", "nested deeper than"),
    ("x = (i for i in [1])", "x", "a generator"),
    ("x = [len]", "x[0]", "a function"),
    ("x = 'x' * 2_000_000", "x", "the limit per variable"),
])
def test_script_results_that_are_not_json_data_become_incidents_naming_the_variable(engine, code, variable, reason):
    inst = run_script(engine, code)
    assert inst.status == "incident" and inst.incident["element_id"] == "calc"
    assert f"variable '{variable}" in inst.incident["message"] and reason in inst.incident["message"]
    json.loads(stored(engine, inst.id).state_json)  # what is stored is still valid JSON
    assert "x" not in inst.data


def test_a_case_whose_data_outgrows_its_limit_stops(make_engine):
    engine = make_engine(limits=Limits(max_instance_bytes=300_000))
    text = doc("grow", start(), script("add", "chunks = var('chunks', []) + ['x' * 50_000]"),
               '<bpmn:exclusiveGateway id="gw"/>', end(), flow("start", "add"), flow("add", "gw"),
               flow("gw", "add", cond="len(chunks) < 100"), flow("gw", "end", cond="len(chunks) >= 100"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("grow")
    assert inst.status == "incident"
    assert "the limit per case is 300,000" in inst.incident["message"]


@pytest.mark.parametrize("data", [
    {"x": float("nan")}, {"x": float("inf")}, {"x": {1: "a"}}, {"x": "y" * 2_000_000},
])
def test_caller_data_that_is_not_json_within_limits_is_refused_and_starts_nothing(engine, data):
    engine.definitions.deploy([res(doc("p", start(), end(), chain("start", "end")))])
    with pytest.raises(InvalidInputError):
        engine.runtime.start("p", data=data)
    assert engine.runtime.list()[1] == 0


def test_state_that_cannot_be_stored_is_refused_by_the_codec():
    from engine.parsing import build_processes, load_resource
    from tests.engine.bpmn_kit import res as _res  # noqa: F401 - same helpers as the engine tests

    loaded, problems = load_resource(_res(doc("p", start(), user_task("t"), end(), chain("start", "t", "end"))))
    assert not problems
    (proc,) = build_processes([loaded], [])
    from SpiffWorkflow.bpmn import BpmnWorkflow

    wf = BpmnWorkflow(proc.spec, proc.subprocess_specs)
    wf.get_tasks()[0].data["bad"] = float("nan")
    with pytest.raises(StateNotStorable):
        WorkflowCodec().dump(wf)


# -- bounds on one engine step -------------------------------------------------------------------------

def test_a_parallel_gateway_that_feeds_itself_is_stopped(make_engine):
    """Every round doubles the tokens: the step budget ends it, long before memory or time run out."""
    engine = make_engine(limits=Limits(max_engine_steps=200, max_step_seconds=120))
    text = doc("loop", start(), '<bpmn:exclusiveGateway id="merge"/>', '<bpmn:parallelGateway id="fork"/>',
               flow("start", "merge"), flow("merge", "fork"), flow("fork", "merge", id_="again1"),
               flow("fork", "merge", id_="again2"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("loop")
    assert inst.status == "incident"
    assert "more than 200 steps" in inst.incident["message"]


def test_a_join_that_can_never_fire_is_an_incident_not_a_silent_stall(engine):
    """One branch ends elsewhere, so the parallel join waits for a token that never comes."""
    text = doc("dead", start(), '<bpmn:parallelGateway id="fork"/>', script("x", "x = 1"),
               '<bpmn:exclusiveGateway id="choose" default="skip"/>', script("z", "z = 1"),
               '<bpmn:parallelGateway id="join"/>', end(), end("elsewhere"), flow("start", "fork"),
               flow("fork", "x"), flow("fork", "choose"), flow("choose", "z", cond="False"),
               flow("choose", "elsewhere", id_="skip"), flow("x", "join"), flow("z", "join"), flow("join", "end"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("dead")
    assert inst.status == "incident" and inst.incident["element_id"] == "join"
    assert "cannot continue" in inst.incident["message"]


def test_a_gateway_flowing_into_itself_is_refused(engine):
    text = doc("self", start(), '<bpmn:parallelGateway id="join"/>', end(), flow("start", "join"),
               flow("join", "join", id_="self"), flow("join", "end"))
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(text)])
    assert [p.element_id for p in exc.value.problems] == ["self"]


def test_a_script_loop_without_a_wait_state_is_stopped_and_can_be_retried(make_engine):
    engine = make_engine(limits=Limits(max_engine_steps=300))
    text = doc("spin", start(), script("inc", "n = var('n', 0) + 1"), '<bpmn:exclusiveGateway id="gw"/>', end(),
               flow("start", "inc"), flow("inc", "gw"), flow("gw", "inc", cond="n < limit"),
               flow("gw", "end", cond="n >= limit"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("spin", data={"limit": 10**9})
    assert inst.status == "incident" and "more than 300 steps" in inst.incident["message"]
    assert inst.incident["element_id"] in ("inc", "gw")
    done = engine.runtime.retry(inst.id, user="admin", data={"limit": 1})
    assert done.status == "completed"


def test_a_loop_past_a_thousand_levels_keeps_its_open_task(engine):
    """SpiffWorkflow's iterators stopped at depth 1,000 and the case was marked completed."""
    text = doc("deep", lanes(Sekretariat=["start", "inc", "gw", "last", "end"]), start(),
               script("inc", "n = var('n', 0) + 1"), '<bpmn:exclusiveGateway id="gw"/>', user_task("last", "Sidst"),
               end(), flow("start", "inc"), flow("inc", "gw"), flow("gw", "inc", cond="n < 700"),
               flow("gw", "last", cond="n >= 700"), flow("last", "end"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("deep")
    assert inst.status == "active", inst.incident
    assert [t.element_id for t in inst.tasks] == ["last"] and inst.data["n"] == 700
    assert engine.tasks.complete(inst.tasks[0].id, "anna").status == "completed"
    assert engine.runtime.get(inst.id).status == "completed"


# -- assignment expressions ----------------------------------------------------------------------------

def assigned_process(attrs: str) -> str:
    return doc("a", start(), user_task("decide", "Beslut", attrs=attrs), end(), chain("start", "decide", "end"))


@pytest.mark.parametrize(("attrs", "data", "says"), [
    ('camunda:candidateGroups="${forum}"', {}, "name 'forum' is not defined"),
    ('camunda:candidateGroups="${forum}"', {"forum": "Ukendt forum"}, "forum 'Ukendt forum', which does not exist"),
    ('camunda:candidateGroups="${forum}"', {"forum": None}, "expected a name"),
    ('camunda:assignee="${who}"', {"who": "nobody"}, "user 'nobody', who does not exist"),
    ('camunda:candidateGroups="Sekretariat" camunda:dueDate="${frist}"', {"frist": "next week"}, "not a date"),
    ('camunda:candidateGroups="Sekretariat" camunda:followUpDate="${opfoelg}"', {}, "could not be evaluated"),
    ('camunda:candidateGroups="Sekretariat" camunda:priority="${prio}"', {"prio": "high"}, "whole number"),
])
def test_an_assignment_that_fails_is_an_incident_not_an_invisible_task(engine, attrs, data, says):
    engine.definitions.deploy([res(assigned_process(attrs))])
    inst = engine.runtime.start("a", data=data)
    assert inst.status == "incident" and inst.incident["element_id"] == "decide"
    assert says in inst.incident["message"]
    assert inst.tasks == []
    assert [h.type for h in inst.history].count("incident") == 1


def test_retry_with_the_missing_forum_creates_the_task_for_that_forum(engine):
    engine.definitions.deploy([res(assigned_process('camunda:candidateGroups="${forum}"'))])
    inst = engine.runtime.start("a")
    fixed = engine.runtime.retry(inst.id, user="admin", data={"forum": "Sekretariat"})
    assert fixed.status == "active"
    assert [t.forum for t in fixed.tasks] == ["Sekretariat"]
    assert [t.id for t in engine.tasks.query(user="anna")] == [fixed.tasks[0].id]


def test_computed_assignment_details_are_stored(engine, clock):
    attrs = ('camunda:candidateGroups="${forum}" camunda:dueDate="P5D" camunda:followUpDate="${opfoelg}" '
             'camunda:priority="70"')
    engine.definitions.deploy([res(assigned_process(attrs))])
    inst = engine.runtime.start("a", data={"forum": "Styregruppe", "opfoelg": "2027-01-06"})
    (task,) = inst.tasks
    assert (task.forum, task.priority) == ("Styregruppe", 70)
    assert task.due.startswith("2027-01-09") and task.follow_up.startswith("2027-01-06")


def test_candidate_users_see_claim_and_complete_their_task(engine):
    engine.definitions.deploy([res(assigned_process('camunda:candidateUsers="bo, dorte"'))])
    inst = engine.runtime.start("a")
    (task,) = inst.tasks
    assert task.candidate_users == ["bo", "dorte"]
    assert [t.id for t in engine.tasks.query(user="dorte")] == [task.id]
    assert engine.tasks.query(user="anna") == []
    engine.tasks.claim(task.id, "dorte")
    assert engine.tasks.complete(task.id, "dorte").status == "completed"


@pytest.mark.parametrize("attr", ["candidateGroups", "assignee", "dueDate", "followUpDate", "priority"])
def test_an_unterminated_expression_is_refused_at_deploy(engine, attr):
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(assigned_process(f'camunda:{attr}="${{forum"'))])
    (problem,) = exc.value.problems
    assert problem.element_id == "decide" and "not closed" in problem.message


def test_an_unterminated_condition_is_refused_at_deploy(engine):
    text = doc("c", start(), '<bpmn:exclusiveGateway id="gw"/>', end("a"), end("b"), flow("start", "gw"),
               flow("gw", "a", cond="${ok", id_="Flow_open"), flow("gw", "b", cond="${!ok}"))
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(text)])
    assert [p.element_id for p in exc.value.problems] == ["Flow_open"]


def test_tasks_of_a_case_with_an_assignment_incident_are_not_lost(engine):
    """The other branch's task is created; only the failing one waits for the administrator."""
    text = doc("two", lanes(Sekretariat=["start", "fork", "ok", "end1"]), start(), '<bpmn:parallelGateway id="fork"/>',
               user_task("ok", "OK"), user_task("bad", "Bad", attrs='camunda:candidateGroups="${missing}"'),
               end("end1"), end("end2"), flow("start", "fork"), flow("fork", "ok"), flow("fork", "bad"),
               flow("ok", "end1"), flow("bad", "end2"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("two")
    assert inst.status == "incident" and inst.incident["element_id"] == "bad"
    with engine.db.read() as session:
        rows = session.scalars(select(HumanTask.element_id).where(HumanTask.instance_id == inst.id)).all()
    assert rows == ["ok"]
    field  # noqa: B018 - kit import kept for symmetry with the other engine tests


# -- configuration ---------------------------------------------------------------------------------------

def test_limits_come_from_the_environment_and_bad_values_are_refused():
    limits = Limits.from_env({"ALMENFLOW_LIMIT_EVAL_CPU_SECONDS": "0.75", "ALMENFLOW_LIMIT_MAX_CALL_DEPTH": "5"})
    assert (limits.eval_cpu_seconds, limits.max_call_depth) == (0.75, 5)
    assert limits.eval_memory_mb == Limits().eval_memory_mb
    for bad in ("abc", "0", "-1"):
        with pytest.raises(ValueError, match="ALMENFLOW_LIMIT_MAX_CALL_DEPTH"):
            Limits.from_env({"ALMENFLOW_LIMIT_MAX_CALL_DEPTH": bad})
