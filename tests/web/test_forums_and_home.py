"""The forum hierarchy, a forum's page, and the start page."""

from __future__ import annotations

from datetime import timedelta

from .conftest import text


def test_forums_are_grouped_by_level_then_kind(as_user):
    response = as_user("outsider").get("/forums")
    assert response.status_code == 200
    html = text(response)
    order = [html.index(s) for s in ("Niveau 1", "Borgmesterforum", "Partnerskabsforum", "Niveau 2", "Styregruppe",
                                     "Samarbejdsforum", "Niveau 3", "Sekretariat", "Lokaludvalg", "Valby Lokaludvalg")]
    assert order == sorted(order)
    assert "Med sektoren" in html and "Internt i kommunen" in html


def test_forum_page_shows_members_open_tasks_and_upcoming_meetings(as_user, case):
    html = text(as_user("bo").get("/forums/Sekretariat"))
    assert "anna" in html and "carl" in html
    assert "Registrer sagen" in html
    styregruppe = text(as_user("bo").get("/forums/Styregruppe"))
    assert "Forummet har ingen åbne opgaver." in styregruppe
    assert "14. jan. 2027" in styregruppe and "1. dec. 2026" not in styregruppe


def test_forum_names_with_spaces_and_unknown_forums(as_user):
    anna = as_user("anna")
    assert anna.get("/forums/Valby Lokaludvalg").status_code == 200
    assert anna.get("/forums/Intet").status_code == 404


def test_start_page_shows_my_tasks_overdue_first_and_the_cases_i_started(as_user, web_engine, web_clock):
    web_engine.runtime.start("henvendelse", business_key="H-1", user="anna")  # no due date
    late = web_engine.runtime.start("testsag", business_key="K-late", user="bo")
    web_clock.advance(timedelta(days=4))
    web_engine.runtime.start("testsag", business_key="K-new", user="anna")  # due in 3 days
    html = text(as_user("anna").get("/"))
    tasks = html.split("Opgaver, der venter på dig", 1)[1].split("Sager, du har startet", 1)[0]
    assert tasks.index("K-late") < tasks.index("K-new") < tasks.index("Henvendelse")
    assert "1 dag over frist" in tasks and "om 3 dage" in tasks
    started = html.split("Sager, du har startet", 1)[1]
    assert "H-1" in started and "K-new" in started and "K-late" not in started
    assert late.id  # bo's case is in anna's inbox (her forum) but not among hers


def test_start_page_for_a_user_with_nothing_to_do(as_user):
    html = text(as_user("outsider").get("/"))
    assert "Ingen opgaver venter på dig lige nu." in html
    assert "Du har ikke startet nogen sager." in html
    assert "Henvendelse" in html and "Testsag" not in html  # may start only the open process


def test_navigation_shows_only_what_the_role_may_use(as_user):
    member = text(as_user("anna").get("/"))
    assert 'href="/processes"' not in member and 'href="/admin"' not in member
    owner = text(as_user("olga").get("/"))
    assert 'href="/processes"' in owner and 'href="/admin"' not in owner
    admin = text(as_user("admin").get("/"))
    for href in ('href="/processes"', 'href="/instances"', 'href="/admin"', 'href="/admin/users"'):
        assert href in admin
    assert 'aria-current="page"' in admin
