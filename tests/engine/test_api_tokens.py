"""Personal API tokens (engine.tokens): made once, stored as SHA-256 only, checked by one indexed
lookup, refused when unknown, expired, revoked or their user is deactivated; bad input changes nothing."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import event, func, inspect, select, text

from engine import AuthenticationError, ConflictError, InvalidInputError, NotFoundError
from engine.models import ApiToken, AuditEvent
from engine.services.tokens import MAX_ACTIVE_PER_USER, PREFIX


def token_rows(eng) -> list[ApiToken]:
    with eng.db.read() as s:
        return list(s.scalars(select(ApiToken).order_by(ApiToken.id)))


def test_a_token_is_256_random_bits_shown_once_and_stored_only_as_its_sha256(engine):
    made = engine.tokens.create("anna", "rapport", by="anna")
    token = made.token
    assert token.startswith(PREFIX) and len(token) == len(PREFIX) + 43  # token_urlsafe(32): 32 bytes
    assert made.view.username == "anna" and made.view.name == "rapport" and made.view.status == "active"
    assert made.view.hint == token[:7] and made.view.expires_at is None
    assert engine.tokens.create("anna", "rapport").token != token
    [row, _other] = token_rows(engine)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    # The secret is in no column of any table: scan every row of the database.
    with engine.db.read() as s:
        for name in inspect(engine.db.engine).get_table_names():
            for values in s.execute(text(f'SELECT * FROM "{name}"')):
                assert not any(token in str(v) or token[len(PREFIX):] in str(v) for v in values), name
    assert "token" not in made.view.to_dict() and made.to_dict()["token"] == token


def test_authenticate_gives_the_users_current_data(engine):
    token = engine.tokens.create("anna", "script").token
    data = engine.tokens.authenticate(token)
    assert data["username"] == "anna" and data["role"] == "member" and data["forums"] == ["Sekretariat"]
    assert data == engine.identity.get_user("anna")  # the same shape as every other user lookup
    engine.identity.update_user("anna", role="owner")
    engine.identity.set_membership("anna", "Styregruppe", True)
    data = engine.tokens.authenticate(token)  # the role and forums of now, not of when it was made
    assert data["role"] == "owner" and sorted(data["forums"]) == ["Sekretariat", "Styregruppe"]
    assert data == engine.identity.get_user("anna")


@pytest.mark.parametrize("bad", ["", "af_", "af_" + "x" * 43, "abc", "Bearer af_x", "af_" + "x" * 500])
def test_unknown_or_malformed_tokens_are_refused(engine, bad):
    engine.tokens.create("anna", "script")
    with pytest.raises(AuthenticationError):
        engine.tokens.authenticate(bad)


def test_a_token_with_one_character_changed_is_refused(engine):
    token = engine.tokens.create("anna", "script").token
    changed = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(AuthenticationError, match="unknown"):
        engine.tokens.authenticate(changed)


def test_revoking_stops_the_token_at_once_and_is_audited(engine):
    made = engine.tokens.create("anna", "script", by="anna")
    other = engine.tokens.create("anna", "other")
    view = engine.tokens.revoke(made.view.id, by="admin")
    assert view.status == "revoked" and view.revoked_by == "admin" and view.revoked_at == engine.clock.now()
    with pytest.raises(AuthenticationError, match="revoked"):
        engine.tokens.authenticate(made.token)
    assert engine.tokens.authenticate(other.token)["username"] == "anna"  # only that one
    with pytest.raises(ConflictError):
        engine.tokens.revoke(made.view.id)
    with engine.db.read() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.type.like("token_%")).order_by(AuditEvent.id)))
    assert [(e.type, e.user, e.instance_id) for e in events] == [
        ("token_created", "anna", None), ("token_created", None, None), ("token_revoked", "admin", None)]
    assert events[2].details == {"token_id": made.view.id, "owner": "anna", "name": "script", "expires_at": None}


def test_a_user_revokes_only_their_own_tokens(engine):
    annas = engine.tokens.create("anna", "script")
    with pytest.raises(NotFoundError):
        engine.tokens.revoke(annas.view.id, by="bo", owner="bo")
    assert engine.tokens.authenticate(annas.token)["username"] == "anna"
    with pytest.raises(NotFoundError):
        engine.tokens.revoke(999_999)
    engine.tokens.revoke(annas.view.id, by="anna", owner="anna")
    assert engine.tokens.get(annas.view.id).status == "revoked"


def test_a_token_expires_after_its_days(engine, clock):
    made = engine.tokens.create("anna", "kort", expires_days=2)
    assert made.view.expires_at == clock.now() + timedelta(days=2)
    clock.advance(timedelta(days=2) - timedelta(seconds=1))
    assert engine.tokens.authenticate(made.token)["username"] == "anna"
    clock.advance(timedelta(seconds=1))
    with pytest.raises(AuthenticationError, match="expired"):
        engine.tokens.authenticate(made.token)
    assert engine.tokens.get(made.view.id).status == "expired"


def test_a_deactivated_users_tokens_stop_working_and_work_again_when_reactivated(engine):
    token = engine.tokens.create("anna", "script").token
    engine.identity.update_user("anna", active=False)
    with pytest.raises(AuthenticationError, match="deactivated"):
        engine.tokens.authenticate(token)
    with pytest.raises(InvalidInputError, match="deactivated"):
        engine.tokens.create("anna", "ny")
    engine.identity.update_user("anna", active=True)
    assert engine.tokens.authenticate(token)["username"] == "anna"


@pytest.mark.parametrize(("args", "error"), [
    (("anna", ""), InvalidInputError),
    (("anna", "   "), InvalidInputError),
    (("anna", "x" * 101), InvalidInputError),
    (("anna", "a\nb"), InvalidInputError),
    (("anna", "ok", 0), InvalidInputError),
    (("anna", "ok", -1), InvalidInputError),
    (("anna", "ok", 3651), InvalidInputError),
    (("anna", "ok", True), InvalidInputError),
    (("anna", "ok", "30"), InvalidInputError),
    (("anna", "ok", 1.5), InvalidInputError),
    (("nobody", "ok"), NotFoundError),
])
def test_bad_input_is_refused_and_changes_nothing(engine, args, error):
    with pytest.raises(error):
        engine.tokens.create(*args)
    assert token_rows(engine) == []
    assert engine.history.events(type_="token_created") == []


def test_the_number_of_active_tokens_per_user_is_bounded(engine):
    made = [engine.tokens.create("bo", f"t{i}") for i in range(MAX_ACTIVE_PER_USER)]
    with pytest.raises(ConflictError):
        engine.tokens.create("bo", "one too many")
    engine.tokens.revoke(made[0].view.id)
    engine.tokens.create("bo", "room again")
    assert engine.tokens.create("anna", "others are not affected").view.status == "active"


def test_lists_show_one_users_tokens_or_everyones(engine):
    a1 = engine.tokens.create("anna", "a1")
    a2 = engine.tokens.create("anna", "a2")
    b1 = engine.tokens.create("bo", "b1")
    engine.tokens.revoke(a1.view.id)
    assert [(t.id, t.status) for t in engine.tokens.list("anna")] == [(a2.view.id, "active"), (a1.view.id, "revoked")]
    assert [t.id for t in engine.tokens.list("bo")] == [b1.view.id]
    assert [t.id for t in engine.tokens.list()] == [a2.view.id, a1.view.id, b1.view.id]
    assert engine.tokens.list("carl") == []
    with pytest.raises(NotFoundError):
        engine.tokens.list("nobody")


def test_last_use_is_recorded_at_most_once_a_minute(engine, clock):
    made = engine.tokens.create("anna", "script")
    assert engine.tokens.get(made.view.id).last_used_at is None
    first = clock.now()
    engine.tokens.authenticate(made.token)
    assert engine.tokens.get(made.view.id).last_used_at == first
    clock.advance(timedelta(seconds=30))
    writes = count_statements(engine, lambda: engine.tokens.authenticate(made.token), "UPDATE")
    assert writes == 0 and engine.tokens.get(made.view.id).last_used_at == first
    clock.advance(timedelta(seconds=31))
    engine.tokens.authenticate(made.token)
    assert engine.tokens.get(made.view.id).last_used_at == clock.now()


def count_statements(eng, fn, prefix: str = "") -> int:
    seen: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(eng.db.engine, "before_cursor_execute", listener)
    try:
        fn()
    finally:
        event.remove(eng.db.engine, "before_cursor_execute", listener)
    return sum(1 for s in seen if s.lstrip().upper().startswith(prefix))


def test_checking_a_token_is_one_indexed_lookup(engine, clock):
    """One statement (the token's row with its user and the user's forums), which finds the token
    through the unique index on its hash: no scan."""
    made = engine.tokens.create("anna", "script")
    for i in range(20):
        engine.tokens.create("bo", f"noise {i}")
    engine.tokens.authenticate(made.token)  # records the first use
    statements: list[tuple[str, object]] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(engine.db.engine, "before_cursor_execute", listener)
    try:
        engine.tokens.authenticate(made.token)
    finally:
        event.remove(engine.db.engine, "before_cursor_execute", listener)
    selects = [(s, p) for s, p in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1 and not any(s.lstrip().upper().startswith(("UPDATE", "INSERT")) for s, _ in statements)
    assert "api_tokens" in selects[0][0] and "forums" in selects[0][0]
    statement, parameters = selects[0]
    with engine.db.engine.connect() as conn:
        if engine.db.is_postgres:  # a tiny table is cheapest to scan: ask whether an index serves the lookup
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = [row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
            assert any("Index" in step and "api_tokens" in step for step in plan), plan
            assert not any("Seq Scan on api_tokens" in step for step in plan), plan
        else:
            plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
            token_step = next(step for step in plan if "api_tokens" in step)
            assert token_step.startswith("SEARCH") and "INDEX" in token_step, plan


def test_tokens_outlive_nothing_when_their_user_is_removed_from_forums(engine):
    """Forums come from the membership table at each check, so a removed membership is gone at once."""
    token = engine.tokens.create("carl", "script").token
    assert sorted(engine.tokens.authenticate(token)["forums"]) == ["Sekretariat"]
    engine.identity.set_membership("carl", "Sekretariat", False)
    assert engine.tokens.authenticate(token)["forums"] == []
    with engine.db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.type == "token_created")) == 1
