"""Human tasks: query inboxes, claim, and complete with validated form data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from marshmallow import ValidationError
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select
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
from ..models import Definition, HumanTask, Instance
from ..projection import close_task_row
from ..queries import paging
from ..queries import tasks as inbox
from ..views import TaskView
from .runtime import check_data

if TYPE_CHECKING:
    from ..clock import Clock
    from ..db import Database
    from ..limits import Limits
    from ..projection import Projector
    from ..uow import UnitOfWorkFactory
    from .definitions import DefinitionService
    from .identity import IdentityService
    from .runtime import RuntimeService

TASK_SORTS = inbox.SORTS

# Inbox rows need the case header, never the workflow state blob.
INSTANCE_HEADER = (Instance.id, Instance.business_key, Instance.status, Instance.definition_id, Instance.version)
DEFINITION_HEADER = (Definition.id, Definition.key, Definition.name, Definition.version)


@dataclass
class TaskPage:
    """One page of tasks: `total` counts at most paging.COUNT_CAP (a larger value means "more than
    that"); `next`/`previous` are cursors for the neighbouring pages (None: there is none)."""

    items: list[TaskView]
    total: int | None
    next: str | None = None
    previous: str | None = None


_ORDER: dict[str, tuple[Any, ...]] = {
    "due": (HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.id),
    "created": (HumanTask.created_at.desc(), HumanTask.id.desc()),
    "name": (func.lower(HumanTask.name), HumanTask.id),
}


class TaskService:
    def __init__(self, uow: UnitOfWorkFactory,
                 clock: Clock,
                 limits: Limits,
                 db: Database,
                 projector: Projector,
                 runtime: RuntimeService,
                 identity: IdentityService,
                 definitions: DefinitionService) -> None:
        self._uow = uow
        self._clock = clock
        self._limits = limits
        self._db = db
        self._projector = projector
        self._runtime = runtime
        self._identity = identity
        self._definitions = definitions

    # -- queries ----------------------------------------------------------------------------
    # The query shapes and the indexes they rely on are in engine/queries/tasks.py.
    def query(self, forum: str | None = None, user: str | None = None, instance_id: int | None = None,
              status: str = "open", limit: int | None = None, offset: int = 0, *,
              process_key: str | None = None, overdue: bool = False, due_before: datetime | None = None,
              has_due: bool = False, assigned: str | None = None, sort: str = "due") -> list[TaskView]:
        """Tasks matching every filter given, one page of them when `limit` is set.

        `user` limits to the user's inbox (assigned to them or a candidate forum of theirs);
        `assigned` is "me" (assigned to `user`), "unassigned", or None; `overdue` means due before
        now, `due_before` before the given time, `has_due` any due date. `sort` is one of
        TASK_SORTS: due (overdue first, undated last), created (newest first), name, process.
        Only the projection tables are read, never workflow state. Without `limit` every match is
        returned (callers that show a list page with page() instead)."""
        if (limit is not None and limit < 0) or offset < 0:
            raise InvalidInputError("limit and offset must not be negative")
        inbox.segments(sort)
        filters: dict[str, Any] = dict(forum=forum, user=user, instance_id=instance_id, status=status,
                                       process_key=process_key, overdue=overdue, due_before=due_before,
                                       has_due=has_due, assigned=assigned)
        if limit:
            return self.page(**filters, sort=sort, limit=limit, offset=offset, count=False).items
        with self._uow.read() as uow:
            session = uow.session
            f = self._filter(session, filters)
            if f.empty:
                return []
            order = inbox.PROCESS_ORDER if sort == "process" else _ORDER[sort]
            return self._views(session, list(session.scalars(f.ids(None, sort).order_by(*order).offset(offset))))

    def page(self, *, sort: str = "due", limit: int = 25, after: str | None = None, before: str | None = None,
             offset: int = 0, count: bool = True, **filters: Any) -> TaskPage:
        """One page of query()'s tasks (same filters) and the cursors of the pages around it; with
        `count`, how many match in all (capped at paging.COUNT_CAP). Pages after a cursor cost the
        same however deep they are."""
        segments = inbox.segments(sort)
        with self._uow.read() as uow:
            session = uow.session
            f = self._filter(session, filters)
            if f.empty:
                return TaskPage([], 0)
            # The count also picks the query shape (engine/queries/tasks.py); without `count` it only
            # needs to know whether there are more than DRIVE_LIMIT.
            total = None
            if count or f.restricted:
                total = paging.capped_count(session, f.count_query(),
                                            paging.COUNT_CAP if count else inbox.DRIVE_LIMIT)
            q = f.ids(total if f.restricted else None, sort)
            if sort == "process":
                result = paging.offset_page(session, q, inbox.PROCESS_ORDER, limit, after=after, before=before,
                                            offset=offset, row=lambda r: r[0])
            else:
                result = paging.page(session, q, segments, limit, after=after, before=before, offset=offset,
                                     row=lambda r: r[0])
            return TaskPage(self._views(session, result.items), total if count else None, result.next,
                            result.previous)

    def count(self, forum: str | None = None, user: str | None = None, instance_id: int | None = None,
              status: str = "open", *, process_key: str | None = None, overdue: bool = False,
              due_before: datetime | None = None, has_due: bool = False, assigned: str | None = None,
              cap: int = paging.COUNT_CAP) -> int:
        """How many tasks query() with the same filters finds in all, counting at most `cap` + 1."""
        filters = dict(forum=forum, user=user, instance_id=instance_id, status=status, process_key=process_key,
                       overdue=overdue, due_before=due_before, has_due=has_due, assigned=assigned)
        with self._uow.read() as uow:
            session = uow.session
            f = self._filter(session, filters)
            return 0 if f.empty else paging.capped_count(session, f.count_query(), cap)

    def _filter(self, session: Session, filters: dict[str, Any]) -> inbox.InboxFilter:
        return inbox.InboxFilter(session, forums_of=self._identity.forums_of, now=self._clock.now(),
                                 **filters)

    @staticmethod
    def _views(session: Session, ids: list[int]) -> list[TaskView]:
        """The tasks with these ids, in this order, with their case's and process's header columns
        (never the state blob)."""
        if not ids:
            return []
        q = (select(HumanTask).join(Instance, HumanTask.instance_id == Instance.id)
             .join(Definition, Instance.definition_id == Definition.id).where(HumanTask.id.in_(ids))
             .options(contains_eager(HumanTask.instance).load_only(*INSTANCE_HEADER)
                      .contains_eager(Instance.definition).load_only(*DEFINITION_HEADER)))
        rows = {t.id: t for t in session.scalars(q)}
        return [TaskView.of(rows[i]) for i in ids if i in rows]

    def get(self, task_id: int) -> TaskView:
        with self._uow.read() as uow:
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
        if self._db.is_postgres:
            q = q.with_for_update(of=[HumanTask, Instance]).execution_options(populate_existing=True)
        row = session.scalar(q)
        if row is None:
            raise NotFoundError(f"no task {task_id}")
        return row

    def _view(self, session: Session, row: HumanTask) -> TaskView:
        return TaskView.of(row, definition=self._definitions.header(session, row.instance.definition_id))

    def may_act(self, task: HumanTask | TaskView, user: str, session: Session | None = None) -> bool:
        """A member of one of the task's forums, its assignee, or an administrator."""
        identity = self._identity
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
        if not self._identity.exists(user, session):
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
            self._projector.audit(session, row.instance, "claimed", user=user, element_id=row.element_id,
                                         task_id=row.id, details={"name": row.name})
            return self._view(session, row)
        return self._runtime.retrying(work)

    def unclaim(self, task_id: int, user: str) -> TaskView:
        def work(session: Session) -> TaskView:
            row = self._locked_row(session, task_id)
            if row.assignee is None:
                raise InvalidStateError(f"task {task_id} is not claimed")
            if row.assignee != user and not self._identity.is_admin(user, session):
                raise PermissionDeniedError(f"task {task_id} is claimed by {row.assignee}")
            row.assignee = None
            self._projector.audit(session, row.instance, "unclaimed", user=user,
                                         element_id=row.element_id, task_id=row.id, details={"name": row.name})
            return self._view(session, row)
        return self._runtime.retrying(work)

    def assign(self, task_id: int, assignee: str | None, by: str) -> TaskView:
        """Administrators hand a task to someone (or back to the forum with None)."""
        def work(session: Session) -> TaskView:
            identity = self._identity
            if not identity.is_admin(by, session):
                raise PermissionDeniedError("only an administrator may reassign tasks")
            row = self._locked_row(session, task_id)
            if row.status != "open":
                raise InvalidStateError(f"task {task_id} is {row.status}")
            if assignee is not None and not identity.exists(assignee, session):
                raise InvalidInputError(f"unknown user '{assignee}'")
            row.assignee = assignee
            self._projector.audit(session, row.instance, "assigned", user=by, element_id=row.element_id,
                                         task_id=row.id, details={"assignee": assignee, "name": row.name})
            return self._view(session, row)
        return self._runtime.retrying(work)

    # -- complete ---------------------------------------------------------------------------
    def validate(self, task_id: int, data: dict[str, Any], locale: str = "da") -> dict[str, Any]:
        row_fields = self.get(task_id).fields
        try:
            return validate_form(row_fields, check_data(data, self._limits), locale)
        except ValidationError as exc:
            raise FormValidationError(exc.normalized_messages()) from None

    def complete(self, task_id: int, user: str, data: dict[str, Any] | None = None,
                 locale: str = "da") -> TaskView:
        data = check_data(data, self._limits)

        def work(session: Session) -> TaskView:
            row = self._locked_row(session, task_id)
            self._check_actor(session, row, user, "complete")
            try:
                cleaned = validate_form(row.fields or [], data, locale)
            except ValidationError as exc:
                raise FormValidationError(exc.normalized_messages()) from None
            inst = row.instance
            wf = self._runtime.load(session, inst)
            task = self._find_spiff_task(wf, row.spiff_task_id)
            if task is None or task.state != TaskState.READY:
                raise InvalidStateError(f"task {task_id} is not ready in the workflow any more")
            task.set_data(**cleaned)
            task.run()
            close_task_row(session, row, completed_at=self._clock.now(), completed_by=user,
                           assignee=row.assignee or user)
            if inst.open_tasks is not None:  # closed here, not by the projector
                inst.open_tasks = {k: v for k, v in inst.open_tasks.items() if k != row.spiff_task_id}
            self._projector.audit(session, inst, "task_completed", user=user, element_id=row.element_id,
                                         task_id=row.id, details={"data": cleaned, "name": row.name})
            step = advance(wf)
            self._projector.persist(session, inst, wf, user=user, step=step)
            return self._view(session, row)

        return self._runtime.retrying(work)

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
