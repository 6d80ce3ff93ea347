"""The three kinds of users doing their job in a real browser on the demo data (issue 3, "Tests").

Each journey goes through the UI only (clicks, typing, the real login form) and then checks what
the user sees and what the engine recorded. Screenshots of every page visited are written to
test-artifacts/screenshots/.
"""

from __future__ import annotations

import re

import pytest
from lxml import etree

from .conftest import ADMIN, MEMBER, OWNER, assert_accessible, login, wait_for_diagrams

pytestmark = pytest.mark.browser

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"


def test_forum_member_completes_a_task_from_the_inbox(page, live, shot) -> None:
    """anna (TMF sekretariat) visits a henvendelse: a failed submit first, then the real one."""
    eng = live.engine
    rows, _total = eng.runtime.list(business_key="H-2027-001")
    instance_id = rows[0]["id"]
    task = next(t for t in eng.tasks.query(instance_id=instance_id) if t.element_id == "visiter")
    assert task.assignee is None

    login(page, *MEMBER)
    shot(page, "01-start-page")

    # The inbox lists the task; filter to the henvendelse process and open it.
    page.get_by_role("navigation", name="Hovedmenu").get_by_role("link", name="Opgaver").click()
    page.wait_for_url("**/tasks")
    page.select_option("#f-process", "henvendelse")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    row = page.locator("table tbody tr", has_text="H-2027-001")
    assert row.count() == 1, page.locator("main").inner_text()
    assert "Visitér henvendelsen" in row.inner_text()
    shot(page, "02-inbox")
    with page.expect_navigation():
        row.get_by_role("link", name="Visitér henvendelsen").click()
    assert page.url.endswith(f"/tasks/{task.id}")
    wait_for_diagrams(page)
    assert page.locator("h1").inner_text() == "Visitér henvendelsen"
    assert "H-2027-001" in page.locator("dl.meta").inner_text()
    shot(page, "03-task")

    # Claim it.
    with page.expect_navigation():
        page.get_by_role("button", name="Tag opgaven").click()
    assert "Du har taget opgaven." in page.locator(".flashes").inner_text()
    assert eng.tasks.get(task.id).assignee == "anna"
    assert page.get_by_role("button", name="Frigiv opgaven").is_visible()
    wait_for_diagrams(page)
    shot(page, "04-claimed")

    # Submit with the required Temagruppe cleared and a note typed: refused, field by field, in Danish.
    note = "Sagen haster: lokaludvalget har bedt om svar før sommerferien."
    page.select_option("#field-temagruppe", "")
    page.fill("#field-visitering_note", note)
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Afslut opgaven").click()
    assert nav.value.status == 422
    wait_for_diagrams(page)
    error = page.locator("#field-temagruppe-error")
    assert error.is_visible()
    assert error.inner_text().strip() == "Feltet skal udfyldes."
    field = page.locator(".field", has=page.locator("#field-temagruppe"))
    assert field.locator(".field-error").inner_text().strip() == "Feltet skal udfyldes."
    assert page.locator("#field-temagruppe").get_attribute("aria-invalid") == "true"
    assert "field-temagruppe-error" in (page.locator("#field-temagruppe").get_attribute("aria-describedby") or "")
    summary = page.locator(".error-summary")
    assert summary.is_visible()
    assert "Temagruppe: Feltet skal udfyldes." in summary.inner_text()
    assert page.locator("#field-visitering_note").input_value() == note  # what the user typed is kept
    assert eng.tasks.get(task.id).status == "open"
    shot(page, "05-validation-error")
    assert_accessible(page, "the task page after a failed submit")

    # Fix it and submit: the task is completed.
    page.select_option("#field-temagruppe", "Temagruppe Tryghed")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Afslut opgaven").click()
    assert nav.value.status == 200
    wait_for_diagrams(page)
    shot(page, "06-after-submit")

    done = eng.tasks.get(task.id)
    assert done.status == "completed"
    assert done.completed_by == "anna"
    inst = eng.runtime.get(instance_id)
    assert inst.data["temagruppe"] == "Temagruppe Tryghed"
    assert inst.data["visitering_note"] == note
    completed = [e for e in inst.history if e.type == "task_completed" and e.task_id == task.id]
    assert len(completed) == 1 and completed[0].user == "anna"
    assert any(e.type == "claimed" and e.task_id == task.id and e.user == "anna" for e in inst.history)

    # The next step belongs to Temagruppe Tryghed, which anna is not in: she is back in the inbox,
    # told that the task is done, and the task is no longer listed.
    following = [t for t in inst.tasks if t.status == "open"]
    assert [t.element_id for t in following] == ["forbered_sag"]
    assert following[0].forum == "Temagruppe Tryghed"
    assert re.search(r"/tasks(\?.*)?$", page.url), page.url
    assert 'Opgaven "Visitér henvendelsen" er udført.' in page.locator(".flashes").inner_text()
    assert page.locator(f'a[href="/tasks/{task.id}"]').count() == 0

    # The forum's page lists the decision with what anna submitted; it links to the completed task.
    page.get_by_role("navigation", name="Hovedmenu").get_by_role("link", name="Fora").click()
    page.wait_for_url("**/forums")
    with page.expect_navigation():
        page.get_by_role("link", name="TMF sekretariat", exact=True).first.click()
    decision = page.locator(".decision", has=page.locator(f'a[href="/tasks/{task.id}"]'))
    assert decision.count() == 1, page.locator("main").inner_text()
    text = decision.inner_text()
    assert "H-2027-001" in text and "Temagruppe Tryghed" in text and note in text, text
    shot(page, "07-forum-decision")
    assert_accessible(page, "the forum page with a decision")
    with page.expect_navigation():
        decision.get_by_role("link", name="Visitér henvendelsen").click()
    wait_for_diagrams(page)
    assert page.locator("dl.meta .status").first.inner_text() == "Udført"
    assert page.locator("form.task-form").count() == 0
    shot(page, "08-completed-task")
    assert_accessible(page, "a completed task's page")
    assert not page.js_errors, page.js_errors


