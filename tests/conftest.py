"""Shared fixtures: a real SQLite engine per test, on a frozen clock, with a small organisation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine import Engine, FrozenClock

START = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # a Monday

# forum -> members; plus "admin" (administrator) and "outsider" (no forum)
ORGANISATION = {
    "Sekretariat": ["anna", "carl"],
    "Styregruppe": ["bo"],
    "Boligorganisation": ["dorte"],
}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def db_url(tmp_path) -> str:
    return "sqlite:///" + str(tmp_path / "t.db")


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
