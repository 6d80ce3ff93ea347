"""Deployment: versioning, folders, all-or-nothing, hardened XML, refusal messages, JUEL translation."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine import DeploymentError
from engine.models import Definition, Deployment, Resource
from engine.xml_loader import MAX_XML_BYTES
from tests.engine.bpmn_kit import (
    chain,
    doc,
    end,
    field,
    flow,
    lanes,
    res,
    script,
    start,
    user_process,
    user_task,
)


def row_counts(engine) -> tuple[int, int, int]:
    with engine.db.transaction() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Deployment, Resource, Definition))


def script_process(pid: str = "p", code: str = "x = 1") -> str:
    return doc(pid, start(), script("work", code), end(), chain("start", "work", "end"))


# -- versioning ---------------------------------------------------------------------------------

def test_versions_increase_on_change_and_identical_content_is_unchanged(engine):
    first = engine.definitions.deploy([res(script_process(code="x = 1"))], user="anna")
    assert [(d.key, d.version, d.deployed_by) for d in first["deployed"]] == [("p", 1, "anna")]

    again = engine.definitions.deploy([res(script_process(code="x = 1"))], user="anna")
    assert again["deployed"] == []
    assert [(d.key, d.version) for d in again["unchanged"]] == [("p", 1)]
    assert row_counts(engine) == (1, 1, 1), "an unchanged redeploy must not add rows"

    second = engine.definitions.deploy([res(script_process(code="x = 2"))])
    assert [(d.key, d.version) for d in second["deployed"]] == [("p", 2)]
    assert [(d.key, d.version) for d in engine.definitions.list()] == [("p", 1), ("p", 2)]
    assert [(d.key, d.version) for d in engine.definitions.list(latest_only=True)] == [("p", 2)]


def test_instances_run_on_the_version_they_started_with(engine):
    engine.definitions.deploy([res(user_process("p", field("a")))])
    old = engine.runtime.start("p", "old")
    engine.definitions.deploy([res(user_process("p", field("b")))])
    new = engine.runtime.start("p", "new")
    assert old.definition["version"] == 1 and new.definition["version"] == 2
    assert [f["id"] for f in old.tasks[0].fields] == ["a"]
    assert [f["id"] for f in new.tasks[0].fields] == ["b"]
    engine.tasks.complete(old.tasks[0].id, "anna", {"a": "x"})
    assert engine.runtime.get(old.id).status == "completed"
    assert engine.runtime.start("p", version=1).definition["version"] == 1


def test_folder_deploy_takes_bpmn_and_dmn_files_only(engine, tmp_path):
    folder = tmp_path / "models"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.bpmn").write_text(script_process("one"))
    (folder / "sub" / "two.bpmn20.xml").write_text(script_process("two"))
    (folder / "notes.txt").write_text("not a model")
    result = engine.definitions.deploy([folder])
    assert sorted(d.key for d in result["deployed"]) == ["one", "two"]
    assert {d.resource_name for d in engine.definitions.list()} == {"one.bpmn", "two.bpmn20.xml"}


def test_empty_folder_and_missing_path_are_refused(engine, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DeploymentError, match="no .bpmn or .dmn"):
        engine.definitions.deploy([tmp_path / "empty"])
    with pytest.raises(DeploymentError, match="no such file"):
        engine.definitions.deploy([tmp_path / "nope.bpmn"])


def test_one_bad_file_stores_nothing(engine):
    engine.definitions.deploy([res(script_process("existing"), "existing.bpmn")])
    before = row_counts(engine)
    bad = doc("bad", start(), script("s", "import os"), end(), chain("start", "s", "end"))
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(script_process("good"), "good.bpmn"),
                                   res(script_process("existing", "x = 99"), "existing.bpmn2.bpmn"),
                                   res(bad, "bad.bpmn")])
    assert [p.file for p in exc.value.problems] == ["bad.bpmn"]
    assert row_counts(engine) == before
    assert [(d.key, d.version) for d in engine.definitions.list()] == [("existing", 1)]


def test_validate_reports_problems_without_storing(engine):
    bad = doc("bad", start(), script("s", "open('/etc/passwd')"), end(), chain("start", "s", "end"))
    problems = engine.definitions.validate([res(bad, "bad.bpmn")])
    assert [(p.file, p.element_id) for p in problems] == [("bad.bpmn", "s")]
    assert engine.definitions.validate([res(script_process())]) == []
    assert row_counts(engine) == (0, 0, 0)


# -- hardened XML -------------------------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" name="&lol4;" isExecutable="true"><bpmn:startEvent id="s"/></bpmn:process>
</bpmn:definitions>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" isExecutable="true"><bpmn:documentation>&xxe;</bpmn:documentation>
  <bpmn:startEvent id="s"/></bpmn:process>
</bpmn:definitions>"""

