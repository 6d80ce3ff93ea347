"""Call activities as Camunda 7 documents them: camunda:in / camunda:out, calledElementBinding,
call depth; and sub-process ids that repeat across files."""

from __future__ import annotations

import time
from xml.sax.saxutils import quoteattr

import pytest

from engine import DeploymentError
from engine.limits import Limits
from tests.engine.bpmn_kit import chain, doc, end, res, script, start, user_task


def mapping(direction: str, **attrs: str) -> str:
    return f"<camunda:{direction} " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + "/>"


def call(id_: str, called: str, *mappings: str, attrs: str = "", inner: str = "") -> str:
    ext = f"<bpmn:extensionElements>{''.join(mappings)}</bpmn:extensionElements>" if mappings else ""
    return f'<bpmn:callActivity id="{id_}" calledElement="{called}" {attrs}>{ext}{inner}</bpmn:callActivity>'


def caller(*mappings: str, called: str = "child", attrs: str = "", pid: str = "parent") -> str:
    return doc(pid, start(), call("call", called, *mappings, attrs=attrs), end(), chain("start", "call", "end"))


def child(code: str, pid: str = "child") -> str:
    return doc(pid, start(), script("work", code), end(), chain("start", "work", "end"))


def deploy(engine, *texts: tuple[str, str]) -> None:
    engine.definitions.deploy([res(text, name) for name, text in texts])


ALL_IN, ALL_OUT = mapping("in", variables="all"), mapping("out", variables="all")


# -- camunda:in / camunda:out ------------------------------------------------------------------------

def test_without_mappings_no_variable_crosses_in_either_direction(engine):
    deploy(engine, ("parent.bpmn", caller()), ("child.bpmn", child('seen = var("a", "nothing")\nsecret = 1')))
    view = engine.runtime.start("parent", data={"a": 1})
    assert view.status == "completed"
    assert view.data == {"a": 1}, "nothing comes back without camunda:out"


def test_in_and_out_mappings_with_sources_and_expressions(engine):
    # The Camunda manual's example: z = y + 5 = x + 5 + 5.
    deploy(engine, ("parent.bpmn", caller(mapping("in", sourceExpression="${x+5}", target="y"),
                                          mapping("in", source="label", target="name"),
                                          mapping("out", sourceExpression="${y+5}", target="z"),
                                          mapping("out", source="greeting", target="reply"))),
           ("child.bpmn", child('greeting = "hej " + name\nseen = sorted(k for k in ["x", "label", "y", "name"] '
                                'if var(k) is not None)')))
    view = engine.runtime.start("parent", data={"x": 1, "label": "BL"})
    assert view.status == "completed"
    assert view.data == {"x": 1, "label": "BL", "z": 11, "reply": "hej BL"}


def test_variables_all_copies_every_variable_in_and_out(engine):
    deploy(engine, ("parent.bpmn", caller(ALL_IN, ALL_OUT)), ("child.bpmn", child("b = a * 2")))
    assert engine.runtime.start("parent", data={"a": 21}).data == {"a": 21, "b": 42}


def test_a_missing_source_variable_maps_to_null(engine):
    deploy(engine, ("parent.bpmn", caller(mapping("in", source="missing", target="m"),
                                          mapping("out", source="was", target="was"))),
           ("child.bpmn", child('was = "null" if m is None else "set"')))
    assert engine.runtime.start("parent").data["was"] == "null"


def test_local_in_passes_only_the_instance_locals_of_a_multi_instance_call(engine):
    mi = ('<bpmn:multiInstanceLoopCharacteristics isSequential="true" camunda:collection="items" '
          'camunda:elementVariable="item"/>')
    parent = doc("parent", start(), call("call", "child", mapping("in", variables="all", local="true"),
                                         mapping("out", source="result", target="item"), inner=mi),
                 end(), chain("start", "call", "end"))
    deploy(engine, ("parent.bpmn", parent),
           ("child.bpmn", child('result = "%s:%s:%s" % (item, loopCounter, var("other", "-"))')))
    view = engine.runtime.start("parent", data={"items": ["a", "b"], "other": "process variable"})
    assert view.status == "completed"
    # local="true": the element variable and loopCounter only, not the process variable `other`.
    assert view.data["items"] == ["a:0:-", "b:1:-"]
    assert "item" not in view.data and "loopCounter" not in view.data and "result" not in view.data


def test_out_mappings_marked_local_end_with_the_call_activity(engine):
    deploy(engine, ("parent.bpmn", caller(mapping("out", source="x", target="x", local="true"),
                                          mapping("out", source="y", target="y"))),
           ("child.bpmn", child("x = 1\ny = 2")))
    assert engine.runtime.start("parent").data == {"y": 2}