def test_administrator_suspends_and_resumes_a_case(page, live, shot) -> None:
    """admin finds the styringsdialog case by its business key, suspends it and resumes it."""
    eng = live.engine
    rows, _total = eng.runtime.list(business_key="SD-2027")
    instance_id = rows[0]["id"]
    assert rows[0]["status"] == "active"

    login(page, *ADMIN)
    page.get_by_role("navigation", name="Hovedmenu").get_by_role("link", name="Sager").click()
    page.wait_for_url("**/instances")
    shot(page, "01-instances")

    page.fill("#f-bk", "SD-*")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    table = page.locator("table.table")
    assert table.locator("caption").inner_text().strip() == "1 sag"
    assert "SD-2027" in table.locator("tbody").inner_text()
    shot(page, "02-filtered")

    with page.expect_navigation():
        table.get_by_role("link", name=str(instance_id), exact=True).click()
    assert page.url.endswith(f"/instances/{instance_id}")
    wait_for_diagrams(page)
    status = page.locator("dl.meta .status")
    assert status.inner_text() == "Aktiv"
    shot(page, "03-instance")

    with page.expect_navigation():
        page.get_by_role("button", name="Sæt på pause").click()
    wait_for_diagrams(page)
    assert "Sagen er sat på pause." in page.locator(".flashes").inner_text()
    assert status.inner_text() == "Sat på pause"
    assert page.get_by_role("button", name="Genoptag").is_visible()
    assert page.get_by_role("button", name="Sæt på pause").count() == 0
    assert eng.runtime.get(instance_id, history=False).status == "suspended"
    shot(page, "04-suspended")
    assert_accessible(page, "a suspended case's page")

    with page.expect_navigation():
        page.get_by_role("button", name="Genoptag").click()
    wait_for_diagrams(page)
    assert "Sagen er genoptaget." in page.locator(".flashes").inner_text()
    assert status.inner_text() == "Aktiv"
    shot(page, "05-resumed")

    # The audit trail on the page: both actions, by the administrator.
    history = page.locator("section", has=page.locator("#history-heading")).locator("tbody tr")
    rows_text = [r.inner_text() for r in history.all()]
    suspended = [r for r in rows_text if "Sat på pause" in r]
    resumed = [r for r in rows_text if "Genoptaget" in r]
    assert len(suspended) == 1 and len(resumed) == 1, rows_text
    assert "admin" in suspended[0] and "admin" in resumed[0], rows_text

    inst = eng.runtime.get(instance_id)
    assert inst.status == "active"
    events = [(e.type, e.user) for e in inst.history if e.type in ("suspended", "resumed")]
    assert events == [("suspended", "admin"), ("resumed", "admin")]
    assert not page.js_errors, page.js_errors


