"""The PostgreSQL side of the test databases (tests/databases.py): a database a test gives back is
leased again as a fresh clone would be, and the server the tests start when nothing answers on
127.0.0.1:5432 starts (as the postgres user when run as root), serves databases, and is gone after stop()."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select

from engine import Engine
from engine.models import User
from tests.databases import PostgresDatabases, ThrowawayServer, answers, pg_binary

pytestmark = pytest.mark.postgres


def _user_ids(eng: Engine) -> list[int]:
    with eng.db.read() as session:
        return list(session.scalars(select(User.id).order_by(User.id)))


def test_a_database_given_back_is_leased_again_empty_with_ids_from_1(pg_databases):
    url = pg_databases.lease()
    careless = Engine.create(url)
    careless.init_db()
    for name in ("anna", "bo", "carl"):
        careless.identity.add_user(name)
    assert _user_ids(careless) == [1, 2, 3]
    held = careless.db.engine.connect()  # still connected when the test ends
    pg_databases.give_back(url)
    held.invalidate()
    careless.dispose()

    again = pg_databases.lease()
    assert again == url
    eng = Engine.create(again)
    try:
        eng.init_db()
        assert eng.identity.users() == []
        eng.identity.add_user("dorte")
        assert _user_ids(eng) == [1]
    finally:
        eng.dispose()
        pg_databases.give_back(again)


def test_a_throwaway_server_serves_fresh_databases_and_is_gone_after_stop():
    try:
        pg_binary("initdb")
    except RuntimeError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot test the throwaway server here: {exc}")
    server = ThrowawayServer().start()
    try:
        assert answers(server.admin_url)
        databases = PostgresDatabases(server.admin_url)
        url = databases.create()
        eng = Engine.create(url)
        try:
            eng.init_db()
            eng.identity.add_user("anna")
            assert [u["username"] for u in eng.identity.users()] == ["anna"]
        finally:
            eng.dispose()
        databases.close()
    finally:
        server.stop()
    assert not answers(server.admin_url, timeout=1)
    assert not server.folder.exists()
