"""The inbox and the task page: filters, paging, the generated form, validation, claim, comments."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from .conftest import text

VALID = {"titel": "Ny venteliste", "beskrivelse": "Linje et\nLinje to", "antal": "120", "prioritet": "hoej",
         "moededato": "2027-02-01", "haster": "true", "deltagere": "Anna\n\nBo \n"}


def first_task(case):
    return case.tasks[0]


# -- inbox ----------------------------------------------------------------------------------------
def test_inbox_lists_the_tasks_of_my_forums_with_relative_due_dates(as_user, case):
    response = as_user("anna").get("/tasks")
    assert response.status_code == 200
    html = text(response)
    assert "Registrer sagen" in html and "K-2027-1" in html
    assert "om 3 dage" in html


def test_inbox_does_not_show_other_forums_tasks(as_user, case):
    html = text(as_user("bo").get("/tasks"))
    assert "Registrer sagen" not in html
    assert "Ingen opgaver matcher." in html


def test_overdue_tasks_show_how_late_they_are(as_user, case, web_clock):
    web_clock.advance(timedelta(days=5))
    html = text(as_user("anna").get("/tasks"))
    assert "2 dage over frist" in html
    assert 'class="overdue"' in html


def test_inbox_filters(as_user, web_engine, case, web_clock):
    other = web_engine.runtime.start("henvendelse", business_key="H-1", user="anna")
    anna = as_user("anna")
    assert "Beskriv henvendelsen" in text(anna.get("/tasks?process=henvendelse"))
    assert "Registrer sagen" not in text(anna.get("/tasks?process=henvendelse"))
    assert "Registrer sagen" in text(anna.get("/tasks?process=testsag"))
    assert "Registrer sagen" in text(anna.get("/tasks?forum=Sekretariat"))
    assert "Ingen opgaver matcher." in text(anna.get("/tasks?forum=Styregruppe"))
    # due: only the testsag task has a due date; nothing is overdue yet
    assert "Beskriv henvendelsen" not in text(anna.get("/tasks?due=dated"))
    assert "Ingen opgaver matcher." in text(anna.get("/tasks?due=overdue"))
    web_clock.advance(timedelta(days=4))
    overdue = text(anna.get("/tasks?due=overdue"))
    assert "Registrer sagen" in overdue and "Beskriv henvendelsen" not in overdue
    # assignment
    web_engine.tasks.claim(other.tasks[0].id, "anna")
    mine = text(anna.get("/tasks?assigned=me"))
    assert "Beskriv henvendelsen" in mine and "Registrer sagen" not in mine
    unassigned = text(anna.get("/tasks?assigned=unassigned"))
    assert "Registrer sagen" in unassigned and "Beskriv henvendelsen" not in unassigned


def test_inbox_sorting(as_user, web_engine, case):
    web_engine.runtime.start("henvendelse", business_key="H-1", user="anna")
    anna = as_user("anna")
    by_name = text(anna.get("/tasks?sort=name"))
    assert by_name.index("Beskriv henvendelsen") < by_name.index("Registrer sagen")
    by_due = text(anna.get("/tasks?sort=due"))
    assert by_due.index("Registrer sagen") < by_due.index("Beskriv henvendelsen")  # undated last
    assert anna.get("/tasks?sort=bogus").status_code == 200


def test_inbox_pages(app, as_user, web_engine):
    app.config["ALMENFLOW_PAGE_SIZE"] = 2
    for n in range(5):
        web_engine.runtime.start("testsag", business_key=f"P-{n}", user="anna")
    anna = as_user("anna")
    first = text(anna.get("/tasks"))
    assert "Side 1 af 3" in first and "5 opgaver" in first
    assert first.count('href="/tasks/') == 2
    last = text(anna.get("/tasks?page=3"))
    assert "Side 3 af 3" in last and last.count('href="/tasks/') == 1
    assert "Næste side" not in last and "Forrige side" in last
    assert anna.get("/tasks?page=x").status_code == 200


# -- task page ------------------------------------------------------------------------------------
def test_task_page_shows_case_context_and_the_generated_form(as_user, case):
    task = first_task(case)
    response = as_user("anna").get(f"/tasks/{task.id}")
    assert response.status_code == 200
    html = text(response)
    assert "Testsag" in html and "K-2027-1" in html and "Sekretariat" in html
    assert 'id="diagram"' in html and 'data-xml-url="/processes/testsag/versions/1/xml"' in html
    assert "Sagen er startet" in html  # history
    # controls by type
    assert re.search(r'<input id="field-titel" name="titel" required aria-required="true"'
                     r' aria-describedby="field-titel-help"[^>]*type="text"', html)
    assert 'minlength="3"' in html and 'maxlength="80"' in html
    assert '<p class="help" id="field-titel-help">En kort titel på sagen.</p>' in html
    assert re.search(r'<textarea id="field-beskrivelse" name="beskrivelse"', html)
    assert re.search(r'<input id="field-antal" name="antal"[^>]*min="1" max="5000"[^>]*type="number"', html)
    assert re.search(r'<select id="field-prioritet" name="prioritet" required', html)
    assert '<option value="hoej" >Høj</option>' in html
    assert re.search(r'<input id="field-moededato" name="moededato"[^>]*type="date"', html)
    assert re.search(r'<input id="field-haster" name="haster" type="checkbox" value="true"', html)
    assert re.search(r'<textarea id="field-deltagere" name="deltagere" aria-describedby="field-deltagere-help"', html)
    assert html.count('<span class="required" aria-hidden="true">*</span>') == 2
    assert "novalidate" in html


def test_a_valid_submit_completes_the_task_and_goes_to_the_inbox(as_user, web_engine, case):
    task = first_task(case)
    anna = as_user("anna")
    response = anna.post(f"/tasks/{task.id}", VALID)
    assert response.status_code == 302 and response.location == "/tasks"
    assert web_engine.tasks.get(task.id).status == "completed"
    data = web_engine.runtime.get(case.id).data
    assert data["titel"] == "Ny venteliste" and data["antal"] == 120 and data["haster"] is True
    assert data["deltagere"] == ["Anna", "Bo"] and data["moededato"] == "2027-02-01"
    assert "Opgaven &#34;Registrer sagen&#34; er udført." in text(anna.get("/tasks"))


def test_a_valid_submit_continues_with_my_next_task_in_the_case(as_user, web_engine, case):
    task = first_task(case)
    response = as_user("carl").post(f"/tasks/{task.id}", {**VALID, "haster": ""})
    nxt = web_engine.runtime.get(case.id).tasks[0]
    assert nxt.name == "Godkend sagen"
    assert response.status_code == 302 and response.location == f"/tasks/{nxt.id}"
    assert web_engine.runtime.get(case.id).data["haster"] is False


def test_an_unchecked_checkbox_is_false(as_user, web_engine, case):
    data = {k: v for k, v in VALID.items() if k != "haster"}
    as_user("anna").post(f"/tasks/{first_task(case).id}", data)
    assert web_engine.runtime.get(case.id).data["haster"] is False


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"titel": "", "prioritet": "lav"}, "titel", "Feltet skal udfyldes."),
    ({"titel": "ab", "prioritet": "lav"}, "titel", "Skal være mindst 3 tegn."),
    ({"titel": "Godt", "prioritet": ""}, "prioritet", "Feltet skal udfyldes."),
    ({"titel": "Godt", "prioritet": "kritisk"}, "prioritet", "Vælg en af mulighederne"),
    ({"titel": "Godt", "prioritet": "lav", "antal": "0"}, "antal", "Skal være mindst 1."),
    ({"titel": "Godt", "prioritet": "lav", "antal": "mange"}, "antal", "Skal være et helt tal."),
    ({"titel": "Godt", "prioritet": "lav", "moededato": "1/2/2027"}, "moededato", "Skal være en dato"),
])
def test_bad_input_shows_field_messages_and_completes_nothing(as_user, web_engine, case, data, field, message):
    task = first_task(case)
    before = web_engine.runtime.get(case.id)
    response = as_user("anna").post(f"/tasks/{task.id}", data)
    assert response.status_code == 422
    html = text(response)
    assert f'<p class="field-error" id="field-{field}-error">' in html
    error_line = html.split(f'id="field-{field}-error">', 1)[1].split("</p>", 1)[0]
    assert message in error_line
    control = re.search(rf'<(input|select|textarea) id="field-{field}"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in control or "aria-invalid=true" in control
    assert f"field-{field}-error" in control  # aria-describedby points at the message
    assert 'role="alert"' in html and f'href="#field-{field}"' in html  # error summary links to the field
    after = web_engine.runtime.get(case.id)
    assert web_engine.tasks.get(task.id).status == "open"
    assert after.data == before.data and len(after.history) == len(before.history)


def test_a_failed_submit_keeps_what_the_user_typed(as_user, case):
    data = {**VALID, "titel": "ab", "antal": "77", "beskrivelse": "Min <b>tekst</b>", "prioritet": "mellem"}
    html = text(as_user("anna").post(f"/tasks/{first_task(case).id}", data))
    assert 'value="ab"' in html and 'value="77"' in html and 'value="2027-02-01"' in html
    assert "Min &lt;b&gt;tekst&lt;/b&gt;</textarea>" in html
    assert '<option value="mellem" selected>' in html
    assert re.search(r'name="haster" type="checkbox" value="true" checked', html)
    assert "Anna\n\nBo \n</textarea>" in html or "Anna\r\n\r\nBo \r\n</textarea>" in html


def test_english_validation_messages_when_english_is_chosen(as_user, case):
    anna = as_user("anna")
    anna.get("/?lang=en")
    html = text(anna.post(f"/tasks/{first_task(case).id}", {"titel": "", "prioritet": "lav"}))
    assert "This field is required." in html
    assert "Complete the task" in html


def test_submit_without_csrf_token_is_refused_and_completes_nothing(as_user, web_engine, case):
    task = first_task(case)
    response = as_user("anna").post(f"/tasks/{task.id}", VALID, csrf=False)
    assert response.status_code == 400
    assert web_engine.tasks.get(task.id).status == "open"


def test_members_of_other_forums_are_refused(as_user, web_engine, case):
    task = first_task(case)
    bo = as_user("bo")
    assert bo.get(f"/tasks/{task.id}").status_code == 403
    assert bo.post(f"/tasks/{task.id}", VALID).status_code == 403
    assert bo.post(f"/tasks/{task.id}/claim").status_code == 403
    assert bo.post(f"/tasks/{task.id}/comments", {"text": "Hej"}).status_code == 403
    assert web_engine.tasks.get(task.id).status == "open"
    assert "Adgang nægtet" in text(bo.get(f"/tasks/{task.id}"))


def test_unknown_task_is_404(as_user):
    response = as_user("anna").get("/tasks/999")
    assert response.status_code == 404
    assert "Siden findes ikke" in text(response)


def test_completed_task_page_has_no_form_and_a_second_submit_is_a_conflict(as_user, case):
    task = first_task(case)
    anna = as_user("anna")
    anna.post(f"/tasks/{task.id}", VALID)
    html = text(anna.get(f"/tasks/{task.id}"))
    assert "Udført" in html and "Afslut opgaven" not in html
    response = anna.post(f"/tasks/{task.id}", VALID)
    assert response.status_code == 409
    assert "Konflikt" in text(response)


def test_claim_and_unclaim(as_user, web_engine, case):
    task = first_task(case)
    anna = as_user("anna")
    assert "Tag opgaven" in text(anna.get(f"/tasks/{task.id}"))
    response = anna.post(f"/tasks/{task.id}/claim")
    assert response.status_code == 302
    assert web_engine.tasks.get(task.id).assignee == "anna"
    html = text(anna.get(f"/tasks/{task.id}"))
    assert "Du har taget opgaven." in html and "Frigiv opgaven" in html
    # a colleague sees it is taken and cannot claim or complete it
    carl = as_user("carl")
    carl_html = text(carl.get(f"/tasks/{task.id}"))
    assert "Opgaven er taget af anna." in carl_html and "Afslut opgaven" not in carl_html
    assert carl.post(f"/tasks/{task.id}/claim").status_code == 409
    assert carl.post(f"/tasks/{task.id}", VALID).status_code == 403
    assert carl.post(f"/tasks/{task.id}/unclaim").status_code == 403
    anna.post(f"/tasks/{task.id}/unclaim")
    assert web_engine.tasks.get(task.id).assignee is None


def test_claim_without_csrf_is_refused(as_user, web_engine, case):
    task = first_task(case)
    assert as_user("anna").post(f"/tasks/{task.id}/claim", csrf=False).status_code == 400
    assert web_engine.tasks.get(task.id).assignee is None


def test_admin_reassigns_and_members_may_not(as_user, web_engine, case):
    task = first_task(case)
    assert as_user("anna").post(f"/tasks/{task.id}/assign", {"assignee": "anna"}).status_code == 403
    admin = as_user("admin")
    assert admin.get(f"/tasks/{task.id}").status_code == 200
    assert admin.post(f"/tasks/{task.id}/assign", {"assignee": "carl"}).status_code == 302
    assert web_engine.tasks.get(task.id).assignee == "carl"
    admin.post(f"/tasks/{task.id}/assign", {"assignee": ""})
    assert web_engine.tasks.get(task.id).assignee is None
    assert admin.post(f"/tasks/{task.id}/assign", {"assignee": "ghost"}).status_code == 400


def test_comments(as_user, web_engine, case):
    task = first_task(case)
    anna = as_user("anna")
    response = anna.post(f"/tasks/{task.id}/comments", {"text": "  Husk <bilag>  "})
    assert response.status_code == 302
    html = text(anna.get(f"/tasks/{task.id}"))
    assert "Husk &lt;bilag&gt;" in html and "Kommentaren er gemt." in html
    assert web_engine.history.comments(case.id)[0]["text"] == "Husk <bilag>"
    anna.post(f"/tasks/{task.id}/comments", {"text": "   "})
    assert "Skriv en kommentar, før du gemmer." in text(anna.get(f"/tasks/{task.id}"))
    anna.post(f"/tasks/{task.id}/comments", {"text": "x" * 5001})
    assert len(web_engine.history.comments(case.id)) == 1


def test_a_suspended_case_shows_no_form(as_user, web_engine, case):
    web_engine.runtime.suspend(case.id, "admin")
    html = text(as_user("anna").get(f"/tasks/{first_task(case).id}"))
    assert "Afslut opgaven" not in html and "sat på pause" in html
    assert as_user("anna").post(f"/tasks/{first_task(case).id}", VALID).status_code == 409
