"""Login, logout, login required, CSRF, rate limiting, session cookie and the secret key."""

from __future__ import annotations

import os
import stat

import pytest

from webapp import create_app

from .conftest import PASSWORD, Web, text

PROTECTED = ["/", "/tasks", "/tasks/1", "/instances", "/instances/1", "/processes", "/processes/testsag",
             "/processes/testsag/versions/1/xml", "/admin", "/admin/users", "/forums", "/forums/Sekretariat"]


def test_login_page_is_a_plain_form_with_csrf(web):
    response = web.get("/login")
    assert response.status_code == 200
    html = text(response)
    for name in ('name="username"', 'name="password"', 'name="csrf_token"'):
        assert name in html
    assert '<html lang="da">' in html
    assert "Log ind" in html


@pytest.mark.parametrize("url", PROTECTED)
def test_every_page_needs_a_login(web, url):
    response = web.get(url)
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")


@pytest.mark.parametrize("url", ["/logout", "/tasks/1", "/tasks/1/claim", "/instances/1/suspend", "/processes",
                                 "/processes/henvendelse/start", "/admin/users"])
def test_posts_need_a_login_too(web, url):
    response = web.post(url)
    assert response.status_code in (302, 400)  # logout without a session still needs its CSRF token
    if response.status_code == 302:
        assert response.location.startswith("/login")


def test_login_and_logout(web):
    response = web.login("anna")
    assert response.status_code == 302 and response.location == "/"
    home = web.get("/")
    assert home.status_code == 200
    assert "Anna Andersen" in text(home)
    response = web.post("/logout")
    assert response.status_code == 302 and response.location == "/login"
    assert web.get("/").status_code == 302


def test_login_follows_next_but_only_on_this_site(web):
    token = web.token()
    response = web.client.post("/login?next=/tasks", data={"username": "anna", "password": PASSWORD,
                                                            "csrf_token": token})
    assert response.location == "/tasks"
    web.post("/logout")
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        token = web.token()
        response = web.client.post("/login", data={"username": "anna", "password": PASSWORD,
                                                   "csrf_token": token, "next": evil})
        assert response.location == "/", evil
        web.post("/logout")


def test_wrong_password_is_refused_with_a_danish_message(web):
    response = web.login("anna", "forkert-kode")
    assert response.status_code == 200
    assert "Forkert brugernavn eller adgangskode." in text(response)
    assert web.get("/").status_code == 302


def test_unknown_and_inactive_users_cannot_log_in(web, web_engine):
    assert "Forkert brugernavn" in text(web.login("nobody"))
    web_engine.identity.update_user("anna", active=False)
    assert "Forkert brugernavn" in text(web.login("anna"))


def test_a_deactivated_user_is_logged_out_on_the_next_request(as_user, web_engine):
    anna = as_user("anna")
    assert anna.get("/").status_code == 200
    web_engine.identity.update_user("anna", active=False)
    assert anna.get("/").status_code == 302


def test_login_without_csrf_token_is_refused(web):
    response = web.client.post("/login", data={"username": "anna", "password": PASSWORD})
    assert response.status_code == 400
    assert "sikkerhedsnøglen" in text(response)
    assert web.get("/").status_code == 302


def test_logout_without_csrf_token_is_refused(as_user):
    anna = as_user("anna")
    assert anna.post("/logout", csrf=False).status_code == 400
    assert anna.get("/").status_code == 200


def test_login_is_rate_limited_per_username_and_ip(web):
    for _ in range(5):
        assert web.login("anna", "forkert-kode").status_code == 200
    response = web.login("anna")  # even the right password waits now
    assert response.status_code == 429
    assert "For mange mislykkede loginforsøg" in text(response)
    assert int(response.headers["Retry-After"]) > 0
    assert web.get("/").status_code == 302
    # another user from the same address is not locked out by anna's failures
    assert web.login("bo").status_code == 302


def test_rate_limit_counts_only_failures_and_resets_on_success(web):
    for _ in range(4):
        web.login("anna", "forkert-kode")
    assert web.login("anna").status_code == 302
    web.post("/logout")
    for _ in range(4):
        assert web.login("anna", "forkert-kode").status_code == 200
    assert web.login("anna").status_code == 302


def test_session_cookie_is_httponly_and_samesite_lax(web):
    response = web.login("anna")
    cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith("session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_security_headers(as_user):
    response = as_user("anna").get("/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_secret_key_is_generated_once_and_kept_private(web_engine, tmp_path, monkeypatch):
    monkeypatch.delenv("ALMENFLOW_SECRET_KEY", raising=False)
    folder = tmp_path / "inst"
    first = create_app(web_engine, {"ALMENFLOW_INSTANCE_PATH": str(folder)})
    key_file = folder / "secret_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    second = create_app(web_engine, {"ALMENFLOW_INSTANCE_PATH": str(folder)})
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text().strip()
    assert len(first.config["SECRET_KEY"]) >= 32


def test_secret_key_from_the_environment_wins(web_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("ALMENFLOW_SECRET_KEY", "from-the-environment")
    app = create_app(web_engine, {"ALMENFLOW_INSTANCE_PATH": str(tmp_path / "i2")})
    assert app.config["SECRET_KEY"] == "from-the-environment"
    assert not (tmp_path / "i2" / "secret_key").exists()


def test_sessions_survive_a_restart(web_engine, tmp_path, monkeypatch):
    monkeypatch.delenv("ALMENFLOW_SECRET_KEY", raising=False)
    folder = str(tmp_path / "inst")
    w = Web(create_app(web_engine, {"ALMENFLOW_INSTANCE_PATH": folder}).test_client())
    w.login("anna")
    cookie = w.client.get_cookie("session").value
    restarted = create_app(web_engine, {"ALMENFLOW_INSTANCE_PATH": folder}).test_client()
    restarted.set_cookie("session", cookie)
    assert restarted.get("/").status_code == 200


def test_create_app_without_an_engine_uses_the_environment(empty_db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ALMENFLOW_DATABASE_URL", empty_db_url)
    monkeypatch.setenv("ALMENFLOW_SECRET_KEY", "x" * 32)
    app = create_app(config={"ALMENFLOW_INSTANCE_PATH": str(tmp_path / "inst")})
    eng = app.extensions["almenflow"]
    try:
        assert eng.db.url == empty_db_url
        assert eng.identity.users() == []  # schema created by init_db()
    finally:
        eng.dispose()


def test_the_scheduler_runs_only_when_asked_for(web_engine, tmp_path):
    quiet = create_app(web_engine, {"ALMENFLOW_INSTANCE_PATH": str(tmp_path / "a")})
    assert "almenflow_scheduler" not in quiet.extensions
    busy = create_app(web_engine, {"ALMENFLOW_INSTANCE_PATH": str(tmp_path / "b"), "ALMENFLOW_SCHEDULER": True})
    scheduler = busy.extensions["almenflow_scheduler"]
    try:
        assert scheduler.running and scheduler.get_job("run_due") is not None
    finally:
        scheduler.shutdown(wait=False)
