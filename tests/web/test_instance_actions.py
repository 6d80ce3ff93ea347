"""The case page's administrator actions beyond suspend/resume/terminate: send a message the case
waits for, and retry an incident with corrected variables. Bad JSON is a field error and changes
nothing; every action lands in the audit trail."""

from __future__ import annotations

import re

import pytest

from .conftest import resource, text


@pytest.fixture
def waiting(web_engine):
    """A 'beskedsag' case waiting for message svar_modtaget; its next script divides by `deler`."""
    web_engine.definitions.deploy([resource("beskedsag.bpmn")], user="olga")
    return web_engine.runtime.start("beskedsag", business_key="B-1", user="anna", data={"deler": 0})


def audit(web_engine, instance_id, type_):
    return [e for e in web_engine.history.events(instance_id) if e.type == type_]


def test_case_page_suggests_the_messages_the_case_waits_for(as_user, waiting):
    html = text(as_user("admin").get(f"/instances/{waiting.id}"))
    assert "Send en besked til sagen" in html
    assert "<code>svar_modtaget</code>" in html
    assert '<datalist id="waiting-messages"><option value="svar_modtaget"></datalist>' in html
    assert re.search(r'<input id="field-message_name" name="message_name" required aria-required="true"'
                     r'[^>]*value="svar_modtaget" list="waiting-messages"', html)


def test_send_a_message_with_variables(as_user, web_engine, waiting):
    admin = as_user("admin")
    response = admin.post(f"/instances/{waiting.id}/message",
                          {"message_name": "svar_modtaget", "message_variables": '{"svar": "ja", "deler": 5}'})
    assert response.status_code == 302 and response.location == f"/instances/{waiting.id}"
    inst = web_engine.runtime.get(waiting.id)
    assert inst.data["svar"] == "ja" and inst.data["andel"] == 20
    assert [t.name for t in inst.tasks] == ["Behandl svaret"]
    (event,) = audit(web_engine, waiting.id, "message_received")
    assert event.user == "admin" and event.details["message"] == "svar_modtaget"
    assert event.details["data"] == {"svar": "ja", "deler": 5}
    assert 'Beskeden "svar_modtaget" er sendt til sagen.' in text(admin.get(f"/instances/{waiting.id}")).replace(
        "&#34;", '"')


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"message_name": "svar_modtaget", "message_variables": "{svar: ja}"}, "message_variables", "Ugyldig JSON"),
    ({"message_name": "svar_modtaget", "message_variables": "[1, 2]"}, "message_variables",
     "Skal være et JSON-objekt"),
    ({"message_name": "svar_modtaget", "message_variables": '{"2x": 1}'}, "message_variables",
     "ikke et gyldigt variabelnavn"),
    ({"message_name": "", "message_variables": ""}, "message_name", "Skriv navnet på beskeden."),
    ({"message_name": "andet_svar"}, "message_name", "Sagen venter ikke på beskeden"),
])
def test_bad_message_input_is_a_field_error_and_changes_nothing(as_user, web_engine, waiting, form, field,
                                                                message):
    response = as_user("admin").post(f"/instances/{waiting.id}/message", form)
    assert response.status_code == 422
    html = text(response)
    error = re.search(rf'<p class="field-error" id="field-{field}-error">([^<]*)</p>', html)
    assert error and message in error.group(1).replace("&#34;", '"')
    assert re.search(rf'id="field-{field}"[^>]*aria-invalid="true"', html)
    if form.get("message_variables"):
        assert form["message_variables"].replace('"', "&#34;") in html  # what was typed is kept
    inst = web_engine.runtime.get(waiting.id)
    assert inst.status == "active" and inst.waits and not audit(web_engine, waiting.id, "message_received")


def test_a_message_for_two_cases_with_the_same_business_key_is_refused(as_user, web_engine, waiting):
    twin = web_engine.runtime.start("beskedsag", business_key="B-1", user="anna", data={"deler": 1})
    response = as_user("admin").post(f"/instances/{waiting.id}/message", {"message_name": "svar_modtaget"})
    assert response.status_code == 422
    assert "andre sager med samme sagsnummer" in text(response)
    assert web_engine.runtime.get(twin.id).waits and web_engine.runtime.get(waiting.id).waits


