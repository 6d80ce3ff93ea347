"""Shared fixtures: a real engine database per test (a SQLite file, or a fresh PostgreSQL database with
`--db=postgresql` / ALMENFLOW_TEST_DB=postgresql; see tests/databases.py), on a frozen clock, with a small
organisation."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from engine import Engine, FrozenClock
from tests.databases import PostgresDatabases, ThrowawayServer, admin_url_from_env, answers

DATABASES = ("sqlite", "postgresql")
DB_KIND = pytest.StashKey[str]()
PG_SERVER_NOTE = pytest.StashKey[str]()

START = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # a Monday

# forum -> members; plus "admin" (administrator) and "outsider" (no forum)
ORGANISATION = {
    "Sekretariat": ["anna", "carl"],
    "Styregruppe": ["bo"],
    "Boligorganisation": ["dorte"],
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", choices=DATABASES, default=None,
                     help="the database every test that uses an engine database runs on "
                          "(default: $ALMENFLOW_TEST_DB, else sqlite)")


def pytest_configure(config: pytest.Config) -> None:
    kind = config.getoption("--db") or os.environ.get("ALMENFLOW_TEST_DB") or "sqlite"
    if kind not in DATABASES:
        raise pytest.UsageError(f"ALMENFLOW_TEST_DB={kind!r}: choose one of {', '.join(DATABASES)}")
    config.stash[DB_KIND] = kind
    config.addinivalue_line("markers", "sqlite_only(reason): the test is about SQLite itself; "
                                       "skipped with the reason on PostgreSQL")


def database_kind(config: pytest.Config) -> str:
    return config.stash[DB_KIND]


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {database_kind(config)}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("sqlite_only")
    if marker is not None and database_kind(item.config) != "sqlite":
        reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
        pytest.skip(f"SQLite only: {reason}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    note = config.stash.get(PG_SERVER_NOTE, None)
    if note:
        terminalreporter.write_line(f"PostgreSQL: {note}")


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """The admin URL of a PostgreSQL server: ALMENFLOW_TEST_PG_ADMIN (default 127.0.0.1:5432) when it
    answers, else a throwaway server started for this session and stopped at its end."""
    url = admin_url_from_env()
    shown = make_url(url).render_as_string(hide_password=True)
    if answers(url):
        request.config.stash[PG_SERVER_NOTE] = f"the server at {shown}"
        yield url
        return
    server = ThrowawayServer().start()
    request.config.stash[PG_SERVER_NOTE] = (f"nothing answered at {shown}: a throwaway server on "
                                            f"127.0.0.1:{server.port} ran the tests and was stopped")
    try:
        yield server.admin_url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_databases(pg_server: str) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(pg_server)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture(scope="session")
def new_database(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """new_database(empty=False) -> the URL of a fresh database of the chosen kind, for fixtures that
    outlive one test; PostgreSQL ones are dropped at the end of the session. Call `init_db()` on it as
    usual: a PostgreSQL one is cloned from the migrated template, so that is a quick no-op there. With
    empty=True it has nothing in it, not even the schema (a new SQLite file is always so)."""
    kind = database_kind(request.config)

    def make(empty: bool = False) -> str:
        if kind == "sqlite":
            return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "almenflow.sqlite")
        return request.getfixturevalue("pg_databases").create(empty=empty)

    return make


def _per_test_database(request: pytest.FixtureRequest, tmp_path: Path, empty: bool) -> Iterator[str]:
    if database_kind(request.config) == "sqlite":
        yield "sqlite:///" + str(tmp_path / ("empty.db" if empty else "t.db"))
        return
    databases: PostgresDatabases = request.getfixturevalue("pg_databases")
    url = databases.create(empty=True) if empty else databases.lease()
    try:
        yield url
    finally:
        if empty:
            databases.drop(url)
        else:
            databases.give_back(url)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """This test's own database of the chosen kind (see new_database)."""
    yield from _per_test_database(request, tmp_path, empty=False)


@pytest.fixture
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """This test's own database with nothing in it, not even the schema."""
    yield from _per_test_database(request, tmp_path, empty=True)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def make_engine(db_url, clock):
    """Engine factory on this test's database file; every engine made is disposed afterwards."""
    made: list[Engine] = []

    def factory(**kwargs) -> Engine:
        eng = Engine.create(db_url, clock=kwargs.pop("clock", clock), **kwargs)
        eng.init_db()
        made.append(eng)
        return eng

    yield factory
    for eng in made:
        eng.dispose()


def add_organisation(eng: Engine) -> None:
    for forum in ORGANISATION:
        eng.identity.add_forum(forum)
    users: dict[str, list[str]] = {}
    for forum, members in ORGANISATION.items():
        for member in members:
            users.setdefault(member, []).append(forum)
    for username, forums in users.items():
        eng.identity.add_user(username, forums=forums)
    eng.identity.add_user("admin", role="admin")
    eng.identity.add_user("outsider")


@pytest.fixture
def engine(make_engine) -> Engine:
    eng = make_engine()
    add_organisation(eng)
    return eng
