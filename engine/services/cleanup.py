"""History cleanup: ended instances older than their definition's camunda:historyTimeToLive go.

An instance is removed when it is completed or terminated, its definition version has a time to
live, and it ended at least that many days ago (Camunda 7's end-time based history cleanup). It
goes with every row that refers to it (human tasks and their candidates, waits, audit events,
comments, and rows other modules add with a foreign key to it). An instance started by another
one stays while that parent still runs; when a parent goes first, the children that stay lose
the link (parent_instance_id becomes NULL), never the other way round.

Work is bounded: at most `limit` instances per run, removed in batches of `batch_size`, one
transaction per batch, each batch recorded by one audit event without an instance id. A dry run
lists what would go and writes nothing. Export a case's history first with HistoryService.export
(`almenflow history ID --json`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Column, CursorResult, Table, delete, exists, select, update
from sqlalchemy.orm import Session, aliased

from ..errors import InvalidInputError
from ..models import AuditEvent, Base, Definition, Instance
from ..views import _iso

if TYPE_CHECKING:
    from ..clock import Clock
    from ..db import Database
    from ..uow import UnitOfWorkFactory

ENDED = ("completed", "terminated")
RUNNING = ("active", "suspended", "incident")
DEFAULT_LIMIT = 1000
DEFAULT_BATCH_SIZE = 100
MAX_LIMIT = 1_000_000
_INSTANCES = cast(Table, Instance.__table__)  # typed as FromClause by SQLAlchemy; a mapped class's is a Table


def _dependents(table: Table) -> list[tuple[Table, Column, Column]]:
    """(table, its foreign key column, the column it refers to) for every other table pointing at `table`."""
    found = []
    for other in Base.metadata.sorted_tables:
        if other is table:
            continue
        for fk in other.foreign_keys:
            if fk.column.table is table:
                found.append((other, fk.parent, fk.column))
    return found


def _purge(session: Session, table: Table, column: Column, keys: Any) -> int:
    """Delete the rows of `table` whose `column` is in `keys`, after the rows that refer to them."""
    for child, child_column, referenced in _dependents(table):
        if child is _INSTANCES:
            continue  # instances are never removed as a side effect
        _purge(session, child, child_column, select(referenced).where(column.in_(keys)))
    # A DELETE's result is a CursorResult (Session.execute is typed as returning any Result).
    result = cast(CursorResult[Any], session.execute(delete(table).where(column.in_(keys))))
    return result.rowcount or 0


class CleanupService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, db: Database) -> None:
        self._uow = uow
        self._clock = clock
        self._db = db

    def run(self, dry_run: bool = False, limit: int = DEFAULT_LIMIT, user: str | None = None,
            batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, Any]:
        """Remove (or, dry run, list) up to `limit` ended instances past their time to live.

        Returns {"dry_run", "now", "count", "instances": [...], "held_back": [...], "batches", "more"}:
        each instance with id, process key and version, business key, status, ended_at and ttl_days;
        held_back lists due instances kept because their parent instance still runs."""
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidInputError(f"limit must be a whole number between 1 and {MAX_LIMIT}")
        if not 1 <= batch_size <= 10_000:
            raise InvalidInputError("batch_size must be between 1 and 10000")
        now = self._clock.now()
        removed: list[dict[str, Any]] = []
        batches = 0
        if dry_run:
            with self._uow.write() as uow:
                session = uow.session
                removed = self._due(session, now, limit + 1)
        else:
            while len(removed) < limit:
                with self._uow.write() as uow:
                    session = uow.session
                    batch = self._due(session, now, min(batch_size, limit - len(removed)), lock=True)
                    if not batch:
                        break
                    self._remove(session, batch, now, user)
                removed.extend(batch)
                batches += 1
        with self._uow.write() as uow:
            session = uow.session
            more = bool(self._due(session, now, 1)) if not dry_run else len(removed) > limit
            held = self._due(session, now, limit, held_back=True)
        return {"dry_run": dry_run, "now": _iso(now), "count": len(removed[:limit]),
                "instances": removed[:limit], "held_back": held, "batches": batches, "more": more}

    # -- selection ---------------------------------------------------------------------------
    def _due(self, session: Session, now: datetime, limit: int, *, lock: bool = False,
             held_back: bool = False) -> list[dict[str, Any]]:
        """Ended instances past their definition's TTL, oldest first; held_back: those whose parent runs."""
        parent = aliased(Instance)
        parent_runs = exists(select(parent.id).where(parent.id == Instance.parent_instance_id,
                                                     parent.status.in_(RUNNING)))
        found: list[dict[str, Any]] = []
        definitions = session.execute(select(Definition.id, Definition.key, Definition.version,
                                             Definition.history_ttl_days)
                                      .where(Definition.history_ttl_days.is_not(None))
                                      .order_by(Definition.id)).all()
        for def_id, key, version, ttl in definitions:
            if len(found) >= limit:
                break
            if ttl is None:
                continue  # excluded by the query (history_ttl_days IS NOT NULL)
            cutoff = now - timedelta(days=ttl)
            query = (select(Instance.id, Instance.business_key, Instance.status, Instance.ended_at,
                            Instance.parent_instance_id)
                     .where(Instance.definition_id == def_id, Instance.ended_at <= cutoff,
                            Instance.status.in_(ENDED), parent_runs if held_back else ~parent_runs)
                     .order_by(Instance.ended_at, Instance.id).limit(limit - len(found)))
            if lock and self._db.is_postgres:
                query = query.with_for_update(skip_locked=True, of=Instance)
            for inst_id, business_key, status, ended_at, parent_id in session.execute(query):
                item = {"instance_id": inst_id, "process_key": key, "process_version": version,
                        "business_key": business_key, "status": status, "ended_at": _iso(ended_at),
                        "ttl_days": ttl}
                if held_back:
                    item["parent_instance_id"] = parent_id
                found.append(item)
        return found

    # -- removal -----------------------------------------------------------------------------
    def _remove(self, session: Session, batch: list[dict[str, Any]], now: datetime, user: str | None) -> None:
        ids = [item["instance_id"] for item in batch]
        # Children that stay lose the link to a parent that goes (the foreign key would refuse the delete).
        session.execute(update(Instance).where(Instance.parent_instance_id.in_(ids))
                        .values(parent_instance_id=None).execution_options(synchronize_session=False))
        rows = {}
        for child, column, _referenced in _dependents(_INSTANCES):
            if child is not _INSTANCES:
                rows[child.name] = _purge(session, child, column, ids)
        result = cast(CursorResult[Any], session.execute(
            delete(Instance).where(Instance.id.in_(ids), Instance.status.in_(ENDED))
            .execution_options(synchronize_session=False)))
        deleted = result.rowcount
        if deleted != len(ids):
            # Something changed an instance between selection and delete: undo the whole batch.
            raise RuntimeError(f"history cleanup removed {deleted} of {len(ids)} instances; batch rolled back")
        session.add(AuditEvent(instance_id=None, type="history_cleanup", time=now, user=user, details={
            "count": len(ids), "rows": rows,
            "instances": [{k: item[k] for k in ("instance_id", "process_key", "process_version", "business_key",
                                                "ended_at", "ttl_days")} for item in batch]}))
