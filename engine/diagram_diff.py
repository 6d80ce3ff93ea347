"""What changed between two versions of a BPMN diagram: elements added, removed and changed.

A pure function over two XML documents (loaded with the hardened parser). An *element* is a flow node,
sequence flow, lane, artifact, participant or message flow, or a root-level message/signal/error
definition; everything nested in it (event definitions, conditions, scripts, camunda:formData, other
extension elements, loop characteristics) is part of that element's content. Two elements with the
same id are *changed* when their type, name, attributes or content differ. The diagram layout (DI) is
not an element: a moved shape only sets `layout_changed`.

    >>> d = diff_documents(old_xml, new_xml, process_id="testsag")
    >>> [e.id for e in d.added], [c.changes for c in d.changed]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lxml import etree

from .parsing import BPMN_NS, CAMUNDA_NS, parse_form_fields
from .xml_loader import parse_xml

BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
PREFIXES = {BPMN_NS: "bpmn", CAMUNDA_NS: "camunda", XSI_NS: "xsi"}

# Containers whose BPMN children with an id are elements in their own right.
CONTAINERS = {"process", "subProcess", "transaction", "adHocSubProcess", "collaboration", "laneSet"}
ROOT_ELEMENTS = {"message", "signal", "error", "escalation"}
# Children that only repeat what the sequence flows say.
REDUNDANT = {"incoming", "outgoing", "flowNodeRef", "childLaneSet"}
# Content kinds, in the order a summary lists them.
CONTENT_KINDS = ("documentation", "condition", "event", "script", "form", "extensions", "loop", "other")


@dataclass(frozen=True)
class ElementInfo:
    id: str
    type: str
    name: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ElementChange:
    """One element present in both versions. `changes` names what differs: "type", "name", "lane",
    "attribute:<qualified name>" (e.g. "attribute:camunda:candidateGroups") or a content kind
    ("documentation", "condition", "event", "script", "form", "extensions", "loop", "other")."""

    id: str
    type: str
    name: str | None
    old_type: str
    old_name: str | None
    changes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DiagramDiff:
    added: list[ElementInfo] = field(default_factory=list)
    removed: list[ElementInfo] = field(default_factory=list)
    changed: list[ElementChange] = field(default_factory=list)
    unchanged: int = 0
    layout_changed: bool = False

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {"added": [e.to_dict() for e in self.added], "removed": [e.to_dict() for e in self.removed],
                "changed": [c.to_dict() for c in self.changed], "unchanged": self.unchanged,
                "layout_changed": self.layout_changed}


def diff_documents(old: bytes | str, new: bytes | str, process_id: str | None = None) -> DiagramDiff:
    """Compare two BPMN documents. With `process_id`, only that process (and the collaboration and
    root definitions around it) is compared; a file may hold several. Raises XmlRejected for XML the
    hardened loader refuses."""
    old_root, new_root = parse_xml(old), parse_xml(new)
    before, after = elements(old_root, process_id), elements(new_root, process_id)
    result = DiagramDiff(layout_changed=_layout(old_root) != _layout(new_root))
    for element_id, fp in after.items():
        if element_id not in before:
            result.added.append(ElementInfo(element_id, fp["type"], fp["name"]))
            continue
        changes = _compare(before[element_id], fp)
        if changes:
            old_fp = before[element_id]
            result.changed.append(ElementChange(element_id, fp["type"], fp["name"], old_fp["type"],
                                                old_fp["name"], changes))
        else:
            result.unchanged += 1
    result.removed = [ElementInfo(i, fp["type"], fp["name"]) for i, fp in before.items() if i not in after]
    return result


def element_names(content: bytes | str, process_id: str | None = None) -> dict[str, str]:
    """{element id: name} of every named element (for showing step names instead of ids)."""
    return {i: fp["name"] for i, fp in elements(parse_xml(content), process_id).items() if fp["name"]}


def elements(root: Any, process_id: str | None = None) -> dict[str, dict[str, Any]]:
    """{element id: fingerprint} in document order. A fingerprint holds type, name, attributes, lane and
    one canonical text per content kind."""
    found: dict[str, dict[str, Any]] = {}
    lanes = _lane_of(root)
    tops = [el for el in root if _is_bpmn(el)]
    for top in tops:  # processes and root definitions first: message flows refer to their elements
        local = etree.QName(top).localname
        if local == "process" and process_id in (None, top.get("id")) or local in ROOT_ELEMENTS:
            _add(top, found, lanes)
            _walk(top, found, lanes)
    for top in tops:
        if etree.QName(top).localname == "collaboration":
            if process_id is None:
                _add(top, found, lanes)
                _walk(top, found, lanes)
            else:
                _walk_collaboration(top, process_id, found)
    return found


def _walk(container: Any, found: dict[str, dict[str, Any]], lanes: dict[str, str]) -> None:
    for child in container:
        if not _is_bpmn(child):
            continue
        local = etree.QName(child).localname
        if child.get("id") and local not in REDUNDANT and local != "laneSet":
            _add(child, found, lanes)
        if local in CONTAINERS:
            _walk(child, found, lanes)
        elif local == "lane":
            for sub in child:
                if _is_bpmn(sub) and etree.QName(sub).localname == "childLaneSet":
                    _walk(sub, found, lanes)


def _walk_collaboration(collab: Any, process_id: str, found: dict[str, dict[str, Any]]) -> None:
    """Only the participant of this process and the message flows that touch it."""
    participants = {p.get("id") for p in collab.iterfind(f"{{{BPMN_NS}}}participant")
                    if p.get("processRef") == process_id}
    for child in collab:
        if not _is_bpmn(child) or not child.get("id"):
            continue
        local = etree.QName(child).localname
        if local == "participant" and child.get("id") in participants:
            _add(child, found, {})
        elif local == "messageFlow":
            found_ids = set(found)
            if {child.get("sourceRef"), child.get("targetRef")} & (participants | found_ids):
                _add(child, found, {})


def _is_bpmn(el: Any) -> bool:
    return isinstance(el.tag, str) and etree.QName(el).namespace == BPMN_NS


def _lane_of(root: Any) -> dict[str, str]:
    lanes: dict[str, str] = {}
    for lane in root.iter(f"{{{BPMN_NS}}}lane"):
        for ref in lane.iterfind(f"{{{BPMN_NS}}}flowNodeRef"):
            node = (ref.text or "").strip()
            if node:
                lanes[node] = lane.get("id") or ""  # the innermost lane wins: iter() visits it later
    return lanes


def _add(el: Any, found: dict[str, dict[str, Any]], lanes: dict[str, str]) -> None:
    element_id = el.get("id")
    local = etree.QName(el).localname
    attributes = {_qualified(k): v for k, v in el.attrib.items() if k not in ("id", "name")}
    content: dict[str, list[str]] = {kind: [] for kind in CONTENT_KINDS}
    container = local in CONTAINERS
    for child in el:
        if not isinstance(child.tag, str):
            continue
        child_local = etree.QName(child).localname
        if _is_bpmn(child) and (child_local in REDUNDANT or container and (child.get("id") or child_local in CONTAINERS)):
            continue  # a container's children are elements of their own
        if child_local == "extensionElements":
            _extensions(el, child, content)
        else:
            content[_kind(child_local)].append(_canonical(child))
    found[element_id] = {
        "type": local, "name": el.get("name"), "attributes": attributes, "lane": lanes.get(element_id),
        **{kind: "\n".join(sorted(texts)) if kind in ("event", "other") else "\n".join(texts)
           for kind, texts in content.items()},
    }


def _kind(local: str) -> str:
    if local == "documentation":
        return "documentation"
    if local == "conditionExpression":
        return "condition"
    if local.endswith("EventDefinition") or local == "eventDefinitionRef":
        return "event"
    if local == "script":
        return "script"
    if local.endswith("LoopCharacteristics") or local in ("loopCardinality", "completionCondition"):
        return "loop"
    return "other"


def _extensions(owner: Any, ext: Any, content: dict[str, list[str]]) -> None:
    form = owner.find(f"{{{BPMN_NS}}}extensionElements/{{{CAMUNDA_NS}}}formData")
    if form is not None:
        content["form"].append(repr(parse_form_fields(owner)))
    for child in ext:
        if isinstance(child.tag, str) and child is not form:
            content["extensions"].append(_canonical(child))


def _canonical(el: Any) -> str:
    """The subtree as text, without ids of nested parts (modellers regenerate them freely) and with
    attributes in a fixed order, so only a real change shows."""
    if not isinstance(el.tag, str):
        return ""
    attrs = " ".join(f'{_qualified(k)}="{v}"' for k, v in sorted(el.attrib.items()) if k != "id")
    inner = "".join(_canonical(c) for c in el)
    text = (el.text or "").strip()
    return f"<{_qualified(el.tag)} {attrs}>{text}{inner}</>"


def _qualified(name: str) -> str:
    qn = etree.QName(name)
    if not qn.namespace:
        return qn.localname
    prefix = PREFIXES.get(qn.namespace)
    return f"{prefix}:{qn.localname}" if prefix else f"{{{qn.namespace}}}{qn.localname}"


def _compare(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changes = [key for key in ("type", "name", "lane") if old[key] != new[key]]
    for attr in sorted(set(old["attributes"]) | set(new["attributes"])):
        if old["attributes"].get(attr) != new["attributes"].get(attr):
            changes.append(f"attribute:{attr}")
    changes.extend(kind for kind in CONTENT_KINDS if old[kind] != new[kind])
    return changes


def _layout(root: Any) -> list[tuple[str, str]]:
    """Positions and sizes of every shape, label and edge; an empty <BPMNLabel/> (bpmn-js adds one after
    a label is edited) or a regenerated DI id is not a layout change."""
    shapes = []
    for el in root.iter(f"{{{BPMNDI_NS}}}BPMNShape", f"{{{BPMNDI_NS}}}BPMNEdge"):
        geometry = [_canonical(g) for g in el.iter() if isinstance(g.tag, str) and g.attrib and g is not el]
        flags = sorted((k, v) for k, v in el.attrib.items() if k not in ("id", "bpmnElement"))
        shapes.append((el.get("bpmnElement") or "", repr((flags, geometry))))
    return sorted(shapes)