def test_business_key_mapping_is_accepted_and_the_called_process_shares_the_case(engine):
    deploy(engine, ("parent.bpmn", caller(mapping("in", businessKey="#{execution.processBusinessKey}"), ALL_OUT)),
           ("child.bpmn", child("done = True")))
    view = engine.runtime.start("parent", business_key="BK-1")
    assert view.status == "completed" and view.data == {"done": True} and view.business_key == "BK-1"


@pytest.mark.parametrize(("mappings", "reason"), [
    ((mapping("in", sourceExpression="${order.total()}", target="t"),), "cannot be translated"),
    ((mapping("in", sourceExpression="${a +}", target="t"),), "not allowed or invalid"),
    ((mapping("in", source="a"),), "target '' is not a valid variable name"),
    ((mapping("out", source="a", target="not a name"),), "not a valid variable name"),
    ((mapping("in", source="a", sourceExpression="${a}", target="b"),), "exactly one of"),
    ((mapping("in", variables="some"),), "only variables=\"all\""),
    ((mapping("in", businessKey="${orderId}"),), "businessKey"),
    ((mapping("out", businessKey="#{execution.processBusinessKey}"),), "cannot be passed back"),
    ((mapping("in", variables="all", local="maybe"),), "must be true or false"),
    (("<camunda:inputOutput><camunda:inputParameter name=\"v\">1</camunda:inputParameter></camunda:inputOutput>",),
     "camunda:inputOutput"),
])
def test_mappings_that_cannot_run_are_refused_at_deploy_naming_the_call_activity(engine, mappings, reason):
    with pytest.raises(DeploymentError) as err:
        deploy(engine, ("parent.bpmn", caller(*mappings)), ("child.bpmn", child("x = 1")))
    problems = [p for p in err.value.problems if reason in p.message]
    assert problems and problems[0].element_id == "call", err.value.problems


def test_a_failing_out_expression_is_an_incident_on_the_call_activity(engine):
    deploy(engine, ("parent.bpmn", caller(mapping("out", sourceExpression="${missing + 1}", target="t"))),
           ("child.bpmn", child("x = 1")))
    view = engine.runtime.start("parent")
    assert view.status == "incident"
    assert view.incident["element_id"] == "call" and "missing" in view.incident["message"]


# -- calledElementBinding ----------------------------------------------------------------------------

def waiting_child(value: int) -> str:
    """The called process: a user task, then `v = value`."""
    return doc("child", start(), user_task("inner", "Inner", attrs='camunda:candidateGroups="Sekretariat"'),
               script("work", f"v = {value}"), end(), chain("start", "inner", "work", "end"))


def waiting_parent(binding: str = "", pid: str = "parent") -> str:
    """The caller: a user task first, so the call starts after later deployments."""
    return doc(pid, start(), user_task("before", "Before", attrs='camunda:candidateGroups="Sekretariat"'),
               call("call", "child", ALL_OUT, attrs=binding), end(), chain("start", "before", "call", "end"))


def complete(engine, instance_id: int, element_id: str) -> None:
    (task,) = [t for t in engine.runtime.get(instance_id).tasks if t.element_id == element_id]
    engine.tasks.complete(task.id, "anna")


def test_latest_binding_takes_the_newest_version_when_the_call_starts(engine):
    deploy(engine, ("parent.bpmn", waiting_parent()), ("child.bpmn", waiting_child(1)))
    iid = engine.runtime.start("parent").id
    deploy(engine, ("child.bpmn", waiting_child(2)))  # after the caller's deployment, before the call starts
    complete(engine, iid, "before")
    complete(engine, iid, "inner")
    assert engine.runtime.get(iid).data["v"] == 2


def test_a_running_called_instance_keeps_its_version_when_a_newer_one_is_deployed(engine):
    deploy(engine, ("parent.bpmn", waiting_parent()), ("child.bpmn", waiting_child(1)))
    iid = engine.runtime.start("parent").id
    complete(engine, iid, "before")  # the call runs child version 1 and waits in it
    deploy(engine, ("child.bpmn", waiting_child(2)))
    complete(engine, iid, "inner")   # reloaded from the database with version 1 attached again
    view = engine.runtime.get(iid)
    assert view.status == "completed" and view.data["v"] == 1


def test_deployment_binding_calls_the_version_deployed_with_the_caller(engine):
    deploy(engine, ("parent.bpmn", waiting_parent('camunda:calledElementBinding="deployment"')),
           ("child.bpmn", waiting_child(1)))
    deploy(engine, ("child.bpmn", waiting_child(2)))
    # Redeploying the unchanged caller with the new child makes version 2 "the one deployed with it"
    # for a caller deployed in that call; the original caller keeps version 1.
    deploy(engine, ("other.bpmn", waiting_parent('camunda:calledElementBinding="deployment"', pid="other")),
           ("child.bpmn", waiting_child(2)))
    first, second = engine.runtime.start("parent").id, engine.runtime.start("other").id
    for iid in (first, second):
        complete(engine, iid, "before")
        complete(engine, iid, "inner")
    assert engine.runtime.get(first).data["v"] == 1
    assert engine.runtime.get(second).data["v"] == 2


