"""Version diff (engine.diagram_diff, engine.definitions.diff) and the heatmap query (runtime.step_counts)."""

from __future__ import annotations

import pytest

from engine import NotFoundError
from engine.diagram_diff import diff_documents, element_names
from engine.xml_loader import XmlRejected

from .bpmn_kit import (
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

DI = ('<bpmndi:BPMNDiagram id="D" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
      'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"><bpmndi:BPMNPlane id="P" bpmnElement="p">'
      '<bpmndi:BPMNShape id="S" bpmnElement="task"><dc:Bounds x="{x}" y="100" width="100" height="80"/>'
      '</bpmndi:BPMNShape></bpmndi:BPMNPlane></bpmndi:BPMNDiagram>')


def base(task: str | None = None, *, x: int = 100, flows: str | None = None, forum: str = "Sekretariat") -> str:
    task = task or user_task("task", "Registrer", field("titel", label="Titel", required=True),
                             attrs='camunda:candidateGroups="Sekretariat"')
    return definitions(process("p", lanes(**{forum: ["start", "task", "end"]}), start(), task, end(),
                               flows or chain("start", "task", "end"), name="Proces"), DI.format(x=x))


def ids(items) -> list[str]:
    return [i.id for i in items]


def test_identical_documents_have_no_changes():
    d = diff_documents(base(), base())
    assert d.is_empty and not d.layout_changed
    assert d.unchanged == 7  # process, lane, start, task, end, two flows


def test_moving_a_shape_is_layout_only():
    d = diff_documents(base(), base(x=300))
    assert d.is_empty and d.layout_changed
    # bpmn-js adds an empty label to a shape whose text was edited: that is no layout change
    labelled = base().replace("</bpmndi:BPMNShape>", "<bpmndi:BPMNLabel /></bpmndi:BPMNShape>")
    assert not diff_documents(base(), labelled).layout_changed


def test_added_and_removed_elements():
    new = base(flows=chain("start", "task") + flow("task", "review") + flow("review", "end")
               ).replace("<bpmn:endEvent", user_task("review", "Gennemse") + "<bpmn:endEvent")
    old = base()
    d = diff_documents(old, new)
    assert ids(d.added) == ["review", "f_task_review", "f_review_end"]
    assert [(e.type, e.name) for e in d.added][0] == ("userTask", "Gennemse")
    assert ids(d.removed) == ["f_task_end"]
    reverse = diff_documents(new, old)
    assert ids(reverse.removed) == ["review", "f_task_review", "f_review_end"] and ids(reverse.added) == ["f_task_end"]


def test_a_renamed_task_is_changed_with_old_and_new_name():
    new = base().replace('name="Registrer"', 'name="Registrer henvendelsen"')
    (change,) = diff_documents(base(), new).changed
    assert change.id == "task" and change.changes == ["name"]
    assert (change.old_name, change.name) == ("Registrer", "Registrer henvendelsen")


def test_attribute_form_field_and_lane_changes():
    new = base(user_task("task", "Registrer", field("titel", label="Sagens titel", required=True),
                         field("antal", "long"), attrs='camunda:candidateGroups="Styregruppe" camunda:dueDate="P3D"'),
               forum="Styregruppe")
    changed = {c.id: c.changes for c in diff_documents(base(), new).changed}
    assert changed["task"] == ["attribute:camunda:candidateGroups", "attribute:camunda:dueDate", "form"]
    assert changed["Lane_0"] == ["name"]


def test_condition_script_timer_and_type_changes():
    def variant(cond: str, code: str, duration: str, kind: str) -> str:
        return doc("p", start(), script("calc", code), '<bpmn:exclusiveGateway id="gw" default="f_gw_end"/>',
                   f'<bpmn:intermediateCatchEvent id="wait">{timer("timeDuration", duration)}</bpmn:intermediateCatchEvent>',
                   f'<bpmn:{kind} id="ping"/>', end(),
                   chain("start", "calc", "gw"), flow("gw", "wait", cond), flow("gw", "end"), chain("wait", "ping", "end"))
    old = variant("x > 1", "x = 1", "PT1H", "manualTask")
    new = variant("x > 2", "x = 2", "P1D", "userTask")
    changed = {c.id: c.changes for c in diff_documents(old, new).changed}
    assert changed == {"f_gw_wait": ["condition"], "calc": ["script"], "wait": ["event"], "ping": ["type"]}
    ping = next(c for c in diff_documents(old, new).changed if c.id == "ping")
    assert (ping.old_type, ping.type) == ("manualTask", "userTask")


def test_regenerated_ids_of_nested_parts_are_not_changes():
    old = doc("p", '<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition id="TimerEventDefinition_1">'
                   '<bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>',
              start(), end(), chain("start", "wait", "end"))
    new = old.replace("TimerEventDefinition_1", "TimerEventDefinition_0x9s")
    assert diff_documents(old, new).is_empty


def test_only_the_named_process_is_compared():
    old = definitions(process("p", start(), end(), chain("start", "end")),
                      process("q", start("qs"), end("qe"), chain("qs", "qe")), message("m1", "hej"))
    new = definitions(process("p", start(), end(), chain("start", "end")),
                      process("q", start("qs"), end("qe2"), chain("qs", "qe2")), message("m1", "hej igen"))
    d = diff_documents(old, new, process_id="p")
    assert ids(d.added) == [] and ids(d.removed) == [] and [c.id for c in d.changed] == ["m1"]
    everything = diff_documents(old, new)
    assert "qe2" in ids(everything.added) and "qe" in ids(everything.removed)


def test_element_names_and_refused_xml():
    assert element_names(base()) == {"p": "Proces", "Lane_0": "Sekretariat", "task": "Registrer"}
    with pytest.raises(XmlRejected):
        diff_documents(base(), b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')


def test_definitions_diff_compares_two_deployed_versions(engine):
    engine.definitions.deploy([res(base().replace('id="p"', 'id="proc"').replace('bpmnElement="p"', 'bpmnElement="proc"'))])
    second = base(user_task("task", "Registrer sagen")).replace('id="p"', 'id="proc"')
    engine.definitions.deploy([res(second)])
    d = engine.definitions.diff("proc", 1, 2)
    (change,) = d.changed
    assert change.id == "task" and change.changes == ["name", "attribute:camunda:candidateGroups", "form"]
    assert d.to_dict()["changed"][0]["name"] == "Registrer sagen"
    assert engine.definitions.diff("proc", 2, 2).is_empty
    with pytest.raises(NotFoundError):
        engine.definitions.diff("proc", 1, 3)


# -- the heatmap query ---------------------------------------------------------------------------

HEAT = doc("heat", start(), '<bpmn:parallelGateway id="split"/>',
           user_task("review", "Review", attrs='camunda:candidateGroups="Sekretariat"'),
           f'<bpmn:intermediateCatchEvent id="wait">{timer("timeDuration", "P10D")}</bpmn:intermediateCatchEvent>',
           '<bpmn:parallelGateway id="join"/>', script("boom", "x = 1 / zero"), end(),
           chain("start", "split"), flow("split", "review"), flow("split", "wait"), flow("review", "join"),
           flow("wait", "join"), chain("join", "boom", "end"))


def test_step_counts_counts_tasks_waits_and_incidents_of_running_instances(engine):
    engine.definitions.deploy([res(HEAT)])
    first, second, third, _fourth = (engine.runtime.start("heat", data={"zero": 0}) for _ in range(4))
    assert engine.runtime.step_counts("heat") == {"review": 4, "wait": 4}
    task = engine.tasks.query(instance_id=first.id)[0]
    engine.tasks.complete(task.id, "admin", {})
    engine.runtime.suspend(second.id, "admin")
    engine.runtime.terminate(third.id, "admin", "test")
    assert engine.runtime.step_counts("heat") == {"review": 2, "wait": 3}
    assert engine.runtime.step_counts("heat", 1) == engine.runtime.step_counts("heat")
    # An incident counts at its element.
    engine.definitions.deploy([res(doc("boom", start(), script("boom", "x = 1 / 0"), end(), chain("start", "boom", "end")))])
    failed = engine.runtime.start("boom")
    assert failed.status == "incident"
    assert engine.runtime.step_counts("boom") == {"boom": 1}
    engine.runtime.terminate(failed.id, "admin", "done")
    assert engine.runtime.step_counts("boom") == {}
    with pytest.raises(NotFoundError):
        engine.runtime.step_counts("heat", 7)


def test_step_counts_is_per_version(engine):
    engine.definitions.deploy([res(HEAT)])
    engine.runtime.start("heat", data={"zero": 0})
    engine.definitions.deploy([res(HEAT.replace('name="Review"', 'name="Review v2"'))])
    engine.runtime.start("heat", data={"zero": 0})
    engine.runtime.start("heat", data={"zero": 0})
    assert engine.runtime.step_counts("heat", 1) == {"review": 1, "wait": 1}
    assert engine.runtime.step_counts("heat") == {"review": 2, "wait": 2}
