"""The API token pages: a user makes and revokes their own tokens (the token is shown once, never
stored in the session), sees nobody else's; administrators see and revoke everyone's."""

from __future__ import annotations

import re

import pytest

from .conftest import TOKEN, text

SECRET = re.compile(r"af_[A-Za-z0-9_-]{43}")


def create(client, name: str = "Rapport-script", expires: str = "90", csrf: bool = True):
    return client.post("/account/tokens", {"name": name, "expires": expires}, csrf=csrf)


def session_data(app, client) -> dict:
    cookie = client.client.get_cookie("session")
    assert cookie is not None
    return dict(app.session_interface.get_signing_serializer(app).loads(cookie.value))


def test_the_page_is_linked_from_the_header_and_lists_nothing_at_first(as_user):
    anna = as_user("anna")
    assert 'href="/account/tokens"' in text(anna.get("/"))
    page = anna.get("/account/tokens")
    html = text(page)
    assert page.status_code == 200 and "<h1>API-nøgler</h1>" in html and "Du har ingen API-nøgler." in html
    assert TOKEN.search(html) and page.headers["Cache-Control"] == "no-store"


def test_a_new_token_is_shown_once_and_works(app, as_user, web_engine, api_client):
    anna = as_user("anna")
    response = create(anna, expires="30")
    html = text(response)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    [token] = set(SECRET.findall(html))
    assert "Kopiér nøglen nu" in html and 'id="new-token"' in html and "readonly" in html
    assert api_client(token).get("/api/tasks").status_code == 200
    [view] = web_engine.tokens.list("anna")
    assert view.name == "Rapport-script" and view.created_by == "anna"
    assert (view.expires_at - web_engine.clock.now()).days == 30
    # Never again: not on the next page view, not in the session cookie, not in a flash message.
    again = text(anna.get("/account/tokens"))
    assert token not in again and "Rapport-script" in again and token[:7] in again
    assert token not in repr(session_data(app, anna))


def test_never_expiring_tokens(as_user, web_engine):
    create(as_user("anna"), expires="")
    assert web_engine.tokens.list("anna")[0].expires_at is None


@pytest.mark.parametrize(("form", "field"), [
    ({"name": "", "expires": "90"}, "token-name"),
    ({"name": "x" * 101, "expires": "90"}, "token-name"),
    ({"name": "ok", "expires": "7"}, "token-expires"),
    ({"name": "ok", "expires": "abc"}, "token-expires"),
])
def test_bad_input_is_a_field_error_and_makes_nothing(as_user, web_engine, form, field):
    response = as_user("anna").post("/account/tokens", form)
    html = text(response)
    assert response.status_code == 400
    assert 'class="error-summary"' in html and f'href="#{field}"' in html
    assert f'id="{field}-error"' in html and re.search(rf'id="{field}"[^>]*aria-invalid="true"', html, re.S)
    assert not SECRET.search(html)
    assert web_engine.tokens.list("anna") == []


def test_creating_needs_the_csrf_token(as_user, web_engine):
    response = create(as_user("anna"), csrf=False)
    assert response.status_code == 400 and not SECRET.search(text(response))
    assert web_engine.tokens.list("anna") == []


def test_a_user_revokes_their_own_token(as_user, web_engine, api_client):
    anna = as_user("anna")
    token = SECRET.search(text(create(anna))).group(0)
    [view] = web_engine.tokens.list("anna")
    response = anna.post(f"/account/tokens/{view.id}/revoke")
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/tokens")
    html = text(anna.get("/account/tokens"))
    assert "er tilbagekaldt og virker ikke længere" in html and "Tilbagekaldt" in html
    assert api_client(token).get("/api/tasks").status_code == 401
    assert anna.post(f"/account/tokens/{view.id}/revoke").status_code == 302  # twice: a message, no error
    assert "allerede tilbagekaldt" in text(anna.get("/account/tokens"))


def test_revoking_needs_the_csrf_token(as_user, web_engine):
    made = web_engine.tokens.create("anna", "script")
    assert as_user("anna").post(f"/account/tokens/{made.view.id}/revoke", csrf=False).status_code == 400
    assert web_engine.tokens.get(made.view.id).status == "active"


def test_another_users_token_is_neither_visible_nor_revocable(as_user, web_engine, api_client):
    bos = web_engine.tokens.create("bo", "Bos hemmelige script")
    anna = as_user("anna")
    assert "Bos hemmelige script" not in text(anna.get("/account/tokens"))
    assert anna.post(f"/account/tokens/{bos.view.id}/revoke").status_code == 404
    assert web_engine.tokens.get(bos.view.id).status == "active"
    assert api_client(bos.token).get("/api/tasks").status_code == 200


def test_administrators_see_and_revoke_every_users_tokens(as_user, web_engine, api_client):
    annas = web_engine.tokens.create("anna", "Annas script")
    bos = web_engine.tokens.create("bo", "Bos script")
    admin = as_user("admin")
    assert 'href="/admin/tokens"' in text(admin.get("/admin/users"))
    html = text(admin.get("/admin/tokens"))
    assert "Annas script" in html and "Bos script" in html and annas.token not in html
    only_anna = text(admin.get("/admin/tokens?user=anna"))
    assert "Annas script" in only_anna and "Bos script" not in only_anna
    response = admin.post(f"/admin/tokens/{bos.view.id}/revoke", {"user": "bo"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/tokens?user=bo")
    assert web_engine.tokens.get(bos.view.id).status == "revoked"
    assert api_client(bos.token).get("/api/tasks").status_code == 401
    assert api_client(annas.token).get("/api/tasks").status_code == 200
    assert admin.get("/admin/tokens?user=nobody").status_code == 404
    assert "token_revoked" in [e.type for e in web_engine.history.events(type_="token_revoked")]


def test_members_may_not_use_the_admin_token_pages(as_user, web_engine):
    made = web_engine.tokens.create("bo", "script")
    anna = as_user("anna")
    assert anna.get("/admin/tokens").status_code == 403
    assert anna.post(f"/admin/tokens/{made.view.id}/revoke").status_code == 403
    assert web_engine.tokens.get(made.view.id).status == "active"


def test_the_pages_need_a_login(web):
    response = web.get("/account/tokens")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_pages_are_in_english_too(as_user, web_engine):
    web_engine.tokens.create("anna", "script", expires_days=30)
    anna = as_user("anna")
    html = text(anna.get("/account/tokens?lang=en"))
    assert "<h1>API tokens</h1>" in html and "Create API token" in html and "Revoke" in html
    html = text(create(anna))
    assert "Copy the token now" in html
    admin = as_user("admin")
    html = text(admin.get("/admin/tokens?lang=en"))
    assert "<h1>Every user" in html, re.search(r"<h1>.*</h1>", html).group(0)


@pytest.fixture
def api_client(app):
    """api_client(token) -> a test client sending that token as a Bearer credential."""
    class Client:
        def __init__(self, token: str) -> None:
            self.client = app.test_client()
            self.headers = {"Authorization": f"Bearer {token}"}

        def get(self, url: str):
            return self.client.get(url, headers=self.headers)

    return Client
