"""The process library as files: diagrams bpmn-js can draw, forms and forums the engine can serve."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from .conftest import PROCESSES, members_by_forum, organisation

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NS = {"bpmn": BPMN, "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
      "dc": "http://www.omg.org/spec/DD/20100524/DC", "di": "http://www.omg.org/spec/DD/20100524/DI",
      "camunda": "http://camunda.org/schema/1.0/bpmn"}
CAM = "{http://camunda.org/schema/1.0/bpmn}"
FLOW_NODES = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
              "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "userTask",
              "scriptTask", "serviceTask", "businessRuleTask", "callActivity", "subProcess", "task", "manualTask"}
FILES = sorted(PROCESSES.glob("*.bpmn"))
KEYS = {"faellesindstilling", "styringsdialog", "partnerskabsaftale", "henvendelse"}


def _local(el) -> str:
    return etree.QName(el).localname


def _doc(path):
    root = etree.parse(str(path)).getroot()
    nodes = {el.get("id"): el for el in root.iter(f"{{{BPMN}}}*") if _local(el) in FLOW_NODES}
    flows = {el.get("id"): el for el in root.iter(f"{{{BPMN}}}sequenceFlow")}
    lane_of = {ref.text: ref.getparent().get("name") for ref in root.iter(f"{{{BPMN}}}flowNodeRef")}
    shapes = {}
    for sh in root.iter(f"{{{NS['bpmndi']}}}BPMNShape"):
        b = sh.find("dc:Bounds", NS)
        shapes[sh.get("bpmnElement")] = tuple(float(b.get(a)) for a in ("x", "y", "width", "height"))
    edges = {ed.get("bpmnElement"): [(float(w.get("x")), float(w.get("y"))) for w in ed.findall("di:waypoint", NS)]
             for ed in root.iter(f"{{{NS['bpmndi']}}}BPMNEdge")}
    return root, nodes, flows, lane_of, shapes, edges


def test_the_library_deploys_as_four_processes(kk):
    assert {d.key for d in kk.definitions.list(latest_only=True)} == KEYS


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_element_is_drawn(path):
    root, nodes, flows, lane_of, shapes, edges = _doc(path)
    assert not [n for n in nodes if n not in shapes], "flow nodes without a shape"
    assert all(lane.get("id") in shapes for lane in root.iter(f"{{{BPMN}}}lane"))
    assert all(p.get("id") in shapes for p in root.iter(f"{{{BPMN}}}participant"))
    for fid, f in flows.items():
        pts = edges.get(fid)
        assert pts and len(pts) >= 2, f"flow {fid} has no edge"
        for a, b in zip(pts, pts[1:], strict=False):
            assert a[0] == b[0] or a[1] == b[1], f"flow {fid} has a diagonal segment"
        for end, ref in ((pts[0], f.get("sourceRef")), (pts[-1], f.get("targetRef"))):
            x, y, w, h = shapes[ref]
            assert x - 2 <= end[0] <= x + w + 2 and y - 2 <= end[1] <= y + h + 2, f"{fid} does not touch {ref}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_shapes_do_not_overlap_and_lanes_are_stacked(path):
    root, nodes, flows, lane_of, shapes, edges = _doc(path)

    def ancestors(el):
        return {a.get("id") for a in el.iterancestors() if a.get("id")}

    ids = list(nodes)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            if a in ancestors(nodes[b]) or b in ancestors(nodes[a]):
                continue
            if b == nodes[a].get("attachedToRef") or a == nodes[b].get("attachedToRef"):
                continue
            ra, rb = shapes[a], shapes[b]
            overlap = ra[0] < rb[0] + rb[2] and rb[0] < ra[0] + ra[2] and ra[1] < rb[1] + rb[3] and rb[1] < ra[1] + ra[3]
            assert not overlap, f"{a} overlaps {b}"
    lanes = sorted((shapes[lane.get("id")] for lane in root.iter(f"{{{BPMN}}}lane")), key=lambda r: r[1])
    for upper, lower in zip(lanes, lanes[1:], strict=False):
        assert upper[1] + upper[3] == lower[1]
    for nid, lane in lane_of.items():
        if _local(nodes[nid]) == "subProcess":
            continue
        x, y, w, h = shapes[nid]
        lane_box = next(shapes[ln.get("id")] for ln in root.iter(f"{{{BPMN}}}lane") if ln.get("name") == lane)
        assert lane_box[1] <= y + h / 2 <= lane_box[1] + lane_box[3], f"{nid} is drawn outside lane {lane}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_sequence_flow_references_are_consistent(path):
    root, nodes, flows, *_ = _doc(path)
    element_ids = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")
                   and etree.QName(el).namespace == BPMN}
    assert not element_ids & {"Start", "End"}
    for nid, n in nodes.items():
        for tag, end in (("incoming", "targetRef"), ("outgoing", "sourceRef")):
            for ref in n.findall(f"bpmn:{tag}", NS):
                assert ref.text in flows and flows[ref.text].get(end) == nid, f"{nid} <{tag}> {ref.text}"
    for fid, f in flows.items():
        assert fid in [o.text for o in nodes[f.get("sourceRef")].findall("bpmn:outgoing", NS)]
        assert fid in [i.text for i in nodes[f.get("targetRef")].findall("bpmn:incoming", NS)]
    # SpiffWorkflow looks elements up by id across the document: a form field must not share one
    for field in root.iter(f"{CAM}formField"):
        assert field.get("id") not in element_ids, f"form field id {field.get('id')} is also an element id"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_user_tasks_have_a_form_a_due_date_a_lane_and_a_forum_with_members(path):
    root, nodes, flows, lane_of, *_ = _doc(path)
    members = members_by_forum()
    for ut in root.iter(f"{{{BPMN}}}userTask"):
        tid = ut.get("id")
        assert ut.get(f"{CAM}formKey"), tid
        assert ut.get(f"{CAM}dueDate"), tid
        assert tid in lane_of, f"{tid} is in no lane"
        groups = ut.get(f"{CAM}candidateGroups")
        if groups and "${" in groups:
            continue  # resolved at run time; the values are checked in the process tests
        for forum in [g.strip() for g in groups.split(",")] if groups else [lane_of[tid]]:
            assert members.get(forum), f"{tid}: forum {forum!r} is missing or has no members"
    text = path.read_text(encoding="utf-8")
    for forum in re.findall(r'next_meeting\((?:"|&quot;)([^"&]+)(?:"|&quot;)\)', text):
        assert forum in members, f"next_meeting of unknown forum {forum!r}"


def test_routing_table_outputs_are_forums_with_members():
    dmn = (PROCESSES / "henvendelse_routing.dmn").read_text(encoding="utf-8")
    outputs = re.findall(r"<outputEntry[^>]*>\s*<text>\"([^\"]+)\"</text>", dmn)
    members = members_by_forum()
    assert len(outputs) == 7
    assert all(members.get(o) for o in outputs), outputs


def test_organisation_has_the_memo_forums_and_the_demo_roles():
    doc = organisation()
    forums = {f["name"]: f for f in doc["forums"]}
    assert {n: forums[n]["level"] for n in ("Borgmesterforum", "Partnerskabsforum", "Tværkommunal styregruppe",
                                             "Samarbejdsforum", "Styringsdialog")} == {
        "Borgmesterforum": 1, "Partnerskabsforum": 1, "Tværkommunal styregruppe": 2, "Samarbejdsforum": 2,
        "Styringsdialog": 3}
    assert sum(f["kind"] == "lokaludvalg" for f in forums.values()) == 12
    assert {n for n, f in forums.items() if f["kind"] == "committee"} == {"TMU", "SUD", "SOU", "BIU", "BUU", "KFU",
                                                                          "ØU"}
    assert {n for n, f in forums.items() if f["kind"] == "administration"} == {"TMF", "SOF", "SUF", "BIF", "BUF",
                                                                               "KFF", "ØKF"}
    roles = [u["role"] for u in doc["users"]]
    assert "owner" in roles and "admin" in roles
    assert all(re.fullmatch(r"[a-z0-9]+", u["username"]) for u in doc["users"])
    assert all(m for m in members_by_forum().values())
    assert {h["name"] for h in doc["housing_organisations"] if not h["fictional"]} == {
        "fsb", "AKB København", "SAB", "3B", "AAB", "DFB", "Sporvejsfunktionærernes Boligforening", "Lejerbo", "VIBO"}
