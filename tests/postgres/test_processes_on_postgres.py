"""The KK process library, driven through the CLI, on PostgreSQL (the scale-out database)."""

from __future__ import annotations

import pytest

from tests.cli.test_cli_processes import STARTS, drive_to_completion, make_cli

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_cli(pg_url):
    return make_cli(pg_url)


@pytest.mark.parametrize("key", list(STARTS))
def test_process_runs_to_completion_on_postgres(pg_cli, key):
    drive_to_completion(pg_cli, key)
