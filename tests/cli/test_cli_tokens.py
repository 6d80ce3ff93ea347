"""`almenflow token create/list/revoke`: the token is printed once, lists never show it, a revoked
token stops working, and bad input exits 2 with one line and changes nothing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine import AuthenticationError, Engine
from webapp.cli import cli


@pytest.fixture
def db_url(db_url, monkeypatch) -> str:
    """This test's database (tests/conftest.py), also the CLI's."""
    monkeypatch.setenv("ALMENFLOW_DATABASE_URL", db_url)
    return db_url


@pytest.fixture
def run(db_url):
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output + result.stderr
        return result

    invoke("init")
    invoke("user", "add", "anna")
    invoke("user", "add", "bo")
    return invoke


@pytest.fixture
def check(db_url):
    """check(token) -> the username the engine authenticates it as (AuthenticationError if refused)."""
    made: list[Engine] = []

    def authenticate(token: str) -> str:
        eng = Engine.create(db_url)
        made.append(eng)
        return eng.tokens.authenticate(token)["username"]

    yield authenticate
    for eng in made:
        eng.dispose()


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr and "Usage" not in result.stderr, result.stderr
    return lines[0]


def test_create_list_and_revoke_with_json(run, check):
    created = json.loads(run("token", "create", "anna", "--name", "rapport", "--expires", "30", "--json").stdout)
    token = created["token"]
    assert token.startswith("af_") and created["username"] == "anna" and created["name"] == "rapport"
    assert created["status"] == "active" and created["expires_at"] and created["hint"] == token[:7]
    assert check(token) == "anna"

    listed = json.loads(run("token", "list", "anna", "--json").stdout)
    assert [(t["id"], t["name"], t["hint"], t["status"]) for t in listed] == [
        (created["id"], "rapport", token[:7], "active")]
    assert "token" not in listed[0] and token not in run("token", "list", "anna").stdout
    assert json.loads(run("token", "list", "bo", "--json").stdout) == []

    revoked = json.loads(run("token", "revoke", str(created["id"]), "--user", "admin", "--json").stdout)
    assert revoked["status"] == "revoked" and revoked["revoked_by"] == "admin"
    with pytest.raises(AuthenticationError):
        check(token)
    assert json.loads(run("token", "list", "anna", "--json").stdout)[0]["status"] == "revoked"


def test_text_output_prints_the_token_on_its_first_line(run, check):
    out = run("token", "create", "bo").stdout.splitlines()
    assert out[0].startswith("af_") and check(out[0]) == "bo"
    assert "name" not in out[0] and "cli" in out[1] and "never" in out[1] and "not shown again" in out[1]
    listing = run("token", "list", "bo").stdout
    assert "bo" in listing and "active" in listing and out[0][:7] in listing and out[0] not in listing
    assert run("token", "list", "anna").stdout.strip() == "anna has no API tokens"


@pytest.mark.parametrize(("args", "expected"), [
    (("token", "create", "anna", "--expires", "abc"), "--expires must be a whole number"),
    (("token", "create", "anna", "--expires", "0"), "--expires must be at least 1"),
    (("token", "create", "anna", "--expires", "4000"), "whole number of days from 1 to 3650"),
    (("token", "create", "anna", "--name", " "), "a token needs a name"),
    (("token", "create", "anna", "--name", "x" * 101), "at most 100 characters"),
    (("token", "create", "nobody"), "no user 'nobody'"),
    (("token", "list", "nobody"), "no user 'nobody'"),
    (("token", "revoke", "abc"), "the token id must be a whole number"),
    (("token", "revoke", "999"), "no token 999"),
])
def test_bad_input_exits_2_with_one_line_and_changes_nothing(run, args, expected):
    assert expected in one_error_line(run(*args, ok=False))
    assert json.loads(run("token", "list", "anna", "--json").stdout) == []


def test_revoking_twice_and_tokens_of_deactivated_users(run, check, db_url):
    created = json.loads(run("token", "create", "anna", "--json").stdout)
    run("token", "revoke", str(created["id"]))
    assert "already revoked" in one_error_line(run("token", "revoke", str(created["id"]), ok=False))
    second = json.loads(run("token", "create", "anna", "--json").stdout)["token"]
    eng = Engine.create(db_url)
    try:
        eng.identity.update_user("anna", active=False)
    finally:
        eng.dispose()
    with pytest.raises(AuthenticationError):
        check(second)
    assert "deactivated" in one_error_line(run("token", "create", "anna", ok=False))


def test_the_database_must_be_initialised(empty_db_url, monkeypatch):
    monkeypatch.setenv("ALMENFLOW_DATABASE_URL", empty_db_url)
    result = CliRunner().invoke(cli, ["token", "list", "anna"], catch_exceptions=False)
    assert "almenflow init" in one_error_line(result)
