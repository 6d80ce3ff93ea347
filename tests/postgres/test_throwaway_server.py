"""The server the tests start when nothing answers on 127.0.0.1:5432: it starts (as the postgres user
when run as root), serves databases cloned from the migrated template, and is gone after stop()."""

from __future__ import annotations

import os

import pytest

from engine import Engine
from tests.databases import PostgresDatabases, ThrowawayServer, answers, pg_binary

pytestmark = pytest.mark.postgres


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
