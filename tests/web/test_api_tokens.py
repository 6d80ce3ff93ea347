"""The API with personal tokens (Authorization: Bearer) and HTTP Basic through the credential cache:
who may do what, 401 problems for refused tokens, and argon2 paid once per password, not per request."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta

import pytest
from argon2 import PasswordHasher

import engine.services.identity as identity

from .conftest import PASSWORD
from .test_api import PROBLEM, Api, problem


class Bearer(Api):
    def __init__(self, client, token: str) -> None:
        super().__init__(client)
        self.headers["Authorization"] = f"Bearer {token}"


@pytest.fixture
def bearer(app):
    """bearer(token) -> an Api client sending that token."""
    return lambda token: Bearer(app.test_client(), token)


@pytest.fixture
def api(app):
    return lambda username=None, password=PASSWORD: Api(app.test_client(), username, password)


def test_a_token_authenticates_api_requests(bearer, web_engine, case):
    token = web_engine.tokens.create("anna", "script").token
    response = bearer(token).get("/api/tasks")
    assert response.status_code == 200 and response.get_json()["total"] == 1
    assert not any(k == "Set-Cookie" for k, _ in response.headers.items())  # no session is made
    claimed = bearer(token).post(f"/api/tasks/{case.tasks[0].id}/claim")  # no CSRF token needed
    assert claimed.status_code == 200 and claimed.get_json()["assignee"] == "anna"
    assert web_engine.tokens.list("anna")[0].last_used_at == web_engine.clock.now()


def test_a_token_has_its_users_role_rules(bearer, web_engine, case):
    member = web_engine.tokens.create("anna", "script").token
    admin = web_engine.tokens.create("admin", "drift").token
    problem(bearer(member).post(f"/api/instances/{case.id}/suspend", {}), 403)
    assert bearer(member).get("/api/instances").get_json()["total"] == 1  # only what anna started
    outsider = web_engine.tokens.create("outsider", "x").token
    assert bearer(outsider).get("/api/instances").get_json()["total"] == 0
    response = bearer(admin).post(f"/api/instances/{case.id}/suspend", {})
    assert response.status_code == 200 and response.get_json()["status"] == "suspended"


def token_problem(response) -> dict:
    body = problem(response, 401)
    assert body["type"] == "urn:almenflow:problem:invalid-token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    return body


def test_wrong_and_malformed_tokens_are_401_problems(bearer, web_engine):
    token = web_engine.tokens.create("anna", "script").token
    assert "unknown token" in token_problem(bearer(token[:-2] + "xy").get("/api/tasks"))["detail"]
    token_problem(bearer("af_").get("/api/tasks"))
    token_problem(bearer("not-a-token").get("/api/tasks"))
    token_problem(bearer("").get("/api/tasks"))
    token_problem(bearer("af_wrong").get("/api/openapi.json"))  # a refused credential is refused everywhere


def test_a_revoked_token_is_401(bearer, web_engine):
    made = web_engine.tokens.create("anna", "script")
    assert bearer(made.token).get("/api/tasks").status_code == 200
    web_engine.tokens.revoke(made.view.id, by="anna")
    assert "revoked" in token_problem(bearer(made.token).get("/api/tasks"))["detail"]


def test_an_expired_token_is_401(bearer, web_engine, web_clock):
    made = web_engine.tokens.create("anna", "script", expires_days=30)
    web_clock.advance(timedelta(days=29, hours=23))
    assert bearer(made.token).get("/api/tasks").status_code == 200
    web_clock.advance(timedelta(hours=1))
    assert "expired" in token_problem(bearer(made.token).get("/api/tasks"))["detail"]


def test_a_deactivated_users_token_is_401(bearer, web_engine):
    token = web_engine.tokens.create("anna", "script").token
    web_engine.identity.update_user("anna", active=False)
    assert "deactivated" in token_problem(bearer(token).get("/api/tasks"))["detail"]


def test_token_posts_from_a_foreign_origin_are_refused(bearer, web_engine, case):
    token = web_engine.tokens.create("anna", "script").token
    url = f"/api/tasks/{case.tasks[0].id}/claim"
    problem(bearer(token).post(url, headers={"Origin": "https://evil.example"}), 403)
    assert web_engine.tasks.get(case.tasks[0].id).assignee is None


def test_openapi_describes_bearer_tokens(api):
    doc = api().get("/api/openapi.json").get_json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    assert {"bearer": []} in doc["security"] and doc["security"][0] == {"bearer": []}
    assert "Bearer" in doc["info"]["description"] and "token create" in doc["info"]["description"]
    tasks = doc["paths"]["/api/tasks"]["get"]
    assert "401" in tasks["responses"] and tasks["responses"]["401"]["content"][PROBLEM]
    assert doc["paths"]["/api/openapi.json"]["get"]["security"] == []


# -- HTTP Basic through the credential cache -------------------------------------------------------
class CountingHasher(PasswordHasher):
    """The fixtures' real (cheap) argon2 hasher, counting verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifies = 0
        self._lock = threading.Lock()

    def verify(self, hash, password):  # noqa: A002 (argon2's own parameter name)
        with self._lock:
            self.verifies += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch, fast_password_hashing) -> CountingHasher:
    h = CountingHasher()
    monkeypatch.setattr(identity, "_hasher", h)
    return h


def test_basic_runs_argon2_once_not_on_every_request(api, hasher):
    for _ in range(5):
        assert api("anna").get("/api/tasks").status_code == 200
    assert hasher.verifies == 1
    assert api("bo").get("/api/tasks").status_code == 200
    assert hasher.verifies == 2


def test_a_cached_password_is_still_rate_limited(api, hasher):
    assert api("anna").get("/api/tasks").status_code == 200
    for _ in range(5):
        problem(api("anna", "forkert-kode").get("/api/tasks"), 401)
    problem(api("anna").get("/api/tasks"), 429)  # the limiter answers before the cache is asked


def test_a_changed_password_or_deactivation_takes_effect_at_the_next_request(api, web_engine, hasher):
    assert api("anna").get("/api/tasks").status_code == 200
    web_engine.identity.update_user("anna", password="nyt-kodeord-2")
    problem(api("anna").get("/api/tasks"), 401)
    assert api("anna", "nyt-kodeord-2").get("/api/tasks").status_code == 200
    assert api("bo").get("/api/tasks").status_code == 200
    web_engine.identity.update_user("bo", active=False)
    problem(api("bo").get("/api/tasks"), 401)


def test_a_role_change_is_seen_by_cached_credentials(api, web_engine, case, hasher):
    problem(api("anna").post(f"/api/instances/{case.id}/suspend", {}), 403)
    web_engine.identity.update_user("anna", role="admin")
    assert api("anna").post(f"/api/instances/{case.id}/suspend", {}).status_code == 200


def test_the_login_form_checks_the_password_every_time(web, hasher):
    """A login makes a session once; the form is not where the cost is, and it never uses the cache."""
    for _ in range(2):
        assert web.login("anna").status_code == 302
    assert hasher.verifies == 2


def test_basic_with_a_non_ascii_password(api, web_engine, hasher):
    web_engine.identity.update_user("anna", password="blåbærgrød-æøå")
    raw = base64.b64encode("anna:blåbærgrød-æøå".encode()).decode()
    for _ in range(2):
        response = api().get("/api/tasks", headers={"Authorization": f"Basic {raw}"})
        assert response.status_code == 200
    assert hasher.verifies == 1