def test_a_suspended_case_cannot_receive_messages(as_user, web_engine, waiting):
    web_engine.runtime.suspend(waiting.id, "admin")
    admin = as_user("admin")
    assert "Send en besked til sagen" not in text(admin.get(f"/instances/{waiting.id}"))
    response = admin.post(f"/instances/{waiting.id}/message", {"message_name": "svar_modtaget"})
    assert response.status_code == 422 and "kan ikke modtage beskeder nu" in text(response)


def _incident(web_engine, waiting):
    web_engine.runtime.correlate("svar_modtaget", business_key="B-1", user="admin")
    inst = web_engine.runtime.get(waiting.id)
    assert inst.status == "incident"
    return inst


def test_retry_with_corrected_variables(as_user, web_engine, waiting):
    _incident(web_engine, waiting)
    admin = as_user("admin")
    html = text(admin.get(f"/instances/{waiting.id}"))
    assert "Prøv det fejlede trin igen" in html and 'name="variables"' in html
    response = admin.post(f"/instances/{waiting.id}/retry", {"variables": '{"deler": 4}'})
    assert response.status_code == 302
    inst = web_engine.runtime.get(waiting.id)
    assert inst.status == "active" and inst.data["andel"] == 25
    (event,) = audit(web_engine, waiting.id, "retried")
    assert event.user == "admin" and event.details["data"] == {"deler": 4}
    assert "ZeroDivisionError" in event.details["previous_incident"]
    assert "Det fejlede trin er kørt igen med de rettede data." in text(admin.get(f"/instances/{waiting.id}"))


@pytest.mark.parametrize(("raw", "message"), [
    ('{"deler": 4', "Ugyldig JSON (linje 1"),
    ('"deler"', "Skal være et JSON-objekt"),
    ('{"_intern": 1}', "ikke et gyldigt variabelnavn"),
])
def test_retry_with_bad_json_changes_nothing(as_user, web_engine, waiting, raw, message):
    _incident(web_engine, waiting)
    response = as_user("admin").post(f"/instances/{waiting.id}/retry", {"variables": raw})
    assert response.status_code == 422
    html = text(response)
    assert message in re.search(r'id="field-variables-error">([^<]*)<', html).group(1).replace("&#34;", '"')
    assert web_engine.runtime.get(waiting.id).status == "incident"
    assert not audit(web_engine, waiting.id, "retried")


@pytest.mark.parametrize("user", ["anna", "olga"])
@pytest.mark.parametrize("action", ["message", "retry"])
def test_only_administrators_may_send_messages_or_retry(as_user, web_engine, waiting, user, action):
    response = as_user(user).post(f"/instances/{waiting.id}/{action}", {"message_name": "svar_modtaget"})
    assert response.status_code == 403
    assert web_engine.runtime.get(waiting.id).waits


@pytest.mark.parametrize("action", ["message", "retry"])
def test_actions_need_the_csrf_token(as_user, web_engine, waiting, action):
    response = as_user("admin").post(f"/instances/{waiting.id}/{action}", {"message_name": "svar_modtaget"},
                                     csrf=False)
    assert response.status_code == 400
    assert not audit(web_engine, waiting.id, "message_received")


def test_every_case_action_is_in_the_audit_trail(as_user, web_engine, waiting):
    admin = as_user("admin")
    admin.post(f"/instances/{waiting.id}/message", {"message_name": "svar_modtaget"})
    admin.post(f"/instances/{waiting.id}/retry", {"variables": '{"deler": 2}'})
    admin.post(f"/instances/{waiting.id}/suspend")
    admin.post(f"/instances/{waiting.id}/resume")
    admin.post(f"/instances/{waiting.id}/terminate", {"reason": "Test afsluttet"})
    trail = [(e.type, e.user) for e in web_engine.history.events(waiting.id)
             if e.type in ("message_received", "retried", "suspended", "resumed", "terminated")]
    assert trail == [("message_received", "admin"), ("retried", "admin"), ("suspended", "admin"),
                     ("resumed", "admin"), ("terminated", "admin")]
    html = text(admin.get(f"/instances/{waiting.id}"))
    for label in ("Besked modtaget", "Forsøgt igen", "Sat på pause", "Genoptaget", "Afbrudt"):
        assert label in html
