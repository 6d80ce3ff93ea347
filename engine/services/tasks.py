"""Human tasks: query inboxes, claim, and complete with validated form data."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, contains_eager

from ..errors import (
    FormValidationError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    TaskAlreadyClaimedError,
    TaskAlreadyCompletedError,
)
from ..execution import advance
from ..forms import validate_form
from ..models import Definition, HumanTask, Instance, TaskCandidate
from ..views import TaskView
from .runtime import check_data

# Inbox rows need the case header, never the workflow state blob.
INSTANCE_HEADER = (Instance.id, Instance.business_key, Instance.status, Instance.definition_id, Instance.version)
DEFINITION_HEADER = (Definition.id, Definition.key, Definition.name, Definition.version)


class TaskService:
    def __init__(self, engine: Any) -> None:
        self._engine = engine

    # -- queries ----------------------------------------------------------------------------
    def query(self, forum: str | None = None, user: str | None = None, instance_id: int | None = None,
              status: str = "open", limit: int | None = None, offset: int = 0) -> list[TaskView]:
        with self._engine.db.transaction() as session:
            q = (select(HumanTask).join(Instance, HumanTask.instance_id == Instance.id)
                 .options(contains_eager(HumanTask.instance).load_only(*INSTANCE_HEADER)
                          .joinedload(Instance.definition).load_only(*DEFINITION_HEADER)))
            if status != "all":
                q = q.where(HumanTask.status == status)
            if forum is not None:
                q = q.where(HumanTask.id.in_(select(TaskCandidate.task_id).where(TaskCandidate.forum == forum)))
            if instance_id is not None:
                q = q.where(HumanTask.instance_id == instance_id)
            if user is not None:
                forums = self._engine.identity.forums_of(user, session)
                candidates = select(TaskCandidate.task_id).where(TaskCandidate.forum.in_(forums))
                q = q.where(or_(HumanTask.assignee == user, HumanTask.id.in_(candidates)) if forums
                            else HumanTask.assignee == user)
            q = q.order_by(HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.id)
            if limit:
                q = q.limit(limit).offset(offset)
            return [TaskView.of(t) for t in session.scalars(q)]

    def get(self, task_id: int) -> TaskView:
        with self._engine.db.transaction() as session:
            return TaskView.of(self._row(session, task_id))

    @staticmethod
    def _row(session: Session, task_id: int) -> HumanTask:
        row = session.get(HumanTask, task_id)
        if row is None:
            raise NotFoundError(f"no task {task_id}")
        return row

    def may_act(self, task: HumanTask | TaskView, user: str, session: Session | None = None) -> bool:
        """A member of one of the task's forums, its assignee, or an administrator."""
        identity = self._engine.identity
        if identity.is_admin(user, session):
            return True
        if task.assignee == user:
            return True
        if task.assignee and task.assignee != user:
            return False
        forums = set(identity.forums_of(user, session))
        return bool(forums & set(task.candidate_groups or ([task.forum] if task.forum else [])))

    def _check_actor(self, session: Session, row: HumanTask, user: str | None, action: str) -> str:
        if not user:
            raise PermissionDeniedError(f"a user is required to {action} a task")
        if not self._engine.identity.exists(user, session):
            raise PermissionDeniedError(f"unknown or inactive user '{user}'")
        if row.status == "completed":
            raise TaskAlreadyCompletedError(f"task {row.id} was already completed by {row.completed_by}")
        if row.status == "cancelled":
            raise InvalidStateError(f"task {row.id} is no longer open (the case moved on)")
        if not self.may_act(row, user, session):
            who = f"assigned to {row.assignee}" if row.assignee else f"for forum '{row.forum}'"
            raise PermissionDeniedError(f"user '{user}' may not {action} task {row.id} ({who})")
        inst = row.instance
        if inst.status != "active":
            raise InvalidStateError(f"the case is {inst.status}; its tasks cannot be changed now")
        return user

    # -- claim ------------------------------------------------------------------------------
    def claim(self, task_id: int, user: str) -> TaskView:
        def work(session: Session) -> TaskView:
            row = self._row(session, task_id)
            if row.assignee and row.assignee != user and row.status == "open":
                raise TaskAlreadyClaimedError(f"task {task_id} is already claimed by {row.assignee}")
            self._check_actor(session, row, user, "claim")
            row.assignee = user
            self._engine.projector.audit(session, row.instance, "claimed", user=user, element_id=row.element_id,
                                         task_id=row.id)
            return TaskView.of(row)
        return self._engine.runtime.retrying(work)

    def unclaim(self, task_id: int, user: str) -> TaskView:
        def work(session: Session) -> TaskView:
            row = self._row(session, task_id)
            if row.assignee is None:
                raise InvalidStateError(f"task {task_id} is not claimed")
            if row.assignee != user and not self._engine.identity.is_admin(user, session):
                raise PermissionDeniedError(f"task {task_id} is claimed by {row.assignee}")
            row.assignee = None
            self._engine.projector.audit(session, row.instance, "unclaimed", user=user,
                                         element_id=row.element_id, task_id=row.id)
            return TaskView.of(row)
        return self._engine.runtime.retrying(work)

    def assign(self, task_id: int, assignee: str | None, by: str) -> TaskView:
        """Administrators hand a task to someone (or back to the forum with None)."""
        def work(session: Session) -> TaskView:
            identity = self._engine.identity
            if not identity.is_admin(by, session):
                raise PermissionDeniedError("only an administrator may reassign tasks")
            row = self._row(session, task_id)
            if row.status != "open":
                raise InvalidStateError(f"task {task_id} is {row.status}")
            if assignee is not None and not identity.exists(assignee, session):
                raise InvalidInputError(f"unknown user '{assignee}'")
            row.assignee = assignee
            self._engine.projector.audit(session, row.instance, "assigned", user=by, element_id=row.element_id,
                                         task_id=row.id, details={"assignee": assignee})
            return TaskView.of(row)
        return self._engine.runtime.retrying(work)

    # -- complete ---------------------------------------------------------------------------
    def validate(self, task_id: int, data: dict[str, Any], locale: str = "da") -> dict[str, Any]:
        row_fields = self.get(task_id).fields
        try:
            return validate_form(row_fields, check_data(data), locale)
        except ValidationError as exc:
            raise FormValidationError(exc.normalized_messages()) from None

    def complete(self, task_id: int, user: str, data: dict[str, Any] | None = None,
                 locale: str = "da") -> TaskView:
        data = check_data(data)

        def work(session: Session) -> TaskView:
            row = self._row(session, task_id)
            self._check_actor(session, row, user, "complete")
            try:
                cleaned = validate_form(row.fields or [], data, locale)
            except ValidationError as exc:
                raise FormValidationError(exc.normalized_messages()) from None
            inst = row.instance
            wf = self._engine.runtime.load(session, inst)
            task = self._find_spiff_task(wf, row.spiff_task_id)
            if task is None or task.state != TaskState.READY:
                raise InvalidStateError(f"task {task_id} is not ready in the workflow any more")
            task.set_data(**cleaned)
            task.run()
            row.status = "completed"
            row.completed_at = self._engine.clock.now()
            row.completed_by = user
            if row.assignee is None:
                row.assignee = user
            self._engine.projector.audit(session, inst, "task_completed", user=user, element_id=row.element_id,
                                         task_id=row.id, details={"data": cleaned, "name": row.name})
            step = advance(wf)
            self._engine.projector.persist(session, inst, wf, user=user, step=step)
            return TaskView.of(row)

        return self._engine.runtime.retrying(work)

    @staticmethod
    def _find_spiff_task(wf: Any, spiff_id: str) -> Any:
        from uuid import UUID

        try:
            return wf.get_task_from_id(UUID(spiff_id))
        except Exception:
            return None

    def next_for(self, instance_id: int, user: str) -> TaskView | None:
        """The user's next open task in the same case, for "continue" after submitting a form."""
        for task in self.query(instance_id=instance_id):
            if self.may_act(task, user):
                return task
        return None