EXTERNAL_ENTITY_IN_ATTRIBUTE = EXTERNAL_ENTITY.replace('id="p"', 'id="p" name="&xxe;"')

NETWORK_DTD = """<?xml version="1.0"?>
<!DOCTYPE bpmn:definitions SYSTEM "http://example.invalid/evil.dtd">
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s"/></bpmn:process>
</bpmn:definitions>"""


@pytest.mark.parametrize(("content", "reason"), [
    (BILLION_LAUGHS, "DOCTYPE"),
    (EXTERNAL_ENTITY, "DOCTYPE"),
    (EXTERNAL_ENTITY_IN_ATTRIBUTE, "external entity"),
    (NETWORK_DTD, "DOCTYPE"),
    ("", "empty"),
    ("   \n", "empty"),
    ("<bpmn:definitions", "not well-formed"),
    ("<html><body>hello</body></html>", "not a BPMN 2.0 or DMN document"),
    ('<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"/>',
     "no executable process"),
], ids=["billion-laughs", "external-entity", "external-entity-attr", "network-dtd", "empty", "blank", "malformed", "html", "no-process"])
def test_hostile_or_invalid_xml_is_refused(engine, content, reason):
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(content, "evil.bpmn")])
    (problem,) = exc.value.problems
    assert problem.file == "evil.bpmn"
    assert reason in problem.message
    assert "root:" not in str(exc.value), "entity content must never be expanded"
    assert row_counts(engine) == (0, 0, 0)


def test_executable_process_without_id_is_refused(engine):
    # The schema allows a process without an id, but the id is the process key (this once failed with
    # an AttributeError while the deployment was being stored).
    text = doc("p", start(), end(), flow("start", "end")).replace('<bpmn:process id="p"', "<bpmn:process")
    assert "<bpmn:process " in text and 'id="p"' not in text
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(text, "noid.bpmn")])
    (problem,) = exc.value.problems
    assert (problem.file, problem.element_id, problem.message) == ("noid.bpmn", None, "the executable process has no id")
    assert row_counts(engine) == (0, 0, 0)


def test_size_cap(engine):
    filler = "<!--" + "x" * (MAX_XML_BYTES + 10) + "-->"
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(script_process() + filler, "big.bpmn")])
    assert exc.value.problems[0].file == "big.bpmn"
    assert "limit" in exc.value.problems[0].message


# -- refusal messages -----------------------------------------------------------------------------

def test_refusal_names_file_element_and_reason(engine):
    text = doc("p", start(), user_task("t"), end(), flow("start", "t"), flow("t", "end", cond="x ==", id_="Flow_bad"))
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(text, "orders.bpmn")])
    (problem,) = exc.value.problems
    assert (problem.file, problem.element_id) == ("orders.bpmn", "Flow_bad")
    assert "not allowed or invalid" in problem.message
    assert str(exc.value).startswith("orders.bpmn, element 'Flow_bad': ")
    assert problem.to_dict() == {"file": "orders.bpmn", "element_id": "Flow_bad", "message": problem.message}


def test_every_problem_of_a_file_is_reported(engine):
    text = doc("p", start(), script("s1", "import os"), script("s2", "exec('1')"), end(),
               chain("start", "s1", "s2", "end"))
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(text, "two.bpmn")])
    assert sorted(p.element_id for p in exc.value.problems) == ["s1", "s2"]


def test_outgoing_naming_missing_flow_is_refused(engine):
    text = doc("p", start(), '<bpmn:userTask id="Task_1"><bpmn:outgoing>Flow_ghost</bpmn:outgoing></bpmn:userTask>',
               end(), chain("start", "Task_1", "end"))
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(text, "ghost.bpmn")])
    (problem,) = exc.value.problems
    assert problem.element_id == "Task_1"
    assert "Flow_ghost" in problem.message and "does not exist" in problem.message


