"""Database engine, sessions and schema migrations."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def default_database_url() -> str:
    folder = Path(os.environ.get("ALMENFLOW_INSTANCE_PATH", Path.cwd() / "instance"))
    return f"sqlite:///{folder / 'almenflow.sqlite'}"


def database_url() -> str:
    return os.environ.get("ALMENFLOW_DATABASE_URL") or default_database_url()


def make_engine(url: str, busy_timeout: float = 30.0, **kwargs: Any) -> SAEngine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # The sqlite3 module's own implicit BEGIN is switched off: _begin below says which kind.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A transaction that will write takes the write lock when it starts (BEGIN IMMEDIATE): two
            # writers then queue on the busy timeout instead of both reading and one failing with
            # "database is locked" when it tries to write on a stale snapshot.
            conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'DEFERRED')}")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    # A writer waits for a row lock at most busy_timeout, as a SQLite writer waits for the write lock:
    # the lock wait then fails (55P03) and the retry loop reports a conflict instead of hanging for as
    # long as another transaction holds the case.
    return create_engine(url, pool_pre_ping=True,
                         connect_args={"options": f"-c lock_timeout={max(1, round(busy_timeout * 1000))}"},
                         **kwargs)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: SAEngine) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    def __init__(self, url: str, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout)
        self.sessions = sessionmaker(self.engine.execution_options(sqlite_begin="IMMEDIATE"),
                                     expire_on_commit=False)
        self.read_sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work that may write: commit on success, roll back everything on any error."""
        with self._session(self.sessions) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A unit of work that only reads; on SQLite it does not wait for (or block) writers."""
        with self._session(self.read_sessions) as session:
            yield session

    @contextmanager
    def _session(self, factory: sessionmaker[Session]) -> Iterator[Session]:
        session = factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
