"""Plain read models the services return: no ORM objects leak to callers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from .models import AuditEvent, Definition, HumanTask, Instance


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass
class DefinitionInfo:
    id: int
    key: str
    version: int
    name: str
    deployed_by: str | None
    deployed_at: str | None
    resource_name: str
    start_trigger: dict[str, Any] | None = None
    start_form: list[dict[str, Any]] = field(default_factory=list)
    history_ttl_days: int | None = None

    @classmethod
    def of(cls, d: Definition, resource_name: str | None = None) -> DefinitionInfo:
        trigger = None
        if d.start_timer:
            trigger = {"kind": "timer", "expression": d.start_timer, "next": _iso(d.next_start_at)}
        elif d.start_message:
            trigger = {"kind": "message", "name": d.start_message}
        elif d.start_signal:
            trigger = {"kind": "signal", "name": d.start_signal}
        return cls(d.id, d.key, d.version, d.name, d.deployed_by, _iso(d.deployed_at),
                   resource_name if resource_name is not None else d.resource.name, trigger,
                   list(d.start_form or []), d.history_ttl_days)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TaskView:
    id: int
    name: str
    element_id: str
    forum: str | None
    candidate_groups: list[str]
    instance_id: int
    assignee: str | None
    due: str | None
    created: str
    fields: list[dict[str, Any]]
    status: str
    documentation: str | None = None
    completed_by: str | None = None
    completed_at: str | None = None
    process_key: str | None = None
    process_name: str | None = None
    business_key: str | None = None
    candidate_users: list[str] = field(default_factory=list)
    follow_up: str | None = None
    priority: int | None = None

    @classmethod
    def of(cls, t: HumanTask | SimpleNamespace, inst: Instance | None = None, definition: Any = None) -> TaskView:
        """`t`: a task row, or its values as attributes (a row just written, UnitOfWork.written_tasks).
        `definition`: anything with key and name (the definition's header), else inst.definition."""
        inst = inst or t.instance
        d = definition if definition is not None else (inst.definition if inst else None)
        return cls(t.id, t.name, t.element_id, t.forum, list(t.candidate_groups or []), t.instance_id,
                   t.assignee, _iso(t.due_at), _iso(t.created_at) or "", list(t.fields or []), t.status,
                   t.documentation, t.completed_by, _iso(t.completed_at),
                   d.key if d is not None else None, d.name if d is not None else None,
                   inst.business_key if inst else None, list(t.candidate_users or []), _iso(t.follow_up_at),
                   t.priority)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AuditView:
    id: int
    type: str
    time: str
    user: str | None
    element_id: str | None
    task_id: int | None
    details: dict[str, Any]

    @classmethod
    def of(cls, e: AuditEvent) -> AuditView:
        return cls(e.id, e.type, _iso(e.time) or "", e.user, e.element_id, e.task_id, dict(e.details or {}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WaitView:
    kind: str
    element_id: str
    name: str | None
    due: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class InstanceView:
    id: int
    status: str
    definition: dict[str, Any]
    business_key: str | None
    data: dict[str, Any]
    started_at: str | None
    started_by: str | None
    ended_at: str | None
    next_due: str | None
    incident: dict[str, Any] | None
    tasks: list[TaskView] = field(default_factory=list)
    history: list[AuditView] = field(default_factory=list)
    waits: list[WaitView] = field(default_factory=list)
    completed_elements: list[str] = field(default_factory=list)
    active_elements: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return d


def instance_view(inst: Instance, definition: Any, tasks: list[TaskView], history: list[AuditView],
                  waits: list[WaitView], elements: tuple[set[str], set[str]] | None = None) -> InstanceView:
    """A case as callers see it, from its row (and its stored diagram projection, or `elements`:
    completed and active element ids) and the parts given."""
    incident = None
    if inst.status == "incident":
        incident = {"message": inst.incident_message, "element_id": inst.incident_element_id,
                    "time": _iso(inst.incident_at)}
    completed, active = elements or (set(inst.completed_elements or []), set(inst.active_elements or []))
    active = set(active)
    if inst.incident_element_id:
        active.add(inst.incident_element_id)
    return InstanceView(
        id=inst.id, status=inst.status,
        definition={"key": definition.key, "version": definition.version, "name": definition.name},
        business_key=inst.business_key, data=dict(inst.variables or {}),
        started_at=_iso(inst.started_at), started_by=inst.started_by, ended_at=_iso(inst.ended_at),
        next_due=_iso(inst.next_due_at), incident=incident, tasks=tasks, history=history, waits=waits,
        completed_elements=sorted(set(completed) - active), active_elements=sorted(active))


def instance_summary(inst: Instance) -> dict[str, Any]:
    return {
        "id": inst.id,
        "status": inst.status,
        "definition": {"key": inst.definition.key, "version": inst.definition.version,
                       "name": inst.definition.name},
        "business_key": inst.business_key,
        "started_at": _iso(inst.started_at),
        "started_by": inst.started_by,
        "ended_at": _iso(inst.ended_at),
        "next_due": _iso(inst.next_due_at),
        "incident": inst.incident_message,
    }
