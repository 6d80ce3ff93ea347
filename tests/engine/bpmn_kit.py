"""Tiny builders for the BPMN documents the engine tests deploy (no DI: the engine does not need it)."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from engine.parsing import Resource

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">\n'
)


def definitions(*parts: str) -> str:
    return HEADER + "\n".join(parts) + "\n</bpmn:definitions>\n"


def process(pid: str, *body: str, name: str | None = None) -> str:
    name_attr = f" name={quoteattr(name)}" if name else ""
    return f'<bpmn:process id="{pid}"{name_attr} isExecutable="true">\n' + "\n".join(body) + "\n</bpmn:process>"


def doc(pid: str, *body: str, extra: str = "", name: str | None = None) -> str:
    """One executable process as a complete document."""
    return definitions(process(pid, *body, name=name), extra) if extra else definitions(process(pid, *body, name=name))


def res(text: str, name: str = "test.bpmn") -> Resource:
    return Resource(name, text.encode("utf-8"))


def start(id_: str = "start", inner: str = "") -> str:
    return f'<bpmn:startEvent id="{id_}">{inner}</bpmn:startEvent>'


def end(id_: str = "end") -> str:
    return f'<bpmn:endEvent id="{id_}"/>'


def flow(src: str, tgt: str, cond: str | None = None, id_: str | None = None) -> str:
    id_ = id_ or f"f_{src}_{tgt}"
    if cond is None:
        return f'<bpmn:sequenceFlow id="{id_}" sourceRef="{src}" targetRef="{tgt}"/>'
    return (f'<bpmn:sequenceFlow id="{id_}" sourceRef="{src}" targetRef="{tgt}">'
            f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(cond)}'
            f'</bpmn:conditionExpression></bpmn:sequenceFlow>')


def chain(*ids: str) -> str:
    return "\n".join(flow(a, b) for a, b in zip(ids, ids[1:], strict=False))


def script(id_: str, code: str) -> str:
    return (f'<bpmn:scriptTask id="{id_}" scriptFormat="python"><bpmn:script>{escape(code)}'
            f'</bpmn:script></bpmn:scriptTask>')


def field(id_: str, type_: str = "string", label: str | None = None, *, values: list[str] | None = None,
          props: dict[str, str] | None = None, **constraints: object) -> str:
    """A camunda:formField; constraints: required=True, min=1, max=9, minlength=2, maxlength=5."""
    inner = ""
    for value in values or []:
        inner += f'<camunda:value id="{value}" name="{value.title()}"/>'
    if props:
        inner += "<camunda:properties>" + "".join(
            f'<camunda:property id="{k}" value="{v}"/>' for k, v in props.items()) + "</camunda:properties>"
    if constraints:
        inner += "<camunda:validation>"
        for k, v in constraints.items():
            inner += f'<camunda:constraint name="{k}"/>' if v is True else f'<camunda:constraint name="{k}" config="{v}"/>'
        inner += "</camunda:validation>"
    return f'<camunda:formField id="{id_}" label="{label or id_}" type="{type_}">{inner}</camunda:formField>'


def user_task(id_: str, name: str | None = None, *fields: str, attrs: str = "", inner: str = "") -> str:
    form = ("<bpmn:extensionElements><camunda:formData>" + "".join(fields)
            + "</camunda:formData></bpmn:extensionElements>") if fields else ""
    return f'<bpmn:userTask id="{id_}" name="{name or id_}" {attrs}>{form}{inner}</bpmn:userTask>'


def lanes(**members: list[str]) -> str:
    """lanes(Sekretariat=["start", "t1"]) -> a laneSet whose lane names are the forums."""
    out = '<bpmn:laneSet id="LaneSet_1">'
    for i, (lane, refs) in enumerate(members.items()):
        out += f'<bpmn:lane id="Lane_{i}" name="{lane}">' + "".join(
            f"<bpmn:flowNodeRef>{r}</bpmn:flowNodeRef>" for r in refs) + "</bpmn:lane>"
    return out + "</bpmn:laneSet>"


def timer(kind: str, value: str) -> str:
    """kind: timeDuration | timeDate | timeCycle."""
    return (f'<bpmn:timerEventDefinition><bpmn:{kind} xsi:type="bpmn:tFormalExpression">{escape(value)}'
            f'</bpmn:{kind}></bpmn:timerEventDefinition>')


def message(id_: str, name: str) -> str:
    return f'<bpmn:message id="{id_}" name="{name}"/>'


def user_process(pid: str = "p", *fields: str, attrs: str = "", forum: str = "Sekretariat") -> str:
    """start -> one user task 'task' (in lane `forum`) -> end."""
    return doc(pid, lanes(**{forum: ["start", "task", "end"]}), start(), user_task("task", "Task", *fields, attrs=attrs),
               end(), chain("start", "task", "end"))
