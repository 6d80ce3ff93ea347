"""Administration: the dashboard, and users (add, role, deactivate, forum membership)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from .conftest import PASSWORD, Web, text


def test_dashboard_counts_cases_overdue_tasks_and_upcoming_timers(as_user, web_engine, case, web_clock):
    web_engine.runtime.start("henvendelse", business_key="H-1", user="anna")
    other = web_engine.runtime.start("testsag", business_key="K-2", user="anna")
    web_engine.runtime.suspend(other.id, "admin")
    web_clock.advance(timedelta(days=4))
    web_engine.runtime.start("henvendelse", business_key="H-2", user="anna")  # its timer is due in 2 h
    response = as_user("admin").get("/admin")
    assert response.status_code == 200
    html = text(response)
    assert "Testsag" in html and "Henvendelse" in html
    assert '/instances?process=testsag&amp;version=1&amp;status=suspended">1</a>' in html
    sekretariat = html.split('href="/forums/Sekretariat">Sekretariat</a></th>', 1)[1].split("</tr>", 1)[0]
    assert "<td>4</td>" in sekretariat and '<strong class="overdue">2</strong>' in sekretariat
    assert "Påmindelse" in html and "H-2" in html.split("Tidsfrister de næste 24 timer", 1)[1]


@pytest.mark.parametrize("url", ["/admin", "/admin/users"])
@pytest.mark.parametrize("user", ["anna", "olga"])
def test_only_administrators_reach_administration(as_user, url, user):
    response = as_user(user).get(url)
    assert response.status_code == 403
    assert "Adgang nægtet" in text(response)


def test_users_page_lists_users_with_roles_and_forums(as_user):
    html = text(as_user("admin").get("/admin/users"))
    for name in ("Anna Andersen", "Carl Clausen", "Olga Ottesen"):
        assert name in html
    assert '<option value="owner" selected>Procesejer</option>' in html


def test_add_a_user_who_can_then_log_in(app, as_user, web_engine):
    admin = as_user("admin")
    response = admin.post("/admin/users", {"username": "dorte", "name": "Dorte Dam", "role": "member",
                                           "password": "langt-nok-1", "forums": ["Sekretariat", "Styregruppe"]})
    assert response.status_code == 302
    user = web_engine.identity.get_user("dorte")
    assert user["name"] == "Dorte Dam" and sorted(user["forums"]) == ["Sekretariat", "Styregruppe"]
    assert "Brugeren dorte er oprettet." in text(admin.get("/admin/users"))
    assert Web(app.test_client()).login("dorte", "langt-nok-1").status_code == 302


@pytest.mark.parametrize(("form", "message"), [
    ({"username": "X y", "password": "langt-nok-1"}, "Brugernavnet skal være 2-50 tegn"),
    ({"username": "dorte", "password": "kort"}, "Adgangskoden skal være mindst 8 tegn."),
    ({"username": "dorte", "password": "langt-nok-1", "role": "king"}, "Vælg en gyldig rolle."),
    ({"username": "anna", "password": "langt-nok-1"}, "Brugeren anna findes allerede."),
])
def test_add_user_refuses_bad_input(as_user, web_engine, form, message):
    response = as_user("admin").post("/admin/users", {"name": "Navn", **form})
    assert response.status_code == 400
    html = text(response)
    assert message in html
    assert 'value="Navn"' in html  # what was typed is kept (never the password)
    assert len(web_engine.identity.users()) == 6


def test_change_role(as_user, web_engine):
    admin = as_user("admin")
    assert admin.post("/admin/users/anna/role", {"role": "owner"}).status_code == 302
    assert web_engine.identity.get_user("anna")["role"] == "owner"
    assert "anna har nu rollen Procesejer." in text(admin.get("/admin/users"))
    assert admin.post("/admin/users/anna/role", {"role": "king"}).status_code == 400
    assert admin.post("/admin/users/nobody/role", {"role": "owner"}).status_code == 404


def test_deactivate_and_reactivate(app, as_user, web_engine):
    admin = as_user("admin")
    admin.post("/admin/users/anna/active", {"active": "0"})
    assert web_engine.identity.get_user("anna")["active"] is False
    assert "Forkert brugernavn" in text(Web(app.test_client()).login("anna"))
    admin.post("/admin/users/anna/active", {"active": "1"})
    assert Web(app.test_client()).login("anna", PASSWORD).status_code == 302


def test_administrators_cannot_lock_themselves_out(as_user, web_engine):
    admin = as_user("admin")
    admin.post("/admin/users/admin/active", {"active": "0"})
    admin.post("/admin/users/admin/role", {"role": "member"})
    assert web_engine.identity.get_user("admin")["role"] == "admin"
    assert web_engine.identity.get_user("admin")["active"] is True
    assert "Du kan ikke ændre din egen rolle" in text(admin.get("/admin/users"))


def test_forum_membership(as_user, web_engine):
    admin = as_user("admin")
    admin.post("/admin/users/anna/forums", {"forum": "Styregruppe", "member": "1"})
    assert sorted(web_engine.identity.get_user("anna")["forums"]) == ["Sekretariat", "Styregruppe"]
    admin.post("/admin/users/anna/forums", {"forum": "Sekretariat", "member": "0"})
    assert web_engine.identity.get_user("anna")["forums"] == ["Styregruppe"]
    assert "anna er ikke længere medlem af Sekretariat." in text(admin.get("/admin/users"))
    assert admin.post("/admin/users/anna/forums", {"forum": "Intet", "member": "1"}).status_code == 400


@pytest.mark.parametrize(("url", "data"), [
    ("/admin/users", {"username": "dorte", "password": "langt-nok-1"}),
    ("/admin/users/bo/role", {"role": "admin"}),
    ("/admin/users/bo/active", {"active": "0"}),
    ("/admin/users/bo/forums", {"forum": "Sekretariat", "member": "1"}),
])
def test_members_and_owners_may_not_manage_users(as_user, web_engine, url, data):
    for user in ("anna", "olga"):
        assert as_user(user).post(url, data).status_code == 403
    bo = web_engine.identity.get_user("bo")
    assert bo["role"] == "member" and bo["active"] and bo["forums"] == ["Styregruppe"]
    assert len(web_engine.identity.users()) == 6


def test_user_changes_need_the_csrf_token(as_user, web_engine):
    assert as_user("admin").post("/admin/users/bo/role", {"role": "admin"}, csrf=False).status_code == 400
    assert web_engine.identity.get_user("bo")["role"] == "member"


def test_an_administrator_is_not_offered_to_change_their_own_role_or_deactivate_themselves(as_user):
    html = text(as_user("admin").get("/admin/users"))
    own_row = html.split('id="user-admin"', 1)[1].split("</tr>", 1)[0]
    assert "det er dig" in own_row
    assert "/admin/users/admin/active" not in own_row and "/admin/users/admin/role" not in own_row
    assert "/admin/users/anna/active" in html
