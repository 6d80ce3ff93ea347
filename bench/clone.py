"""Many cases quickly: copy real cases row by row, following the schema's foreign keys.

A few template cases are made through the engine's services (so every row is one the engine wrote);
`CaseCloner` then inserts copies of them: the `instances` rows and the rows of every table that
references them, directly or through another such table (tasks, candidates, waits, audit events,
comments, and whatever per-case tables the persistence layer has). It reads the schema from the
database, so it follows schema changes without edits:

- integer primary keys of copied tables move by a fixed stride per copy, and foreign keys to them with it;
- unique string columns of copied tables that no moved key makes unique (a SpiffWorkflow task id, say)
  get a new value per copy (a UUID stays a UUID);
- date-time columns move back by `shift` per copy, so copies spread over the past like real history.

Stored workflow state is copied as it is: a copy runs exactly as its template would."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, MetaData, String, Table, func, select, text

from engine import Engine

_NAMESPACE = uuid.UUID("6f1c1d0e-55b1-4b6e-9a4c-6f2f8d7e0b11")


class CaseCloner:
    def __init__(self, eng: Engine, shift: timedelta = timedelta(0), batch: int = 5000) -> None:
        """Takes the cases in the database now as the templates."""
        self.sa = eng.db.engine
        self.shift = shift
        self.batch = batch
        meta = MetaData()
        meta.reflect(self.sa)
        self.tables = _case_tables(meta)
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.stride: dict[str, int] = {}
        with self.sa.connect() as conn:
            for table in self.tables:
                rows = [dict(r._mapping) for r in conn.execute(select(table))]
                links = [fk.parent.name for fk in table.foreign_keys if fk.column.table in self.tables]
                if table.name != "instances":  # rows of no case (an incident of a definition, say) stay single
                    rows = [r for r in rows if any(r[name] is not None for name in links)]
                self.rows[table.name] = rows
                pk = _int_pk(table)
                if pk is not None:
                    self.stride[table.name] = int(conn.scalar(select(func.max(pk))) or 0)
        self.templates = len(self.rows["instances"])
        self.copies = 0
        self._plans = {t.name: self._plan(t) for t in self.tables}

    def _plan(self, table: Table) -> list[tuple[str, Callable[[Any, int], Any]]]:
        """What to change in each column of a copy: (column, function of (value, copy number))."""
        moves: list[tuple[str, Callable[[Any, int], Any]]] = []
        moved: set[str] = set()
        pk = _int_pk(table)
        if pk is not None:
            stride = self.stride[table.name]
            moves.append((pk.name, lambda v, k, s=stride: v + k * s))
            moved.add(pk.name)
        for fk in table.foreign_keys:
            target = fk.column.table.name
            if target in self.stride and fk.column.name == _int_pk(fk.column.table).name:
                stride = self.stride[target]
                moves.append((fk.parent.name, lambda v, k, s=stride: None if v is None else v + k * s))
                moved.add(fk.parent.name)
        for columns in _unique_sets(table):
            if moved & set(columns):
                continue
            for name in columns:
                if isinstance(table.c[name].type, String) and name not in moved:
                    moves.append((name, _new_string))
                    moved.add(name)
        for column in table.columns:
            if isinstance(column.type, DateTime) and column.name not in moved and self.shift:
                moves.append((column.name, lambda v, k: None if v is None else v - k * self.shift))
        return moves

    def add(self, copies: int, progress: Callable[[int], None] | None = None) -> int:
        """Insert `copies` more copies of every template case; returns the number of cases added."""
        with self.sa.begin() as conn:
            for _ in range(copies):
                self.copies += 1
                k = self.copies
                for table in self.tables:
                    plan = self._plans[table.name]
                    rows = [_moved(row, plan, k) for row in self.rows[table.name]]
                    for start in range(0, len(rows), self.batch):
                        if rows[start:start + self.batch]:
                            conn.execute(table.insert(), rows[start:start + self.batch])
                if progress is not None:
                    progress(k)
            if conn.dialect.name == "postgresql":
                for table in self.tables:
                    pk = _int_pk(table)
                    if pk is not None:  # later inserts by the engine must not collide with the copies
                        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk.name}'), "
                                          f"(SELECT max({pk.name}) FROM {table.name}))"))
        return copies * self.templates


def _moved(row: dict[str, Any], plan: list[tuple[str, Callable[[Any, int], Any]]], k: int) -> dict[str, Any]:
    out = dict(row)
    for name, move in plan:
        out[name] = move(out[name], k)
    return out


def _new_string(value: Any, k: int) -> Any:
    if value is None:
        return None
    try:
        uuid.UUID(str(value))
    except ValueError:
        return f"{value}~{k}"
    return str(uuid.uuid5(_NAMESPACE, f"{k}:{value}"))


def _int_pk(table: Table) -> Any:
    pk = list(table.primary_key.columns)
    return pk[0] if len(pk) == 1 and isinstance(pk[0].type, Integer) else None


def _unique_sets(table: Table) -> list[tuple[str, ...]]:
    from sqlalchemy import UniqueConstraint

    sets = [tuple(c.name for c in table.primary_key.columns)]
    sets += [tuple(c.name for c in con.columns) for con in table.constraints if isinstance(con, UniqueConstraint)]
    sets += [tuple(c.name for c in ix.columns) for ix in table.indexes if ix.unique]
    return [s for s in sets if s]


def _case_tables(meta: MetaData) -> list[Table]:
    """`instances` and every table that references it through foreign keys, in insertion order."""
    names = {"instances"}
    changed = True
    while changed:
        changed = False
        for table in meta.tables.values():
            if table.name not in names and any(fk.column.table.name in names for fk in table.foreign_keys):
                names.add(table.name)
                changed = True
    return [t for t in meta.sorted_tables if t.name in names]
