"""Keyset ("seek") pagination and capped counts.

A page after (or before) a cursor starts with an index seek to the cursor's sort keys, so page 400
costs what page 1 costs; OFFSET would read and discard every row before it. A cursor is an opaque,
URL-safe token holding the sort keys of the row it points at.

Counts stop at COUNT_CAP (10,000), as GitHub's and Camunda's lists do ("10,000+"): counting is a walk
over an index, and a walk that stops makes the cost of a list independent of the size of the table.
A count above the cap is returned as COUNT_CAP + 1 ("more than COUNT_CAP").

A sort is a list of segments, each an index order over part of the rows (e.g. tasks with a due date by
date, then the undated ones by id): a NULL never takes part in a comparison, so every segment's keys
are non-null and each segment is one index range on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import CompoundSelect, Select

from ..errors import InvalidInputError

COUNT_CAP = 10_000
# Deepest OFFSET a caller may ask for; deeper pages go through a cursor.
MAX_OFFSET = 10_000

T = TypeVar("T")


@dataclass(frozen=True)
class Segment:
    """Rows matching `where`, ordered by `keys` (the last one unique, e.g. the id)."""

    keys: tuple[Any, ...]
    where: Any = None
    descending: bool = False


@dataclass
class Slice(Generic[T]):
    """One page: its rows, and cursors to the next and previous pages (None: there is none)."""

    items: list[T]
    next: str | None = None
    previous: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def encode(segment: int, values: Sequence[Any]) -> str:
    payload = [segment, [{"t": v.isoformat()} if isinstance(v, datetime) else v for v in values]]
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(token: str, segments: Sequence[Segment]) -> tuple[int, list[Any]]:
    """(segment index, key values) of a cursor made by encode() for these segments."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        segment, values = json.loads(raw)
        if not isinstance(segment, int) or not 0 <= segment < len(segments) \
                or not isinstance(values, list) or len(values) != len(segments[segment].keys):
            raise ValueError("shape")
        out = []
        for value in values:
            if isinstance(value, dict):
                value = datetime.fromisoformat(value["t"])
                if value.tzinfo is None:
                    raise ValueError("naive time")
            elif not isinstance(value, (int, str)) or isinstance(value, bool):
                raise ValueError("type")
            out.append(value)
        return segment, out
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidInputError("the page cursor is not valid (start again from the first page)") from None


def seek(keys: Sequence[Any], values: Sequence[Any], greater: bool) -> Any:
    """Rows whose keys come after `values` (lexicographically greater, or smaller when not `greater`).
    Written as `k1 >= v1 AND (k1 > v1 OR (k1 = v1 AND ...))`: the first term bounds the index range."""
    def beyond(key: Any, value: Any) -> Any:
        return key > value if greater else key < value

    def rest(i: int) -> Any:
        if i == len(keys) - 1:
            return beyond(keys[i], values[i])
        return or_(beyond(keys[i], values[i]), and_(keys[i] == values[i], rest(i + 1)))

    first = keys[0] >= values[0] if greater else keys[0] <= values[0]
    return and_(first, rest(0)) if len(keys) > 1 else beyond(keys[0], values[0])


def page(session: Session, query: Select[Any], segments: Sequence[Segment], limit: int, *,
         after: str | None = None, before: str | None = None, offset: int = 0,
         row: Callable[[Any], T] = lambda r: r) -> Slice[T]:
    """Up to `limit` rows after the cursor `after` (or before `before`; or from the start), skipping
    `offset` rows first (at most MAX_OFFSET: a cost that grows with the offset).

    `query` has every filter; this adds each segment's condition, the seek, the order and the limit,
    and selects the sort keys for the cursors. `row` turns a result row (without the key columns)
    into an item."""
    if after and before:
        raise InvalidInputError("give either after or before, not both")
    if limit < 1:
        raise InvalidInputError("limit must be positive")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInputError(f"offset must be between 0 and {MAX_OFFSET}; page further with a cursor")
    backwards = bool(before)
    given = before or after
    start, values = decode(given, segments) if given else (0, None)
    order = range(start, -1, -1) if backwards else range(start, len(segments))
    found: list[tuple[int, Any]] = []
    wanted = offset + limit + 1
    for index in order:
        if len(found) >= wanted:
            break
        segment = segments[index]
        ascending = segment.descending == backwards
        q = query.add_columns(*[k.label(f"_k{i}") for i, k in enumerate(segment.keys)])
        if segment.where is not None:
            q = q.where(segment.where)
        if index == start and values is not None:
            q = q.where(seek(segment.keys, values, greater=ascending))
        q = q.order_by(*[k.asc() if ascending else k.desc() for k in segment.keys]).limit(wanted - len(found))
        found.extend((index, r) for r in session.execute(q))
    skipped = found[:offset]
    found = found[offset:]
    more = len(found) > limit
    found = found[:limit]
    if backwards:
        found.reverse()

    def cursor(entry: tuple[int, Any]) -> str:
        index, r = entry
        width = len(segments[index].keys)
        return encode(index, list(r[-width:]))

    items = [row(r[:-len(segments[i].keys)]) for i, r in found]
    if not found:
        return Slice(items)
    if backwards:
        return Slice(items, next=cursor(found[-1]), previous=cursor(found[0]) if more else None)
    return Slice(items, next=cursor(found[-1]) if more else None,
                 previous=cursor(found[0]) if after or skipped else None)


def capped_count(session: Session, query: Select[Any] | CompoundSelect[Any], cap: int = COUNT_CAP) -> int:
    """How many rows `query` gives, counting at most cap + 1 of them."""
    return session.scalar(select(func.count()).select_from(query.limit(cap + 1).subquery())) or 0


def offset_page(session: Session, query: Select[Any], order: Sequence[Any], limit: int, *,
                after: str | None = None, before: str | None = None, offset: int = 0,
                row: Callable[[Any], T] = lambda r: r) -> Slice[T]:
    """Pages of an order no index gives (the database sorts the matches): cursors hold offsets."""
    if after and before:
        raise InvalidInputError("give either after or before, not both")
    start = offset
    if after or before:
        token = after or before or ""
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            position = raw["o"]
            if not isinstance(position, int) or isinstance(position, bool) or position < 0:
                raise ValueError("offset")
        except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError, RecursionError):
            raise InvalidInputError("the page cursor is not valid (start again from the first page)") from None
        start = position + offset if after else max(0, position - limit)
    if not 0 <= start <= MAX_OFFSET:
        raise InvalidInputError(f"offset must be between 0 and {MAX_OFFSET}")
    rows = list(session.execute(query.order_by(*order).limit(limit + 1).offset(start)))

    def cursor(position: int) -> str:
        return base64.urlsafe_b64encode(json.dumps({"o": position}).encode()).decode().rstrip("=")

    items = [row(r) for r in rows[:limit]]
    return Slice(items, next=cursor(start + limit) if len(rows) > limit else None,
                 previous=cursor(start) if start > 0 else None)
