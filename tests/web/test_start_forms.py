"""Starting a case from /start: the processes a user may start, the generated start form, field-level
errors that keep what was typed, and where the user lands afterwards."""

from __future__ import annotations

import re

import pytest

from .conftest import resource, text


@pytest.fixture
def startsag(web_engine):
    web_engine.definitions.deploy([resource("startsag.bpmn")], user="olga")


GOOD = {"titel": "Ny udlejningsaftale", "antal": "40", "kategori": "udlejning", "haster": "true"}


def test_start_page_lists_what_a_member_may_start(as_user, startsag):
    response = as_user("anna").get("/start")
    assert response.status_code == 200
    html = text(response)
    assert 'href="/start/henvendelse"' in html
    assert "/start/startsag" not in html and "/start/testsag" not in html


def test_owners_and_admins_may_start_every_process(as_user, startsag):
    for user in ("olga", "admin"):
        html = text(as_user(user).get("/start"))
        for key in ("henvendelse", "testsag", "startsag"):
            assert f'href="/start/{key}"' in html
    assert "4 felter at udfylde" in text(as_user("olga").get("/start"))


def test_nav_and_start_page_link_to_new_case(as_user):
    html = text(as_user("outsider").get("/"))
    assert '<a href="/start">Ny sag</a>' in html
    assert 'href="/start/henvendelse"' in html
    assert 'aria-current="page"' in text(as_user("outsider").get("/start"))


def test_start_form_is_generated_from_the_start_event(as_user, startsag):
    response = as_user("olga").get("/start/startsag")
    assert response.status_code == 200
    html = text(response)
    assert "Sag med startformular" in html
    assert re.search(r'<input id="field-business_key" name="business_key"[^>]*maxlength="255"[^>]*type="text"', html)
    assert re.search(r'<input id="field-titel" name="titel" required aria-required="true"'
                     r' aria-describedby="field-titel-help"[^>]*minlength="3"[^>]*type="text"', html)
    assert '<p class="help" id="field-titel-help">Hvad handler sagen om?</p>' in html
    assert re.search(r'<input id="field-antal" name="antal"[^>]*min="1"[^>]*type="number"', html)
    assert re.search(r'<select id="field-kategori" name="kategori" required', html)
    assert re.search(r'<input id="field-haster" name="haster" type="checkbox" value="true"', html)
    assert 'name="csrf_token"' in html and "novalidate" in html


def test_a_process_without_start_form_shows_only_the_business_key(as_user):
    html = text(as_user("anna").get("/start/henvendelse"))
    assert 'name="business_key"' in html and "Start sagen" in html
    assert 'name="titel"' not in html


def test_valid_start_lands_on_my_first_task(as_user, web_engine, startsag):
    response = as_user("olga").post("/start/startsag", {**GOOD, "business_key": "S-1"})
    rows, total = web_engine.runtime.list(key="startsag")
    assert total == 1
    inst = web_engine.runtime.get(rows[0]["id"])
    assert inst.business_key == "S-1" and inst.started_by == "olga"
    assert inst.data == {"titel": "Ny udlejningsaftale", "antal": 40, "kategori": "udlejning", "haster": True}
    # olga is in no forum: no task of hers, so she lands on the case she started
    assert response.status_code == 302 and response.location == f"/instances/{inst.id}"


def test_a_forum_member_lands_on_the_first_task(app, as_user, web_engine, startsag):
    app.config["ALMENFLOW_OPEN_PROCESSES"] = ["henvendelse", "startsag"]
    anna = as_user("anna")
    response = anna.post("/start/startsag", GOOD)
    task = web_engine.tasks.query(process_key="startsag")[0]
    assert response.status_code == 302 and response.location == f"/tasks/{task.id}"
    assert "Her er din første opgave." in text(anna.get(response.location))
    assert web_engine.runtime.get(task.instance_id).business_key is None


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"titel": "", "kategori": "udlejning"}, "titel", "Feltet skal udfyldes."),
    ({"titel": "ab", "kategori": "udlejning"}, "titel", "Skal være mindst 3 tegn."),
    ({"titel": "Godt", "kategori": "andet"}, "kategori", "Vælg en af mulighederne"),
    ({"titel": "Godt", "kategori": "udlejning", "antal": "0"}, "antal", "Skal være mindst 1."),
    ({"titel": "Godt", "kategori": "udlejning", "antal": "mange"}, "antal", "Skal være et helt tal."),
    ({"titel": "Godt", "kategori": "udlejning", "business_key": "x" * 256}, "business_key",
     "Må højst være 255 tegn."),
])
def test_bad_input_shows_field_errors_keeps_values_and_starts_nothing(as_user, web_engine, startsag, data, field,
                                                                     message):
    response = as_user("olga").post("/start/startsag", data)
    assert response.status_code == 422
    html = text(response)
    assert f'<p class="field-error" id="field-{field}-error">{message}' in html
    assert f'<a href="#field-{field}">' in html  # the error summary links to the field
    assert re.search(rf'id="field-{field}"[^>]*aria-invalid=(true|"true")', html)
    assert 'value="Godt"' in html or data["titel"] in ("", "ab")
    assert web_engine.runtime.list(key="startsag")[1] == 0


def test_typed_values_survive_a_failed_submit(as_user, startsag):
    html = text(as_user("olga").post("/start/startsag", {"titel": "Min titel", "antal": "0", "kategori": "tryghed",
                                                          "haster": "true", "business_key": "S-9"}))
    assert 'value="Min titel"' in html and 'value="S-9"' in html and 'value="0"' in html
    assert '<option value="tryghed" selected>' in html
    assert re.search(r'name="haster" type="checkbox" value="true" checked', html)


def test_english_messages_when_english_is_chosen(as_user, startsag):
    olga = as_user("olga")
    olga.get("/?lang=en")
    html = text(olga.post("/start/startsag", {"titel": "", "kategori": "udlejning"}))
    assert "This field is required." in html


def test_members_may_not_open_or_post_other_start_forms(as_user, web_engine, startsag):
    anna = as_user("anna")
    assert anna.get("/start/startsag").status_code == 403
    assert anna.post("/start/startsag", GOOD).status_code == 403
    assert web_engine.runtime.list(key="startsag")[1] == 0


def test_unknown_process_is_404_for_owners(as_user):
    assert as_user("olga").get("/start/nope").status_code == 404
    assert as_user("anna").get("/start/nope").status_code == 403  # members learn nothing about other keys


def test_start_form_needs_csrf_and_login(web, as_user, web_engine, startsag):
    assert as_user("olga").post("/start/startsag", GOOD, csrf=False).status_code == 400
    response = web.client.get("/start")
    assert response.status_code == 302 and response.location.startswith("/login")
    assert web_engine.runtime.list(key="startsag")[1] == 0
