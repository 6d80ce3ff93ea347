"""The API speaks strict JSON: NaN/Infinity in a request body is refused as bad input (nothing is
started), and a non-finite number that reached the database before the engine refused them is sent
as null, never as invalid JSON."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import update

from engine.models import Instance

from .conftest import PASSWORD

PROBLEM = "application/problem+json"


def basic(username: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()}


def test_nan_in_a_request_body_is_refused_and_starts_nothing(app, web_engine):
    client = app.test_client()
    before = web_engine.runtime.list()[1]
    response = client.post("/api/instances", headers=basic("admin"), content_type="application/json",
                           data='{"key": "testsag", "data": {"beloeb": NaN}}')
    assert 400 <= response.status_code < 500 and response.mimetype == PROBLEM
    assert web_engine.runtime.list()[1] == before


@pytest.mark.sqlite_only(reason="PostgreSQL's json type refuses NaN and Infinity, so only an SQLite file can "
                                "hold a stored non-finite number")
def test_a_stored_non_finite_number_is_sent_as_null(app, web_engine, case):
    with web_engine.db.transaction() as session:
        session.execute(update(Instance).where(Instance.id == case.id)
                        .values(variables={"beloeb": float("inf"), "liste": [float("nan"), 1]}))
    response = app.test_client().get(f"/api/instances/{case.id}", headers=basic("admin"))
    assert response.status_code == 200
    body = json.loads(response.get_data(as_text=True), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert body["data"]["beloeb"] is None and body["data"]["liste"] == [None, 1]
