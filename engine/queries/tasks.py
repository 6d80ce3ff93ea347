"""The inbox: open tasks of a user's forums, candidate-user rows and assignments, sorted and paged.

Open tasks are a small, hot part of human_tasks, with partial indexes in each sort order
(models.py). A page is found in one of two ways, chosen by how many tasks match (which the count,
an index range over task_candidates' open rows, tells first):
- many (more than DRIVE_LIMIT): walk the open tasks in the sort order and keep those that match;
  the walk ends after the page is full, so its length is page size / share of matching tasks;
- few: fetch the matching ids from the candidate indexes and sort only those.
Either way the work is bounded by ~DRIVE_LIMIT index steps, whatever the size of the tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, func, literal_column, or_, select, true, union
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, CompoundSelect, Select

from ..errors import InvalidInputError
from ..models import Definition, HumanTask, Instance, TaskCandidate, TaskCandidateUser
from .paging import Segment

# Literal, not a bound parameter: the planners may use a partial index only when they can see the value.
OPEN = HumanTask.status == literal_column("'open'")
CANDIDATE_OPEN = TaskCandidate.is_open == true()
CANDIDATE_USER_OPEN = TaskCandidateUser.is_open == true()
STATUSES = ("open", "completed", "cancelled", "all")
# Below this many matches a page sorts the matches; above it walks the sort index (see above).
DRIVE_LIMIT = 1000

SEGMENTS: dict[str, tuple[Segment, ...]] = {
    # Overdue first (earliest due date first), undated last.
    "due": (Segment((HumanTask.due_at, HumanTask.id), where=HumanTask.due_at.is_not(None)),
            Segment((HumanTask.id,), where=HumanTask.due_at.is_(None))),
    "created": (Segment((HumanTask.created_at, HumanTask.id), descending=True),),
    "name": (Segment((func.lower(HumanTask.name), HumanTask.id)),),
}
# By process name, then due as above: no index of human_tasks has this order, so the database sorts
# the matches and pages go by offset (a cursor holding the offset).
PROCESS_ORDER = (func.lower(Definition.name), Definition.key, HumanTask.due_at.is_(None), HumanTask.due_at,
                 HumanTask.id)
SORTS = ("due", "created", "name", "process")


class InboxFilter:
    """The filters of an inbox query, resolved once (the user's forums, the process's versions)."""

    def __init__(self, session: Session, *, forums_of: Any, now: datetime, forum: str | None = None,
                 user: str | None = None, instance_id: int | None = None, status: str = "open",
                 process_key: str | None = None, overdue: bool = False, due_before: datetime | None = None,
                 has_due: bool = False, assigned: str | None = None) -> None:
        if status not in STATUSES:
            raise InvalidInputError("status must be open, completed, cancelled or all")
        if assigned not in (None, "me", "unassigned"):
            raise InvalidInputError("assigned must be 'me' or 'unassigned'")
        if assigned == "me" and not user:
            raise InvalidInputError("assigned='me' needs a user")
        if due_before is not None and due_before.tzinfo is None:
            raise InvalidInputError("due_before needs a time zone")
        self.status, self.forum, self.user, self.assigned = status, forum, user, assigned
        self.conditions: list[Any] = []
        if status == "open":
            self.conditions.append(OPEN)
        elif status != "all":
            self.conditions.append(HumanTask.status == status)
        if instance_id is not None:
            self.conditions.append(HumanTask.instance_id == instance_id)
        if assigned == "me":
            self.conditions.append(HumanTask.assignee == user)
        elif assigned == "unassigned":
            self.conditions.append(HumanTask.assignee.is_(None))
        self.definition_ids: list[int] | None = None
        if process_key is not None:
            self.definition_ids = list(session.scalars(select(Definition.id).where(Definition.key == process_key)))
            # A condition on the joined case row (rows() and count_query() join it).
            self.conditions.append(Instance.definition_id.in_(self.definition_ids))
        if overdue:
            self.conditions.append(HumanTask.due_at < now)
        if due_before is not None:
            self.conditions.append(HumanTask.due_at < due_before.astimezone(UTC))  # SQLite compares UTC text
        if has_due:
            self.conditions.append(HumanTask.due_at.is_not(None))
        # Whose inbox: a forum's, and/or a user's (forums, candidate user, assignee).
        self.forums: list[str] | None = None
        if user is not None and assigned != "me":
            self.forums = list(forums_of(user, session))
        self.empty = self.definition_ids == []

    @property
    def restricted(self) -> bool:
        """Whether the rows are limited to a forum's or a user's inbox."""
        return self.forum is not None or self.forums is not None

    def _id_sets(self) -> list[Select[Any] | CompoundSelect[Any]]:
        """Queries of task ids, one per way a task can be in the inbox; a task is in it when it is in
        every group: [forum] and [user's forums | candidate user | assignee]."""
        open_only = self.status == "open"
        sets = []
        if self.forum is not None:
            q = select(TaskCandidate.task_id).where(TaskCandidate.forum == self.forum)
            sets.append([q.where(CANDIDATE_OPEN) if open_only else q])
        if self.forums is not None:
            mine = []
            if self.forums:
                q = select(TaskCandidate.task_id).where(TaskCandidate.forum.in_(self.forums))
                mine.append(q.where(CANDIDATE_OPEN) if open_only else q)
            q = select(TaskCandidateUser.task_id).where(TaskCandidateUser.username == self.user)
            mine.append(q.where(CANDIDATE_USER_OPEN) if open_only else q)
            if self.assigned != "unassigned":
                q = select(HumanTask.id).where(HumanTask.assignee == self.user)
                mine.append(q.where(OPEN) if open_only else q)
            sets.append(mine)
        return [union(*group) if len(group) > 1 else group[0] for group in sets]

    def membership_by_ids(self) -> list[Any]:
        """The inbox restriction as `id IN (ids)`: the database starts from the candidate indexes."""
        return [HumanTask.id.in_(ids) for ids in self._id_sets()]

    def membership_by_probe(self) -> list[Any]:
        """The inbox restriction as per-row checks: the database walks tasks in sort order and probes
        (only open candidate rows for open tasks: PostgreSQL may hash the probe's rows, and those are
        few)."""
        open_only = self.status == "open"
        forum_rows = (CANDIDATE_OPEN,) if open_only else ()
        user_rows = (CANDIDATE_USER_OPEN,) if open_only else ()
        out: list[ColumnElement[bool]] = []
        if self.forum is not None:
            out.append(exists().where(TaskCandidate.task_id == HumanTask.id, TaskCandidate.forum == self.forum,
                                      *forum_rows))
        if self.forums is not None:
            mine: list[ColumnElement[bool]] = [exists().where(TaskCandidateUser.task_id == HumanTask.id,
                                                              TaskCandidateUser.username == self.user, *user_rows)]
            if self.forums:
                mine.append(exists().where(TaskCandidate.task_id == HumanTask.id,
                                           TaskCandidate.forum.in_(self.forums), *forum_rows))
            if self.assigned != "unassigned":
                mine.append(HumanTask.assignee == self.user)
            out.append(or_(*mine))
        return out

    def count_query(self) -> Select[Any] | CompoundSelect[Any]:
        """The matching task ids (for a capped count): from the candidate indexes alone when no other
        filter needs the task rows."""
        sets = self._id_sets()
        if len(sets) == 1 and len(self.conditions) == 1 and self.conditions[0] is OPEN:
            return sets[0]
        q = select(HumanTask.id)
        if self.definition_ids is not None:
            q = q.join(Instance, Instance.id == HumanTask.instance_id)
        return q.where(*self.conditions, *[HumanTask.id.in_(ids) for ids in sets])

    def ids(self, matches: int | None, sort: str = "due") -> Select[Any]:
        """The matching task ids, in the query shape that suits `matches` (None: unknown, taken as
        many). Only ids and sort keys are sorted; the page's rows are read by id afterwards."""
        # A walk pays off only in an index order; the process order is not one: sort the matches.
        walk = sort != "process" and (matches is None or matches > DRIVE_LIMIT)
        membership = self.membership_by_probe() if walk else self.membership_by_ids()
        q = select(HumanTask.id)
        if self.definition_ids is not None or sort == "process":
            q = q.join(Instance, Instance.id == HumanTask.instance_id)
        if sort == "process":
            q = q.join(Definition, Definition.id == Instance.definition_id)
        return q.where(*self.conditions, *membership)


def segments(sort: str) -> Sequence[Segment]:
    """The keyset segments of a sort; empty for "process" (paged by offset)."""
    if sort not in SORTS:
        raise InvalidInputError(f"sort must be one of {', '.join(SORTS)}")
    return SEGMENTS.get(sort, ())