def test_version_binding_calls_that_version(engine):
    deploy(engine, ("child.bpmn", waiting_child(1)))
    deploy(engine, ("child.bpmn", waiting_child(2)))
    deploy(engine, ("parent.bpmn", waiting_parent('camunda:calledElementBinding="version" '
                                                  'camunda:calledElementVersion="1"')))
    iid = engine.runtime.start("parent").id
    complete(engine, iid, "before")
    complete(engine, iid, "inner")
    assert engine.runtime.get(iid).data["v"] == 1


def test_a_version_that_this_deployment_does_not_create_is_refused(engine):
    deploy(engine, ("child.bpmn", child("x = 1")))
    # Version 2 would be the next version of `child`, but the unchanged child stays at version 1.
    with pytest.raises(DeploymentError) as err:
        deploy(engine, ("parent.bpmn", caller(attrs='camunda:calledElementBinding="version" '
                                                    'camunda:calledElementVersion="2"')),
               ("child.bpmn", child("x = 1")))
    assert [(p.element_id, p.message) for p in err.value.problems] == [
        ("call", "calls version 2 of process 'child', which is not deployed")]
    deploy(engine, ("parent.bpmn", caller(attrs='camunda:calledElementBinding="version" '
                                                'camunda:calledElementVersion="2"')),
           ("child.bpmn", child("x = 2")))  # now it does
    assert engine.runtime.start("parent").status == "completed"


@pytest.mark.parametrize(("attrs", "called", "reason"), [
    ("", "nowhere", "calls process 'nowhere', which is neither deployed"),
    ('camunda:calledElementBinding="version" camunda:calledElementVersion="7"', "child",
     "calls version 7 of process 'child'"),
    ('camunda:calledElementBinding="version"', "child", "needs camunda:calledElementVersion"),
    ('camunda:calledElementBinding="deployment"', "child", "is not deployed together with it"),
    ('camunda:calledElementBinding="versionTag" camunda:calledElementVersionTag="v1"', "child", "versionTag"),
    ('camunda:calledElementTenantId="t1"', "child", "no tenants"),
    ("", "${which}", "must name a process id"),
])
def test_a_called_element_that_cannot_be_found_is_refused_at_deploy(engine, attrs, called, reason):
    deploy(engine, ("child.bpmn", child("x = 1")))
    with pytest.raises(DeploymentError) as err:
        deploy(engine, ("parent.bpmn", caller(called=called, attrs=attrs)))
    assert any(reason in p.message and p.element_id == "call" for p in err.value.problems), err.value.problems


# -- call depth --------------------------------------------------------------------------------------

def self_calling() -> str:
    return doc("loop", start(), script("count", 'n = var("n", 0) + 1'), call("again", "loop", ALL_IN, ALL_OUT),
               end(), chain("start", "count", "again", "end"))


def test_a_process_that_calls_itself_stops_at_the_call_depth_limit_with_an_incident(engine):
    deploy(engine, ("loop.bpmn", self_calling()))
    began = time.process_time()
    view = engine.runtime.start("loop")
    assert time.process_time() - began < 10
    assert view.status == "incident" and view.incident["element_id"] == "again"
    assert "limit of 20" in view.incident["message"]


def test_embedded_sub_processes_count_towards_the_call_depth(make_engine):
    engine = make_engine(limits=Limits.from_env(max_call_depth=2))
    inner = ('<bpmn:subProcess id="outer">' + start("s1") + call("call", "child") + end("e1")
             + chain("s1", "call", "e1") + "</bpmn:subProcess>")
    parent = doc("parent", start(), inner, end(), chain("start", "outer", "end"))
    nested = ('<bpmn:subProcess id="deeper">' + start("s2") + script("work", "x = 1") + end("e2")
              + chain("s2", "work", "e2") + "</bpmn:subProcess>")
    deploy(engine, ("parent.bpmn", parent),
           ("child.bpmn", doc("child", start(), nested, end(), chain("start", "deeper", "end"))))
    view = engine.runtime.start("parent")  # parent > outer (1) > child (2) > deeper (3)
    assert view.status == "incident" and view.incident["element_id"] == "deeper"
    assert "3 deep" in view.incident["message"] and "limit of 2" in view.incident["message"]
    assert engine.runtime.start("child").status == "completed"  # child > deeper (1)