def test_process_owner_changes_a_label_and_deploys_a_new_version(page, live, shot) -> None:
    """owner opens henvendelse in the bpmn-js modeler, renames a task on the canvas and deploys."""
    eng = live.engine
    before = max(d.version for d in eng.definitions.list() if d.key == "henvendelse")
    new_label = "Visitér og prioritér henvendelsen"

    login(page, *OWNER)
    page.get_by_role("navigation", name="Hovedmenu").get_by_role("link", name="Processer").click()
    page.wait_for_url("**/processes")
    shot(page, "01-processes")

    with page.expect_navigation():
        page.locator('main a[href="/processes/henvendelse"]').first.click()
    wait_for_diagrams(page)
    shot(page, "02-process")
    with page.expect_navigation():
        page.click("#edit-link")
    assert page.url.endswith("/processes/henvendelse/edit")
    page.wait_for_selector("[data-bpmn-modeler].modeler--ready")
    shot(page, "03-modeler")

    # Rename "Visitér henvendelsen" on the canvas: double-click opens bpmn-js's label editor.
    shape = page.locator('#modeler [data-element-id="visiter"]').first
    shape.scroll_into_view_if_needed()
    shape.dblclick()
    editor = page.locator(".djs-direct-editing-parent")
    editor.wait_for(state="visible")
    page.keyboard.press("Control+A")
    page.keyboard.type(new_label)
    page.keyboard.press("Enter")
    editor.wait_for(state="hidden")
    label = page.evaluate("""() => document.querySelector('[data-bpmn-modeler]').modeler
                                     .get('elementRegistry').get('visiter').businessObject.name""")
    assert label == new_label
    shot(page, "04-renamed")

    # Validate, then deploy.
    status = page.locator("#modeler-status")
    page.click("#validate-button")  # marks the modeler aria-busy until the server has answered
    page.wait_for_selector("[data-bpmn-modeler][aria-busy=false]")
    assert "Diagrammet er gyldigt" in status.inner_text(), status.inner_text()
    assert page.locator("#problems").is_hidden()
    page.click("#deploy-button")
    page.wait_for_selector("[data-bpmn-modeler][aria-busy=false]")
    shot(page, "05-deployed")
    assert f"version {before + 1}" in status.inner_text(), status.inner_text()
    assert "Udrullet" in status.inner_text()
    assert_accessible(page, "the modeler after a deployment")

    # The engine has the new version, deployed by the owner, with the new label in its XML.
    latest = eng.definitions.get("henvendelse")
    assert latest.version == before + 1
    _name, content = eng.definitions.source("henvendelse", latest.version)
    task = etree.fromstring(content).find(f".//{BPMN}userTask[@id='visiter']")
    assert task is not None and task.get("name") == new_label
    _name, old = eng.definitions.source("henvendelse", before)
    assert etree.fromstring(old).find(f".//{BPMN}userTask[@id='visiter']").get("name") == "Visitér henvendelsen"
    assert latest.deployed_by == "owner"

    # The link in the status message leads to the process page, which lists the new version.
    with page.expect_navigation():
        status.get_by_role("link").click()
    wait_for_diagrams(page)
    assert "/processes/henvendelse" in page.url
    assert new_label in page.locator("main").inner_text()
    shot(page, "06-process-after-deploy")
    assert_accessible(page, "the process page with two versions (heatmap and diff)")
    assert not page.js_errors, page.js_errors
