"""History: the append-only audit trail."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload, load_only

from ..errors import InvalidInputError
from ..models import AuditEvent, Comment, Definition, HumanTask, Instance, TaskCandidate
from ..views import AuditView, TaskView, _iso

if TYPE_CHECKING:
    from ..clock import Clock
    from ..projection import Projector
    from ..uow import UnitOfWorkFactory
    from .runtime import RuntimeService

EXPORT_FORMAT = "almenflow-history/1"


class HistoryService:
    def __init__(self, uow: UnitOfWorkFactory,
                 clock: Clock,
                 projector: Projector,
                 runtime: RuntimeService) -> None:
        self._uow = uow
        self._clock = clock
        self._projector = projector
        self._runtime = runtime

    def events(self, instance_id: int | None = None, type_: str | None = None, limit: int = 1000) -> list[AuditView]:
        with self._uow.read() as uow:
            session = uow.session
            q = select(AuditEvent)
            if instance_id is not None:
                q = q.where(AuditEvent.instance_id == instance_id)
            if type_ is not None:
                q = q.where(AuditEvent.type == type_)
            return [AuditView.of(e) for e in session.scalars(q.order_by(AuditEvent.id).limit(limit))]

    def add_comment(self, instance_id: int, user: str, text: str, task_id: int | None = None) -> dict[str, Any]:
        text = (text or "").strip()
        if not text:
            raise InvalidInputError("a comment cannot be empty")
        if len(text) > 5000:
            raise InvalidInputError("a comment may be at most 5000 characters")
        with self._uow.write() as uow:
            session = uow.session
            inst = self._runtime.instance(session, instance_id)
            comment = Comment(instance_id=inst.id, task_id=task_id, user=user, time=self._clock.now(), text=text)
            session.add(comment)
            self._projector.audit(session, inst, "comment_added", user=user, task_id=task_id,
                                         details={"text": text})
            session.flush()
            return {"id": comment.id, "user": user, "time": _iso(comment.time), "text": text, "task_id": task_id}

    def comments(self, instance_id: int) -> list[dict[str, Any]]:
        with self._uow.read() as uow:
            session = uow.session
            rows = session.scalars(select(Comment).where(Comment.instance_id == instance_id).order_by(Comment.id))
            return [{"id": c.id, "user": c.user, "time": _iso(c.time), "text": c.text, "task_id": c.task_id}
                    for c in rows]

    def export(self, instance_id: int) -> dict[str, Any]:
        """A case's whole history as plain JSON data, e.g. to archive before the history cleanup
        removes it: the instance, every audit event, every comment and every human task."""
        with self._uow.write() as uow:
            session = uow.session
            inst = self._runtime.instance(session, instance_id)
            d = inst.definition
            events = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == inst.id)
                                     .order_by(AuditEvent.id)).all()
            comments = session.scalars(select(Comment).where(Comment.instance_id == inst.id).order_by(Comment.id))
            tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == inst.id)
                                    .order_by(HumanTask.id)).all()
            removal = (inst.ended_at + timedelta(days=d.history_ttl_days)
                       if inst.ended_at is not None and d.history_ttl_days is not None else None)
            return {
                "format": EXPORT_FORMAT,
                "exported_at": _iso(self._clock.now()),
                "instance": {
                    "id": inst.id, "business_key": inst.business_key, "status": inst.status,
                    "process": {"key": d.key, "version": d.version, "name": d.name},
                    "started_at": _iso(inst.started_at), "started_by": inst.started_by,
                    "ended_at": _iso(inst.ended_at), "parent_instance_id": inst.parent_instance_id,
                    "incident": ({"message": inst.incident_message, "element_id": inst.incident_element_id,
                                  "time": _iso(inst.incident_at)} if inst.status == "incident" else None),
                    "history_ttl_days": d.history_ttl_days, "removal_due_at": _iso(removal),
                    "variables": dict(inst.variables or {}),
                },
                "events": [AuditView.of(e).to_dict() for e in events],
                "comments": [{"id": c.id, "user": c.user, "time": _iso(c.time), "text": c.text, "task_id": c.task_id}
                             for c in comments],
                "tasks": [{k: v for k, v in TaskView.of(t, inst).to_dict().items()
                           if k not in ("process_key", "process_name", "business_key")} for t in tasks],
            }

    def forum_decisions(self, forum: str, limit: int = 10) -> list[dict[str, Any]]:
        """The forum's latest completed tasks, newest first, each with the data submitted with it
        (from its task_completed audit event) and the form fields that describe that data."""
        if not 1 <= limit <= 500:
            raise InvalidInputError("limit must be between 1 and 500")
        with self._uow.read() as uow:
            session = uow.session
            tasks = session.scalars(
                select(HumanTask)
                .where(HumanTask.status == "completed",
                       HumanTask.id.in_(select(TaskCandidate.task_id).where(TaskCandidate.forum == forum)))
                .options(load_only(HumanTask.id, HumanTask.instance_id, HumanTask.name, HumanTask.element_id,
                                   HumanTask.fields, HumanTask.completed_at, HumanTask.completed_by),
                         joinedload(HumanTask.instance).load_only(Instance.id, Instance.business_key,
                                                                  Instance.definition_id, Instance.status)
                         .joinedload(Instance.definition).load_only(Definition.key, Definition.name))
                .order_by(HumanTask.completed_at.desc(), HumanTask.id.desc()).limit(limit)).all()
            if not tasks:
                return []
            # Found through the (instance_id, id) index: only the events of these tasks' cases are read.
            events = session.execute(
                select(AuditEvent.task_id, AuditEvent.details)
                .where(AuditEvent.instance_id.in_({t.instance_id for t in tasks}),
                       AuditEvent.type == "task_completed",
                       AuditEvent.task_id.in_([t.id for t in tasks]))).all()
            data = {task_id: dict((details or {}).get("data") or {}) for task_id, details in events}
            return [{"task_id": t.id, "name": t.name, "element_id": t.element_id, "instance_id": t.instance_id,
                     "business_key": t.instance.business_key, "process_key": t.instance.definition.key,
                     "process_name": t.instance.definition.name, "completed_at": _iso(t.completed_at),
                     "completed_by": t.completed_by, "data": data.get(t.id, {}), "fields": list(t.fields or [])}
                    for t in tasks]
