"""List pages follow cursors: the inbox's and the case list's next/previous links carry `after`/`before`
and the page number; an edited cursor falls back to the first page; the API hands out `next`."""

from __future__ import annotations

import html
import re

from .conftest import text


def links(page_html: str, rel: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(rf'<a href="([^"]+)" rel="{rel}"', page_html)]


def task_ids(page_html: str) -> list[str]:
    return re.findall(r'href="/tasks/(\d+)"', page_html)


def test_inbox_next_and_previous_links_walk_every_task_once(app, as_user, web_engine):
    app.config["ALMENFLOW_PAGE_SIZE"] = 2
    for n in range(5):
        web_engine.runtime.start("testsag", business_key=f"P-{n}", user="anna")
    anna = as_user("anna")
    page = anna.get("/tasks?sort=name").get_data(as_text=True)
    seen, pages = [], [task_ids(page)]
    while links(page, "next"):
        (url,) = links(page, "next")
        assert "after=" in url and "sort=name" in url
        page = anna.get(url).get_data(as_text=True)
        pages.append(task_ids(page))
    seen = [t for p in pages for t in p]
    assert len(seen) == len(set(seen)) == 5 and "Side 3 af 3" in text(anna.get(url))
    (back,) = links(page, "prev")
    assert "before=" in back and "page=2" in back
    assert task_ids(anna.get(back).get_data(as_text=True)) == pages[1]


def test_an_edited_cursor_shows_the_first_page(app, as_user, web_engine):
    for n in range(3):
        web_engine.runtime.start("testsag", business_key=f"P-{n}", user="anna")
    anna = as_user("anna")
    response = anna.get("/tasks?after=not-a-cursor&page=4")
    assert response.status_code == 200 and "3 opgaver" in text(response) and len(task_ids(text(response))) == 3
    assert as_user("admin").get("/instances?before=%%%&page=2").status_code == 200


def test_case_list_links_carry_cursors(app, as_user, web_engine):
    app.config["ALMENFLOW_PAGE_SIZE"] = 2
    for n in range(5):
        web_engine.runtime.start("testsag", business_key=f"C-{n}", user="anna")
    admin = as_user("admin")
    first = admin.get("/instances").get_data(as_text=True)
    (url,) = links(first, "next")
    second = text(admin.get(url))
    assert "after=" in url and "Side 2 af 3" in second


def test_api_pages_with_next_cursors(as_user, web_engine):
    for n in range(5):
        web_engine.runtime.start("testsag", business_key=f"A-{n}", user="anna")
    anna = as_user("anna")
    page = anna.get("/api/instances?limit=2").get_json()
    assert page["total"] == 5 and page["total_exact"] is True and page["next"]
    keys = [i["business_key"] for i in page["items"]]
    while page["next"]:
        page = anna.get(f"/api/instances?limit=2&after={page['next']}").get_json()
        keys += [i["business_key"] for i in page["items"]]
    assert keys == [f"A-{n}" for n in range(4, -1, -1)]
    tasks = anna.get("/api/tasks?limit=2").get_json()
    assert tasks["total_exact"] is True and tasks["next"]
    more = anna.get(f"/api/tasks?limit=2&after={tasks['next']}").get_json()
    assert not {t["id"] for t in more["items"]} & {t["id"] for t in tasks["items"]}
    bad = anna.get("/api/tasks?after=garbage")
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"
    assert anna.get("/api/instances?offset=10001").status_code == 400
