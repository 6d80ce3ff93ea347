"""Web fixtures: an engine on this test's database (tests/conftest.py: db_url) with a frozen clock, a small organisation with
passwords, the two fixture processes, and a test client that logs in and posts with CSRF tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from engine import Engine, FrozenClock
from engine.parsing import Resource
from webapp import create_app

FIXTURES = Path(__file__).parent / "fixtures"
WEB_START = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # a Monday
PASSWORD = "hemmeligt-1"

FORUMS = [
    ("Borgmesterforum", 1, "internal"),
    ("Partnerskabsforum", 1, "sector"),
    ("Styregruppe", 2, "internal"),
    ("Samarbejdsforum", 2, "sector"),
    ("Sekretariat", 3, "internal"),
    ("Valby Lokaludvalg", None, "lokaludvalg"),
]
# username -> (name, role, forums)
USERS = {
    "anna": ("Anna Andersen", "member", ["Sekretariat"]),
    "carl": ("Carl Clausen", "member", ["Sekretariat", "Styregruppe"]),
    "bo": ("Bo Berg", "member", ["Styregruppe"]),
    "olga": ("Olga Ottesen", "owner", []),
    "admin": ("Ada Admin", "admin", []),
    "outsider": ("Otto Udenfor", "member", []),
}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def resource(name: str) -> Resource:
    return Resource(name, (FIXTURES / name).read_bytes())


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """Argon2 with production cost makes every fixture user take ~0.2 s; the web tests need the
    behaviour (hash + verify), not the cost."""
    import engine.services.identity as identity

    monkeypatch.setattr(identity, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def web_clock() -> FrozenClock:
    return FrozenClock(WEB_START)


@pytest.fixture
def web_engine(db_url, web_clock):
    eng = Engine.create(db_url, clock=web_clock)
    eng.init_db()
    for name, level, kind in FORUMS:
        eng.identity.add_forum(name, level, kind, meetings=["2027-01-14", "2026-12-01"] if name == "Styregruppe"
                               else None)
    for username, (name, role, forums) in USERS.items():
        eng.identity.add_user(username, name, role, forums, PASSWORD)
    eng.definitions.deploy([resource("testsag.bpmn"), resource("henvendelse.bpmn")], user="olga")
    yield eng
    eng.dispose()


@pytest.fixture
def app(web_engine, tmp_path):
    app = create_app(web_engine, {"TESTING": True, "ALMENFLOW_INSTANCE_PATH": str(tmp_path / "instance")})
    return app


class Web:
    """A test client that knows how to log in and to send the CSRF token with a POST."""

    def __init__(self, client) -> None:
        self.client = client

    def get(self, url: str, **kwargs):
        return self.client.get(url, **kwargs)

    def token(self) -> str:
        """The session's CSRF token, read from a form as a browser would (start page, else login page)."""
        for url in ("/", "/login"):
            match = TOKEN.search(self.client.get(url).get_data(as_text=True))
            if match:
                return match.group(1)
        raise AssertionError("no CSRF token found")

    def post(self, url: str, data: dict | None = None, csrf: bool = True, **kwargs):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token())
        return self.client.post(url, data=data, **kwargs)

    def login(self, username: str, password: str = PASSWORD, **kwargs):
        token = self.token()
        return self.client.post("/login", data={"username": username, "password": password,
                                                "csrf_token": token}, **kwargs)


@pytest.fixture
def web(app) -> Web:
    return Web(app.test_client())


@pytest.fixture
def as_user(app):
    """as_user("anna") -> a Web client logged in as anna."""
    def make(username: str) -> Web:
        w = Web(app.test_client())
        response = w.login(username)
        assert response.status_code == 302, response.get_data(as_text=True)
        return w
    return make


@pytest.fixture
def case(web_engine):
    """A running 'testsag' case with its first task (Sekretariat) open."""
    return web_engine.runtime.start("testsag", business_key="K-2027-1", user="anna")


def text(response) -> str:
    return response.get_data(as_text=True)
