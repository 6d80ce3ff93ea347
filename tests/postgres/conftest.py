"""PostgreSQL-only tests (SKIP LOCKED across worker processes, the process library on PostgreSQL): they
run on PostgreSQL whatever --db says, with a fresh database per module on the server the session uses
(127.0.0.1:5432, or a throwaway one when nothing answers there; see tests/databases.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import PostgresDatabases


@pytest.fixture(scope="module")
def pg_url(pg_databases: PostgresDatabases) -> Iterator[str]:
    url = pg_databases.create(empty=True)
    try:
        yield url
    finally:
        pg_databases.drop(url)
