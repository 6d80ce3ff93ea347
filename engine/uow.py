"""The unit of work: one per use case (Camunda's command executor, in Python).

A UnitOfWork owns the session of one transaction, the audit events the step produces (written in
one statement before commit), and hooks that run after the commit succeeded (e.g. keeping the
workflow the step produced in the process-local cache) or after it was rolled back. The factory
starts units of work and, for writers, repeats a unit when another writer changed the case first or
the database was busy, until Limits.lock_wait_seconds have passed.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import Table, insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from .clock import Clock
from .db import Database
from .errors import OptimisticLockingError
from .limits import Limits
from .models import AuditEvent

T = TypeVar("T")
log = logging.getLogger("almenflow.uow")
_AUDIT = cast(Table, AuditEvent.__table__)  # typed as FromClause by SQLAlchemy; a mapped class's is a Table


def is_transient(exc: OperationalError) -> bool:
    """A database error that goes away when the transaction is repeated: SQLite busy/locked,
    PostgreSQL serialization failure, deadlock or lock wait timeout (lock_timeout, see db.make_engine)."""
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return (code in ("40001", "40P01", "55P03")
            or "database is locked" in str(exc) or "database is busy" in str(exc))


class UnitOfWork:
    def __init__(self, session: Session, clock: Clock, *, writes: bool) -> None:
        self.session = session
        self.clock = clock
        self.writes = writes
        self._audit: list[dict[str, Any]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._after_rollback: list[Callable[[], None]] = []
        # What the unit wrote, for the views a use case returns without reading it back:
        self.written_tasks: list[dict[str, Any]] = []  # human task rows created, with their ids
        self.written_waits: dict[int, list[dict[str, Any]]] = {}  # case id -> its waits rows
        session.info["uow"] = self

    @staticmethod
    def of(session: Session) -> UnitOfWork | None:
        return session.info.get("uow")

    def audit(self, instance: Any, type_: str, *, user: str | None, element_id: str | None = None,
              task_id: int | None = None, details: dict[str, Any] | None = None) -> None:
        """An audit event, written with the others of this unit just before it commits. `instance` is
        the case (or its id, or None); a case inserted later in the unit gets its id by then."""
        self._audit.append({"instance_id": instance, "type": type_, "time": self.clock.now(), "user": user,
                            "element_id": element_id, "task_id": task_id, "details": details or {}})

    def after_commit(self, hook: Callable[[], None]) -> None:
        self._after_commit.append(hook)

    def after_rollback(self, hook: Callable[[], None]) -> None:
        self._after_rollback.append(hook)

    def flush(self) -> None:
        """Write what the unit collected (audit events), e.g. before reading them back."""
        if self._audit:
            for row in self._audit:
                ref = row["instance_id"]
                if ref is not None and not isinstance(ref, int):
                    row["instance_id"] = ref.id
            self.session.execute(insert(_AUDIT), self._audit)
            self._audit = []

    def _committed(self) -> None:
        for hook in self._after_commit:
            try:
                hook()
            except Exception:  # the transaction is committed; a hook must not turn success into failure
                log.exception("after-commit hook failed")

    def _rolled_back(self) -> None:
        for hook in self._after_rollback:
            try:
                hook()
            except Exception:
                log.exception("after-rollback hook failed")


class UnitOfWorkFactory:
    def __init__(self, db: Database, clock: Clock, limits: Limits) -> None:
        self.db = db
        self.clock = clock
        self.limits = limits

    @property
    def is_postgres(self) -> bool:
        return self.db.is_postgres

    @contextmanager
    def write(self) -> Iterator[UnitOfWork]:
        """A unit that may write (on SQLite it holds the write lock from BEGIN)."""
        with self._unit(self.db.sessions, writes=True) as uow:
            yield uow

    @contextmanager
    def read(self) -> Iterator[UnitOfWork]:
        """A unit that only reads; on SQLite it neither waits for nor blocks writers."""
        with self._unit(self.db.read_sessions, writes=False) as uow:
            yield uow

    @contextmanager
    def _unit(self, factory: Any, *, writes: bool) -> Iterator[UnitOfWork]:
        session = factory()
        uow = UnitOfWork(session, self.clock, writes=writes)
        try:
            yield uow
            uow.flush()
            session.commit()
        except BaseException:
            session.rollback()
            uow._rolled_back()
            raise
        finally:
            session.close()
        uow._committed()

    def run(self, work: Callable[[UnitOfWork], T]) -> T:
        """Run `work` in a writing unit; again when another writer changed the case first or the
        database was busy. Writers lock the case row first (SQLite: the database at BEGIN), so a
        repeat is the exception, not the rule."""
        deadline = time.monotonic() + self.limits.lock_wait_seconds
        pause = 0.005
        while True:
            try:
                with self.write() as uow:
                    return work(uow)
            except (StaleDataError, OperationalError) as exc:
                if isinstance(exc, OperationalError) and not is_transient(exc):
                    raise
                if time.monotonic() + pause > deadline:
                    raise OptimisticLockingError("the case was changed by someone else at the same time, "
                                                 "repeatedly; try again") from None
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 2, 0.25)