def test_embedded_nesting_deeper_than_the_limit_is_refused_at_deploy(make_engine):
    engine = make_engine(limits=Limits.from_env(max_call_depth=1))
    body = start("s2") + script("work", "x = 1") + end("e2") + chain("s2", "work", "e2")
    two = (f'<bpmn:subProcess id="a">{start("s1")}<bpmn:subProcess id="b">{body}</bpmn:subProcess>{end("e1")}'
           + chain("s1", "b", "e1") + "</bpmn:subProcess>")
    with pytest.raises(DeploymentError) as err:
        deploy(engine, ("p.bpmn", doc("p", start(), two, end(), chain("start", "a", "end"))))
    assert "nest 2 deep" in str(err.value)


# -- sub-process ids that repeat across files ------------------------------------------------------------

def with_subprocess(pid: str, code: str) -> str:
    sub = ('<bpmn:subProcess id="review">' + start("rs") + script("work", code) + end("re")
           + chain("rs", "work", "re") + "</bpmn:subProcess>")
    return doc(pid, start(), sub, end(), chain("start", "review", "end"))


def test_two_files_using_the_same_sub_process_id_deploy_together_and_keep_their_own(engine):
    deploy(engine, ("a.bpmn", with_subprocess("a", "who = 'a'")), ("b.bpmn", with_subprocess("b", "who = 'b'")))
    assert engine.runtime.start("a").data["who"] == "a"
    assert engine.runtime.start("b").data["who"] == "b"


def test_two_files_using_the_same_sub_process_id_deploy_one_after_the_other(engine):
    deploy(engine, ("a.bpmn", with_subprocess("a", "who = 'a'")))
    deploy(engine, ("b.bpmn", with_subprocess("b", "who = 'b'")))
    deploy(engine, ("a.bpmn", with_subprocess("a", "who = 'a2'")))
    assert engine.runtime.start("a").data["who"] == "a2"
    assert engine.runtime.start("b").data["who"] == "b"


def test_a_called_process_with_the_callers_sub_process_id_keeps_its_own(engine):
    parent = doc("parent", start(), with_subprocess_body("who = 'parent'"), call("call", "child", ALL_OUT,
                 mapping("in", variables="all")), end(), chain("start", "review", "call", "end"))
    deploy(engine, ("parent.bpmn", parent), ("child.bpmn", with_subprocess("child", "who2 = 'child'")))
    view = engine.runtime.start("parent")
    assert view.status == "completed" and (view.data["who"], view.data["who2"]) == ("parent", "child")


def with_subprocess_body(code: str) -> str:
    return ('<bpmn:subProcess id="review">' + start("rs") + script("work", code) + end("re")
            + chain("rs", "work", "re") + "</bpmn:subProcess>")


def test_the_same_process_id_in_two_files_of_one_deployment_is_refused(engine):
    with pytest.raises(DeploymentError) as err:
        deploy(engine, ("a.bpmn", child("x = 1", pid="p")), ("b.bpmn", child("x = 2", pid="p")))
    assert [(p.file, p.element_id) for p in err.value.problems] == [("b.bpmn", "p")]
    assert "also defined in a.bpmn" in err.value.problems[0].message


def test_a_waiting_sub_process_inside_a_called_process_reloads_with_its_own_spec(engine):
    """The caller and the called process both have a sub-process 'review'; the called one waits,
    so the instance is saved and reloaded inside it."""
    waiting_review = ('<bpmn:subProcess id="review">' + start("rs")
                      + user_task("inner", "Inner", attrs='camunda:candidateGroups="Sekretariat"')
                      + script("work", "who2 = 'child'") + end("re") + chain("rs", "inner", "work", "re")
                      + "</bpmn:subProcess>")
    parent = doc("parent", start(), with_subprocess_body("who = 'parent'"), call("call", "child", ALL_OUT),
                 end(), chain("start", "review", "call", "end"))
    deploy(engine, ("parent.bpmn", parent),
           ("child.bpmn", doc("child", start(), waiting_review, end(), chain("start", "review", "end"))))
    iid = engine.runtime.start("parent").id
    complete(engine, iid, "inner")
    view = engine.runtime.get(iid)
    assert view.status == "completed" and (view.data["who"], view.data["who2"]) == ("parent", "child")


def test_a_called_process_calls_another_with_its_own_deployment_binding(engine):
    middle = doc("middle", start(), call("deeper", "child", ALL_OUT, attrs='camunda:calledElementBinding="deployment"'),
                 end(), chain("start", "deeper", "end"))
    deploy(engine, ("middle.bpmn", middle), ("child.bpmn", waiting_child(1)))
    deploy(engine, ("child.bpmn", waiting_child(2)))
    deploy(engine, ("parent.bpmn", doc("parent", start(), call("call", "middle", ALL_OUT), end(),
                                       chain("start", "call", "end"))))
    iid = engine.runtime.start("parent").id
    complete(engine, iid, "inner")  # waits two calls deep; reloaded with both versions attached
    view = engine.runtime.get(iid)
    assert view.status == "completed" and view.data["v"] == 1, "middle was deployed with child version 1"
