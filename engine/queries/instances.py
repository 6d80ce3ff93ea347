"""The case list: filters, newest first, paged by a cursor on the id.

A page is found in two steps: the ids (from an index that gives the filter and the order, so the walk
stops after one page), then those rows. A process filter covers every version of the process, and
`definition_id IN (...)` has no index order across versions: each version is walked in its own
(definition_id, [status,] id) index range and the walks are merged (UNION ALL of per-version pages),
so the cost is one page per version however many cases there are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, literal_column, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from ..errors import InvalidInputError
from ..models import Definition, HumanTask, Instance, TaskCandidate
from .paging import COUNT_CAP, MAX_OFFSET, Segment, Slice, decode, encode
from .tasks import CANDIDATE_OPEN, OPEN

STATUSES = ("active", "suspended", "incident", "completed", "terminated")
SEGMENTS = (Segment((Instance.id,), descending=True),)


def business_key_condition(pattern: str) -> Any:
    """Exact match, or `prefix*` as an index-friendly range; other wildcards fall back to LIKE."""
    if "*" not in pattern:
        return Instance.business_key == pattern
    prefix = pattern[:-1]
    if pattern.endswith("*") and "*" not in prefix:
        return (Instance.business_key >= prefix) & (Instance.business_key < prefix + "\U0010ffff")
    return Instance.business_key.like(pattern.replace("%", r"\%").replace("_", r"\_").replace("*", "%"),
                                      escape="\\")


class InstanceFilter:
    def __init__(self, session: Session, *, status: str | None = None, key: str | None = None,
                 business_key: str | None = None, version: int | None = None,
                 started_from: datetime | None = None, started_to: datetime | None = None,
                 forum: str | None = None, started_by: str | None = None) -> None:
        if status is not None and status not in STATUSES:
            raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}")
        self.conditions: list[Any] = []
        if status:
            # Literal: lets the planners match the value against index statistics and partial indexes.
            self.conditions.append(Instance.status == literal_column(_quote(status)))
        self.definition_ids: list[int] | None = None
        if key or version:
            defs = select(Definition.id)
            if key:
                defs = defs.where(Definition.key == key)
            if version:
                defs = defs.where(Definition.version == version)
            self.definition_ids = sorted(session.scalars(defs))
        if business_key:
            self.conditions.append(business_key_condition(business_key))
        if started_from:
            self.conditions.append(Instance.started_at >= started_from)
        if started_to:
            self.conditions.append(Instance.started_at < started_to)
        if started_by:
            self.conditions.append(Instance.started_by == started_by)
        if forum:
            self.conditions.append(Instance.id.in_(
                select(HumanTask.instance_id).join(TaskCandidate, TaskCandidate.task_id == HumanTask.id)
                .where(TaskCandidate.forum == forum, CANDIDATE_OPEN, OPEN)))
        self.empty = self.definition_ids == []

    def id_streams(self, extra: list[Any]) -> list[Select[Any]]:
        """Queries of matching ids, one per process version filtered on (or one in all)."""
        if self.definition_ids is None:
            return [select(Instance.id).where(*self.conditions, *extra)]
        return [select(Instance.id).where(Instance.definition_id == d, *self.conditions, *extra)
                for d in self.definition_ids]

    def ids(self, session: Session, limit: int, *, below: int | None = None, above: int | None = None) -> list[int]:
        """Up to `limit` matching ids, newest first below `below`, or oldest first above `above`."""
        extra = [Instance.id < below] if below is not None else [Instance.id > above] if above is not None else []
        order = Instance.id.asc() if above is not None else Instance.id.desc()
        streams = [s.order_by(order).limit(limit) for s in self.id_streams(extra)]
        if len(streams) == 1:
            return list(session.scalars(streams[0]))
        merged = union_all(*[select(s.subquery().c.id) for s in streams]).subquery()
        return list(session.scalars(select(merged.c.id).order_by(merged.c.id.asc() if above is not None
                                                                  else merged.c.id.desc()).limit(limit)))

    def count(self, session: Session, cap: int = COUNT_CAP) -> int:
        """Matches in all, counting at most cap + 1 (each walk stops there). On PostgreSQL in index
        order, so the walk is an index-only scan rather than the first heap pages (SQLite picks its
        narrowest covering index by itself)."""
        streams = self.id_streams([])
        if session.get_bind().dialect.name == "postgresql":
            streams = [s.order_by(Instance.id) for s in streams]
        streams = [s.limit(cap + 1) for s in streams]
        if len(streams) == 1:
            inner = streams[0].subquery()
        else:
            merged = union_all(*[select(s.subquery().c.id) for s in streams]).subquery()
            inner = select(merged.c.id).limit(cap + 1).subquery()
        return session.scalar(select(func.count()).select_from(inner)) or 0


def page(session: Session, f: InstanceFilter, limit: int, *, after: str | None = None, before: str | None = None,
         offset: int = 0) -> Slice[int]:
    """The ids of one page, newest first, and cursors for the pages around it."""
    if after and before:
        raise InvalidInputError("give either after or before, not both")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInputError(f"offset must be between 0 and {MAX_OFFSET}; page further with a cursor")
    if before:
        above = _id(before)
        ids = f.ids(session, limit + 1, above=above)
        more = len(ids) > limit
        ids = sorted(ids[:limit], reverse=True)
        return Slice(ids, next=encode(0, [ids[-1]]) if ids else None,
                     previous=encode(0, [ids[0]]) if more and ids else None)
    below = _id(after) if after else None
    ids = f.ids(session, offset + limit + 1, below=below)
    skipped, ids = ids[:offset], ids[offset:]
    more = len(ids) > limit
    ids = ids[:limit]
    return Slice(ids, next=encode(0, [ids[-1]]) if more else None,
                 previous=encode(0, [ids[0]]) if ids and (after or skipped) else None)


def _id(token: str) -> int:
    value = decode(token, SEGMENTS)[1][0]
    if not isinstance(value, int):
        raise InvalidInputError("the page cursor is not valid (start again from the first page)")
    return value


def _quote(value: str) -> str:
    if value not in STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}")
    return f"'{value}'"
