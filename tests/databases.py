"""The databases the tests run on: a SQLite file, or a fresh PostgreSQL database per test.

`pytest --db=postgresql` (or ALMENFLOW_TEST_DB=postgresql) puts every test that uses an engine database on
PostgreSQL. The server is the one at ALMENFLOW_TEST_PG_ADMIN (default postgres@127.0.0.1:5432, trust auth).
When nothing answers there, a throwaway server is started for the test session (Debian's initdb and pg_ctl
in a temporary folder on a free port) and stopped at the end; initdb and pg_ctl refuse to run as root, so
as root they run as the `postgres` user. `make pg-deps` installs the binaries when they are missing.

Each test gets a database of its own with the schema and no rows: cloned from a template migrated once
per session (CREATE DATABASE ... TEMPLATE, by pytest-postgresql's DatabaseJanitor), and emptied when the
test ends for the next test to lease (see PostgresDatabases).

pytest-postgresql's own server fixture (postgresql_proc) is not used: it runs pg_ctl as the current user,
which fails as root (CI here runs as root), and keeps its data in pytest's root-only temporary folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from engine import Engine
from engine.models import Base

if TYPE_CHECKING:
    from pytest_postgresql.janitor import DatabaseJanitor

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PREFIX = "almenflow_test_"


def admin_url_from_env() -> str:
    return os.environ.get("ALMENFLOW_TEST_PG_ADMIN", DEFAULT_ADMIN_URL)


def answers(url: str, timeout: int = 3) -> bool:
    """Whether a PostgreSQL server accepts a connection at `url` (an SQLAlchemy URL)."""
    u = make_url(url)
    try:
        psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                        dbname=u.database or "postgres", connect_timeout=timeout).close()
    except psycopg.OperationalError:
        return False
    return True


def pg_binary(name: str) -> str:
    """Debian keeps the server binaries in /usr/lib/postgresql/<major>/bin, not on PATH; newest major first."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0, reverse=True)
    path = found[0] if found else shutil.which(name)
    if not path:
        raise RuntimeError(f"no PostgreSQL server at {admin_url_from_env()} and no {name} to start one: "
                           "run `make pg-deps` (apt-get install postgresql) or start a server")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayServer:
    """A PostgreSQL server in a temporary folder for one test session: trust auth on 127.0.0.1, no fsync
    (its data is thrown away), stopped and deleted by stop()."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="almenflow-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = free_port()
        self._as: list[str] = []  # initdb and pg_ctl refuse root; run them as postgres then
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no postgres user to run a throwaway "
                                   "PostgreSQL server as: run `make pg-deps`") from None
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], cwd=self.folder, capture_output=True, text=True, timeout=120)
        if done.returncode:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): "
                               f"{done.stderr.strip() or done.stdout.strip()}\n{log}")

    def start(self) -> ThrowawayServer:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        try:
            self._run(pg_binary("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-sync")
            self._run(pg_binary("pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log),
                      "-o", options)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(pg_binary("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data))
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class PostgresDatabases:
    """Databases on one server, each cloned from a template that has the current schema.

    A test leases one and gives it back: its connections are ended and every row deleted (sequences
    restarted), so the next test finds it as a fresh clone would be. Measured on the shared server
    under the usual load: creating and dropping a clone per test took 250-800 ms, emptying one 10 ms.
    """

    def __init__(self, admin_url: str) -> None:
        self.admin = make_url(admin_url)
        self.template = f"{PREFIX}tmpl_{uuid.uuid4().hex[:10]}"
        self._janitors: dict[str, DatabaseJanitor] = {}
        self._free: list[str] = []
        template = self._janitor(self.template)
        template.init()
        self._janitors[self.template] = template
        eng = Engine.create(self.url(self.template))
        try:
            eng.init_db()
        finally:
            eng.dispose()
        # Children before parents, so plain DELETEs satisfy the foreign keys.
        self._tables = [t.name for t in reversed(Base.metadata.sorted_tables)]

    def _janitor(self, name: str, template: str | None = None) -> DatabaseJanitor:
        from pytest_postgresql.janitor import DatabaseJanitor  # only the PostgreSQL runs need it

        a = self.admin
        return DatabaseJanitor(user=a.username or "postgres", password=a.password, host=a.host or "127.0.0.1",
                               port=a.port or 5432, dbname=name, template_dbname=template,
                               maintenance_dbname=a.database or "postgres")

    def url(self, name: str) -> str:
        return self.admin.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)

    def create(self, empty: bool = False) -> str:
        """A new database: a copy of the migrated template, or (empty) one without even the schema."""
        name = f"{PREFIX}{uuid.uuid4().hex[:12]}"
        janitor = self._janitor(name, template=None if empty else self.template)
        janitor.init()
        self._janitors[name] = janitor
        with janitor.cursor() as cur:  # a commit need not wait for the disk: test data is thrown away
            cur.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(sql.Identifier(name)))
        return self.url(name)

    def lease(self) -> str:
        """A database with the schema and no rows, for one test; give it back with give_back()."""
        return self._free.pop() if self._free else self.create()

    def give_back(self, url: str) -> None:
        try:
            self._empty(url)
        except Exception:  # whatever the test left that cannot be emptied: do not hand it out again
            self.drop(url)
        else:
            self._free.append(url)

    def _empty(self, url: str) -> None:
        u = make_url(url)
        with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                             dbname=u.database, autocommit=True) as conn:
            # End what the test left connected (an engine not disposed, a killed subprocess's session).
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            if tables != {*self._tables, "alembic_version"}:
                raise RuntimeError(f"the schema changed: {sorted(tables)}")
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '30s'")
                for table in self._tables:
                    conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
                for (sequence,) in conn.execute("SELECT sequencename FROM pg_sequences "
                                                "WHERE schemaname = 'public'").fetchall():
                    conn.execute("SELECT setval(%s, 1, false)", (sql.Identifier(sequence).as_string(conn),))

    def drop(self, url: str) -> None:
        name = make_url(url).database
        janitor = self._janitors.pop(name, None) if name else None
        if janitor is not None:
            janitor.drop()

    def close(self) -> None:
        self._free.clear()
        for name in [n for n in self._janitors if n != self.template] + [self.template]:
            janitor = self._janitors.pop(name, None)
            if janitor is not None:
                janitor.drop()
