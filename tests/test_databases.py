"""The test databases themselves: each test's database is of the kind --db chooses, its own, and
fresh; an empty one has no schema until `init_db()`."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from engine import Engine
from tests.conftest import database_kind


def _tables(url: str) -> set[str]:
    eng = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        return set(inspect(eng).get_table_names())
    finally:
        eng.dispose()


def test_each_test_gets_a_database_of_the_chosen_kind(request, engine, db_url):
    assert engine.db.url == db_url
    assert engine.db.engine.dialect.name == database_kind(request.config)
    assert [u["username"] for u in engine.identity.users()] == ["admin", "anna", "bo", "carl", "dorte", "outsider"]


def test_databases_are_independent_and_start_with_no_data(new_database):
    first, second = Engine.create(new_database()), Engine.create(new_database())
    try:
        first.init_db()
        second.init_db()
        first.identity.add_user("only-in-first")
        assert [u["username"] for u in first.identity.users()] == ["only-in-first"]
        assert second.identity.users() == []
    finally:
        first.dispose()
        second.dispose()


def test_an_empty_database_has_no_schema_until_init_db(empty_db_url):
    assert _tables(empty_db_url) == set()
    eng = Engine.create(empty_db_url)
    try:
        eng.init_db()
    finally:
        eng.dispose()
    assert {"instances", "human_tasks", "alembic_version"} <= _tables(empty_db_url)
