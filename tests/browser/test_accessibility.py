"""axe-core on every page type of the web app (WCAG 2.0/2.1 level A and AA), as the user who sees it.

Each page is opened in a fresh browser context, logged in through the real form, given time for the
bpmn-js diagrams to draw, screenshotted, and checked. A violation fails with its rule, impact, help
text and the selectors of the offending elements.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import ADMIN, MEMBER, OWNER, LiveServer, assert_accessible, login, wait_for_diagrams

pytestmark = pytest.mark.browser


def open_task_id(live: LiveServer, business_key: str, element_id: str = "visiter") -> int:
    """An open task of a demo case (the demo's cases are started by load_demo)."""
    rows, _total = live.engine.runtime.list(business_key=business_key)
    assert rows, f"demo case {business_key} is missing"
    tasks = live.engine.tasks.query(instance_id=rows[0]["id"])
    found = [t for t in tasks if t.element_id == element_id]
    assert found, f"{business_key} has no open {element_id} task: {[t.element_id for t in tasks]}"
    return found[0].id


def instance_id(live: LiveServer, business_key: str) -> int:
    rows, _total = live.engine.runtime.list(business_key=business_key)
    assert rows, f"demo case {business_key} is missing"
    return rows[0]["id"]


def visit(page: Any, path: str, status: int = 200) -> None:
    response = page.goto(path)
    assert response is not None and response.status == status, \
        f"{path}: HTTP {response.status if response else '?'}, expected {status}"
    wait_for_diagrams(page)


# (test id, user or None for anonymous, path or a function of the live server giving it, expected status)
PAGES = [
    ("login", None, "/login", 200),
    ("start-page", MEMBER, "/", 200),
    ("inbox", MEMBER, "/tasks", 200),
    ("task-page", MEMBER, lambda live: f"/tasks/{open_task_id(live, 'H-2027-002')}", 200),
    ("forums", MEMBER, "/forums", 200),
    ("forum-page", MEMBER, "/forums/TMF sekretariat", 200),
    ("start-list", MEMBER, "/start", 200),
    ("start-form", MEMBER, "/start/henvendelse", 200),
    ("instances", ADMIN, "/instances", 200),
    ("instance-page", ADMIN, lambda live: f"/instances/{instance_id(live, 'FI-2027-004')}", 200),
    ("admin-dashboard", ADMIN, "/admin", 200),
    ("admin-users", ADMIN, "/admin/users", 200),
    ("account-tokens", MEMBER, "/account/tokens", 200),
    ("admin-tokens", ADMIN, "/admin/tokens", 200),
    ("processes", OWNER, "/processes", 200),
    ("process-page", OWNER, "/processes/henvendelse", 200),
    ("modeler", OWNER, "/processes/henvendelse/edit", 200),
    ("modeler-new", OWNER, "/processes/new", 200),
    ("error-403", MEMBER, "/admin", 403),
    ("error-404", MEMBER, "/forums/Findes ikke", 404),
    ("error-404-anonymous", None, "/static/findes-ikke.css", 404),
]


@pytest.mark.parametrize(("user", "path", "status"), [p[1:] for p in PAGES], ids=[p[0] for p in PAGES])
def test_page_has_no_wcag_violations(page, live, shot, user, path, status) -> None:
    if user:
        login(page, *user)
    target = path(live) if callable(path) else path
    visit(page, target, status)
    shot(page, "page")
    assert_accessible(page, target)
    assert not page.js_errors, f"JavaScript errors on {target}: {page.js_errors}"


def submit(page: Any, button: str, status: int) -> None:
    """Click a submit button and wait for the answer page."""
    with page.expect_navigation() as nav:
        page.get_by_role("button", name=button, exact=True).click()
    assert nav.value.status == status, f"HTTP {nav.value.status}, expected {status}"
    wait_for_diagrams(page)


def test_task_page_after_a_failed_submit(page, live, shot) -> None:
    """The error summary, field errors and aria-invalid fields of a refused task form."""
    task_id = open_task_id(live, "H-2027-002")
    login(page, *MEMBER)
    visit(page, f"/tasks/{task_id}")
    page.select_option("#field-temagruppe", "")
    submit(page, "Afslut opgaven", 422)
    assert page.locator(".error-summary").is_visible()
    assert page.locator("#field-temagruppe-error").is_visible()
    shot(page, "failed-submit")
    assert_accessible(page, f"/tasks/{task_id} after a failed submit")
    assert live.engine.tasks.get(task_id).status == "open"


def test_start_form_after_a_failed_submit(page, live, shot) -> None:
    login(page, *MEMBER)
    visit(page, "/start/henvendelse")
    before = live.engine.runtime.list(key="henvendelse")[1]
    submit(page, "Start sagen", 422)
    assert page.locator(".error-summary").is_visible()
    assert page.locator("#field-titel-error").is_visible()
    shot(page, "failed-submit")
    assert_accessible(page, "/start/henvendelse after a failed submit")
    assert live.engine.runtime.list(key="henvendelse")[1] == before


def test_instance_page_after_a_refused_action(page, live, shot) -> None:
    """An administrator's "send message" with data that is not JSON: the field error is accessible."""
    target = instance_id(live, "FI-2027-004")
    login(page, *ADMIN)
    visit(page, f"/instances/{target}")
    page.fill("#field-message_name", "svar")
    page.fill("#field-message_variables", "ikke json")
    submit(page, "Send besked", 422)
    assert page.locator("#field-message_variables-error").is_visible()
    shot(page, "refused-message")
    assert_accessible(page, f"/instances/{target} after a refused action")


def test_admin_users_after_a_failed_submit(page, live, shot) -> None:
    login(page, *ADMIN)
    visit(page, "/admin/users")
    users = len(live.engine.identity.users())
    page.fill("#new-username", "X")  # not a valid user name, and too short a password
    page.fill("#new-password", "kort")
    submit(page, "Opret bruger", 400)
    shot(page, "failed-submit")
    assert_accessible(page, "/admin/users after a failed submit")
    assert len(live.engine.identity.users()) == users


def test_api_token_page_with_a_new_token_and_after_a_failed_submit(page, live, shot) -> None:
    """The panel that shows a new token once, the token table, and the field error of a refused form."""
    before = len(live.engine.tokens.list(MEMBER[0]))
    login(page, *MEMBER)
    visit(page, "/account/tokens")
    page.fill("#token-name", "Rapport-script")
    submit(page, "Opret API-nøgle", 200)
    assert page.locator("#new-token").input_value().startswith("af_")
    shot(page, "new-token")
    assert_accessible(page, "/account/tokens with a new token")
    page.fill("#token-name", "   ")  # passes the browser's `required`, refused by the server
    submit(page, "Opret API-nøgle", 400)
    assert page.locator("#token-name-error").is_visible()
    shot(page, "failed-submit")
    assert_accessible(page, "/account/tokens after a failed submit")
    assert len(live.engine.tokens.list(MEMBER[0])) == before + 1


def test_admin_token_page_with_tokens(page, live, shot) -> None:
    made = live.engine.tokens.create(OWNER[0], "Eksport", expires_days=30)
    live.engine.tokens.revoke(live.engine.tokens.create(OWNER[0], "Gammel").view.id, by=ADMIN[0])
    login(page, *ADMIN)
    visit(page, "/admin/tokens")
    assert page.locator(f"#token-{made.view.id}").is_visible()
    shot(page, "tokens")
    assert_accessible(page, "/admin/tokens with tokens")


def test_modeler_with_a_selected_task_and_validation_problems(page, live, shot) -> None:
    """The properties panel of a user task, and the problems list after a validation that failed."""
    login(page, *OWNER)
    visit(page, "/processes/henvendelse/edit")
    page.locator('#modeler [data-element-id="visiter"]').first.click()
    page.locator('[data-group-id="group-CamundaPlatform__UserAssignment"] .bio-properties-panel-group-header').click()
    page.fill("#bio-properties-panel-dueDate", "P5D +++ (")
    page.keyboard.press("Tab")
    shot(page, "properties")
    assert_accessible(page, "the modeler with a user task's properties open")

    page.click("#validate-button")
    page.wait_for_selector("[data-bpmn-modeler][aria-busy=false]")
    problems = page.locator("#problems")
    assert problems.is_visible()
    assert "visiter" in problems.inner_text()
    # Each problem names its element; its button selects the element in the diagram.
    page.locator('#modeler [data-element-id="forbered_sag"]').first.click()
    problems.get_by_role("button").first.click()
    selected = page.evaluate("""() => document.querySelector('[data-bpmn-modeler]').modeler
                                        .get('selection').get().map(e => e.id)""")
    assert selected == ["visiter"]
    shot(page, "problems")
    assert_accessible(page, "the modeler with validation problems listed")
    assert live.engine.definitions.get("henvendelse").version == \
        max(d.version for d in live.engine.definitions.list() if d.key == "henvendelse")


@pytest.mark.parametrize(("user", "path"), [
    (MEMBER, "/"),
    (MEMBER, "/tasks"),
    (MEMBER, lambda live: f"/tasks/{open_task_id(live, 'H-2027-002')}"),
    (ADMIN, "/admin"),
    (OWNER, "/processes/henvendelse/edit"),
    (MEMBER, "/findes-ikke"),
], ids=["start-page", "inbox", "task-page", "admin-dashboard", "modeler", "error-404"])
def test_english_pages_have_no_wcag_violations(page, live, shot, user, path) -> None:
    login(page, *user)
    path = path(live) if callable(path) else path
    visit(page, path + "?lang=en", 404 if "findes-ikke" in path else 200)
    assert page.locator("html").get_attribute("lang") == "en"
    shot(page, "en")
    assert_accessible(page, f"{path}?lang=en")


def test_keyboard_only_login_and_skip_link(page, live, shot) -> None:
    """The first Tab stop is the skip link to the content; the login form works without a mouse."""
    visit(page, "/login")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "content"
    # From the content, Tab reaches the form's fields in order.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "username"
    page.keyboard.type(MEMBER[0])
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "password"
    page.keyboard.type(MEMBER[1])
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.rstrip("/") == live.url
    assert "Du er logget ind som Anna Holm." in page.locator(".flashes").inner_text()
    shot(page, "logged-in")