def test_flow_to_missing_element_is_refused(engine):
    text = doc("p", start(), end(), flow("start", "end"), flow("start", "nowhere", id_="Flow_x"))
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(text, "x.bpmn")])
    assert any(p.element_id == "Flow_x" and "nowhere" in p.message for p in exc.value.problems)


def test_unsupported_constructs_are_refused_with_element(engine):
    java = doc("p", start(), '<bpmn:serviceTask id="Java_1" camunda:class="org.example.Delegate"/>', end(),
               chain("start", "Java_1", "end"))
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(java, "java.bpmn")])
    assert exc.value.problems[0].element_id == "Java_1"
    assert "Java" in exc.value.problems[0].message


# -- reserved ids --------------------------------------------------------------------------------

def test_flow_nodes_named_start_and_end_deploy_and_run(engine):
    text = doc("p", lanes(Sekretariat=["Start", "Root", "End"]), start("Start"), user_task("Root", "Check"),
               end("End"), chain("Start", "Root", "End"))
    engine.definitions.deploy([res(text)])
    inst = engine.runtime.start("p")
    assert [(t.element_id, t.forum) for t in inst.tasks] == [("Root", "Sekretariat")]
    engine.tasks.complete(inst.tasks[0].id, "anna")
    done = engine.runtime.get(inst.id)
    assert done.status == "completed"
    assert {"Start", "Root", "End"} <= set(done.completed_elements)
    assert not any("__" in (h.element_id or "") for h in done.history)


# -- JUEL ------------------------------------------------------------------------------------------

def gateway_process(condition: str) -> str:
    return doc("p", start(), '<bpmn:exclusiveGateway id="gw" default="f_gw_no"/>',
               script("yes", "path = 'yes'"), script("no", "path = 'no'"), end("e1"), end("e2"),
               flow("start", "gw"), flow("gw", "yes", cond=condition), flow("gw", "no"),
               flow("yes", "e1"), flow("no", "e2"))


@pytest.mark.parametrize(("condition", "data", "path"), [
    ("${a == 'x'}", {"a": "x"}, "yes"),
    ("${a == 'x'}", {"a": "y"}, "no"),
    ("${a > 5 && !b}", {"a": 6, "b": False}, "yes"),
    ("${a > 5 && !b}", {"a": 6, "b": True}, "no"),
    ("${a > 5 && !b}", {"a": 5, "b": False}, "no"),
    ("${empty x}", {"x": []}, "yes"),
    ("${empty x}", {"x": ""}, "yes"),
    ("${empty x}", {"x": None}, "yes"),
    ("${empty x}", {"x": ["a"]}, "no"),
    ("${not ok}", {"ok": False}, "yes"),
    ("${not ok}", {"ok": True}, "no"),
    ("${amount ge 1000 or vip eq true}", {"amount": 10, "vip": True}, "yes"),
    ("${amount ge 1000 or vip eq true}", {"amount": 10, "vip": False}, "no"),
    ("${order.total > 100}", {"order": {"total": 101}}, "yes"),
    ("a == 'x'", {"a": "x"}, "yes"),  # plain Python still works
])
def test_juel_conditions_run(engine, condition, data, path):
    engine.definitions.deploy([res(gateway_process(condition))])
    inst = engine.runtime.start("p", data=data)
    assert inst.status == "completed", inst.incident
    assert inst.data["path"] == path


@pytest.mark.parametrize("condition", [
    "${execution.getVariable('x')}",
    "${bean.check(a)}",
    "${a.isEmpty()}",
    "${size(list) > 1}",
])
def test_untranslatable_juel_is_refused_with_element(engine, condition):
    text = doc("p", start(), '<bpmn:exclusiveGateway id="gw"/>', end("e1"), end("e2"),
               flow("start", "gw"), flow("gw", "e1", cond=condition, id_="Flow_juel"), flow("gw", "e2", cond="True"))
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(text, "juel.bpmn")])
    (problem,) = exc.value.problems
    assert (problem.file, problem.element_id) == ("juel.bpmn", "Flow_juel")
    assert condition in problem.message and "cannot be translated" in problem.message
    assert row_counts(engine) == (0, 0, 0)
