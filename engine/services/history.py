"""History: the append-only audit trail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..errors import InvalidInputError
from ..models import AuditEvent, Comment
from ..views import AuditView, _iso


class HistoryService:
    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def events(self, instance_id: int | None = None, type_: str | None = None, limit: int = 1000) -> list[AuditView]:
        with self._engine.db.transaction() as session:
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
        with self._engine.db.transaction() as session:
            inst = self._engine.runtime.instance(session, instance_id)
            comment = Comment(instance_id=inst.id, task_id=task_id, user=user, time=self._engine.clock.now(), text=text)
            session.add(comment)
            self._engine.projector.audit(session, inst, "comment_added", user=user, task_id=task_id,
                                         details={"text": text})
            session.flush()
            return {"id": comment.id, "user": user, "time": _iso(comment.time), "text": text, "task_id": task_id}

    def comments(self, instance_id: int) -> list[dict[str, Any]]:
        with self._engine.db.transaction() as session:
            rows = session.scalars(select(Comment).where(Comment.instance_id == instance_id).order_by(Comment.id))
            return [{"id": c.id, "user": c.user, "time": _iso(c.time), "text": c.text, "task_id": c.task_id}
                    for c in rows]
