"""Human tasks: query inboxes, claim, and complete with validated form data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, or_, select
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
from ..models import Definition, HumanTask, Instance, TaskCandidate, TaskCandidateUser
from ..projection import close_task_row
from ..views import TaskView
from .runtime import check_data

TASK_SORTS = ("due", "created", "name", "process")
_ORDER: dict[str, Callable[[], tuple[Any, ...]]] = {
    "due": lambda: (HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.id),
    "created": lambda: (HumanTask.created_at.desc(), HumanTask.id.desc()),
    "name": lambda: (func.lower(HumanTask.name), HumanTask.id),
    "process": lambda: (func.lower(Definition.name), Definition.key, HumanTask.due_at.is_(None),
                        HumanTask.due_at, HumanTask.id),
}

# Inbox rows need the case header, never the workflow state blob.
INSTANCE_HEADER = (Instance.id, Instance.business_key, Instance.status, Instance.definition_id, Instance.version)
DEFINITION_HEADER = (Definition.id, Definition.key, Definition.name, Definition.version)


class TaskService:
    def __init__(self, engine: Any) -> None:
        self._engine = engine

    # -- queries ----------------------------------------------------------------------------
    def query(self, forum: str | None = None, user: str | None = None, instance_id: int | None = None,
              status: str = "open", limit: int | None = None, offset: int = 0, *,
              process_key: str | None = None, overdue: bool = False, due_before: datetime | None = None,
              has_due: bool = False, assigned: str | None = None, sort: str = "due") -> list[TaskView]:
        """Tasks matching every filter given, one page of them when `limit` is set.

        `user` limits to the user's inbox (assigned to them or a candidate forum of theirs);
        `assigned` is "me" (assigned to `user`), "unassigned", or None; `overdue` means due before
        now, `due_before` before the given time, `has_due` any due date. `sort` is one of
        TASK_SORTS: due (overdue first, undated last), created (newest first), name, process.
        Only the projection tables are read, never workflow state."""
        if sort not in TASK_SORTS:
            raise InvalidInputError(f"sort must be one of {', '.join(TASK_SORTS)}")
        if (limit is not None and limit < 0) or offset < 0:
            raise InvalidInputError("limit and offset must not be negative")
        with self._engine.uow.read() as uow:
            session = uow.session
            conditions = self._conditions(session, forum, user, instance_id, status, process_key, overdue,
                                          due_before, has_due, assigned)
            if conditions is None:
                return []
            q = (select(HumanTask).join(Instance, HumanTask.instance_id == Instance.id)
                 .join(Definition, Instance.definition_id == Definition.id)
                 .options(contains_eager(HumanTask.instance).load_only(*INSTANCE_HEADER)
                          .contains_eager(Instance.definition).load_only(*DEFINITION_HEADER))
                 .where(*conditions).order_by(*_ORDER[sort]()))
            if limit:
                q = q.limit(limit).offset(offset)
            elif offset:
                q = q.offset(offset)
            return [TaskView.of(t) for t in session.scalars(q)]

    def count(self, forum: str | None = None, user: str | None = None, instance_id: int | None = None,
              status: str = "open", *, process_key: str | None = None, overdue: bool = False,
              due_before: datetime | None = None, has_due: bool = False, assigned: str | None = None) -> int:
        """How many tasks query() with the same filters finds in all (for paging)."""
        with self._engine.uow.read() as uow:
            session = uow.session
            conditions = self._conditions(session, forum, user, instance_id, status, process_key, overdue,
                                          due_before, has_due, assigned)
            if conditions is None:
                return 0
            q = select(func.count(HumanTask.id))
            if process_key is not None:
                q = q.join(Instance, HumanTask.instance_id == Instance.id)
            return session.scalar(q.where(*conditions)) or 0

    def _conditions(self, session: Session, forum: str | None, user: str | None, instance_id: int | None,
                    status: str, process_key: str | None, overdue: bool, due_before: datetime | None,
                    has_due: bool, assigned: str | None) -> list[Any] | None:
        """SQL conditions for the filters; None when nothing can match (no need to ask the database)."""
        if status not in ("open", "completed", "cancelled", "all"):
            raise InvalidInputError("status must be open, completed, cancelled or all")
        if assigned not in (None, "me", "unassigned"):
            raise InvalidInputError("assigned must be 'me' or 'unassigned'")
        if assigned == "me" and not user:
            raise InvalidInputError("assigned='me' needs a user")
        conditions: list[Any] = []
        if status != "all":
            conditions.append(HumanTask.status == status)
        if forum is not None:
            conditions.append(HumanTask.id.in_(select(TaskCandidate.task_id).where(TaskCandidate.forum == forum)))
        if instance_id is not None:
            conditions.append(HumanTask.instance_id == instance_id)
        if assigned == "me":
            conditions.append(HumanTask.assignee == user)
        elif assigned == "unassigned":
            conditions.append(HumanTask.assignee.is_(None))
        if user is not None and assigned != "me":
            forums = self._engine.identity.forums_of(user, session)
            mine = [HumanTask.id.in_(select(TaskCandidateUser.task_id).where(TaskCandidateUser.username == user))]
            if forums:
                mine.append(HumanTask.id.in_(select(TaskCandidate.task_id).where(TaskCandidate.forum.in_(forums))))
            if assigned != "unassigned":
                mine.append(HumanTask.assignee == user)
            conditions.append(or_(*mine))
        if process_key is not None:
            conditions.append(Instance.definition_id.in_(select(Definition.id).where(Definition.key == process_key)))
        if overdue:
            conditions.append(HumanTask.due_at < self._engine.clock.now())
        if due_before is not None:
            if due_before.tzinfo is None:
                raise InvalidInputError("due_before needs a time zone")
            conditions.append(HumanTask.due_at < due_before.astimezone(UTC))  # SQLite compares UTC text
        if has_due:
            conditions.append(HumanTask.due_at.is_not(None))
        return conditions

    def get(self, task_id: int) -> TaskView:
        with self._engine.uow.read() as uow:
            session = uow.session
            return self._view(session, self._row(session, task_id))

    @staticmethod
    def _row(session: Session, task_id: int) -> HumanTask:
        row = session.get(HumanTask, task_id)
        if row is None:
            raise NotFoundError(f"no task {task_id}")
        return row

    def _locked_row(self, session: Session, task_id: int) -> HumanTask:
        """The task and its case in one statement, the case locked: every writer to a case locks it
        first, so concurrent completions of one case's tasks take turns instead of failing. (On
        PostgreSQL both rows are locked, so both are read as the previous holder committed them;
        SQLite's write transactions are serialised at BEGIN IMMEDIATE.)"""
        q = (select(HumanTask).join(HumanTask.instance).options(contains_eager(HumanTask.instance))
             .where(HumanTask.id == task_id))
        if self._engine.db.is_postgres:
            q = q.with_for_update(of=[HumanTask, Instance]).execution_options(populate_existing=True)
        row = session.scalar(q)
        if row is None:
            raise NotFoundError(f"no task {task_id}")
        return row

    def _view(self, session: Session, row: HumanTask) -> TaskView:
        return TaskView.of(row, definition=self._engine.definitions.header(session, row.instance.definition_id))

    def may_act(self, task: HumanTask | TaskView, user: str, session: Session | None = None) -> bool:
        """A member of one of the task's forums, its assignee, or an administrator."""
        identity = self._engine.identity
        if identity.is_admin(user, session):
            return True
        if task.assignee == user:
            return True
        if task.assignee and task.assignee != user:
            return False
        if user in (task.candidate_users or []):
            return True
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
            row = self._locked_row(session, task_id)
            if row.assignee and row.assignee != user and row.status == "open":
                raise TaskAlreadyClaimedError(f"task {task_id} is already claimed by {row.assignee}")
            self._check_actor(session, row, user, "claim")
            row.assignee = user
            self._engine.projector.audit(session, row.instance, "claimed", user=user, element_id=row.element_id,
                                         task_id=row.id, details={"name": row.name})
            return self._view(session, row)
        return self._engine.runtime.retrying(work)

    def unclaim(self, task_id: int, user: str) -> TaskView:
        def work(session: Session) -> TaskView:
            row = self._locked_row(session, task_id)
            if row.assignee is None:
                raise InvalidStateError(f"task {task_id} is not claimed")
            if row.assignee != user and not self._engine.identity.is_admin(user, session):
                raise PermissionDeniedError(f"task {task_id} is claimed by {row.assignee}")
            row.assignee = None
            self._engine.projector.audit(session, row.instance, "unclaimed", user=user,
                                         element_id=row.element_id, task_id=row.id, details={"name": row.name})
            return self._view(session, row)
        return self._engine.runtime.retrying(work)

    def assign(self, task_id: int, assignee: str | None, by: str) -> TaskView:
        """Administrators hand a task to someone (or back to the forum with None)."""
        def work(session: Session) -> TaskView:
            identity = self._engine.identity
            if not identity.is_admin(by, session):
                raise PermissionDeniedError("only an administrator may reassign tasks")
            row = self._locked_row(session, task_id)
            if row.status != "open":
                raise InvalidStateError(f"task {task_id} is {row.status}")
            if assignee is not None and not identity.exists(assignee, session):
                raise InvalidInputError(f"unknown user '{assignee}'")
            row.assignee = assignee
            self._engine.projector.audit(session, row.instance, "assigned", user=by, element_id=row.element_id,
                                         task_id=row.id, details={"assignee": assignee, "name": row.name})
            return self._view(session, row)
        return self._engine.runtime.retrying(work)

    # -- complete ---------------------------------------------------------------------------
    def validate(self, task_id: int, data: dict[str, Any], locale: str = "da") -> dict[str, Any]:
        row_fields = self.get(task_id).fields
        try:
            return validate_form(row_fields, check_data(data, self._engine.limits), locale)
        except ValidationError as exc:
            raise FormValidationError(exc.normalized_messages()) from None

    def complete(self, task_id: int, user: str, data: dict[str, Any] | None = None,
                 locale: str = "da") -> TaskView:
        data = check_data(data, self._engine.limits)

        def work(session: Session) -> TaskView:
            row = self._locked_row(session, task_id)
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
            close_task_row(session, row, completed_at=self._engine.clock.now(), completed_by=user,
                           assignee=row.assignee or user)
            if inst.open_tasks is not None:  # closed here, not by the projector
                inst.open_tasks = {k: v for k, v in inst.open_tasks.items() if k != row.spiff_task_id}
            self._engine.projector.audit(session, inst, "task_completed", user=user, element_id=row.element_id,
                                         task_id=row.id, details={"data": cleaned, "name": row.name})
            step = advance(wf)
            self._engine.projector.persist(session, inst, wf, user=user, step=step)
            return self._view(session, row)

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
