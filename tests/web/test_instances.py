"""Cases: the administrators' list with filters and paging, the case page, and case operations."""

from __future__ import annotations

import pytest

from engine.parsing import Resource

from .conftest import text

BROKEN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="x">
  <bpmn:process id="fejlsag" name="Fejlsag" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="regn"/>
    <bpmn:scriptTask id="regn" name="Regn" scriptFormat="python"><bpmn:script>y = 10 / nul</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="regn" targetRef="slut"/>
    <bpmn:endEvent id="slut"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_admin_lists_cases(as_user, web_engine, case):
    web_engine.runtime.start("henvendelse", business_key="H-7", user="bo")
    response = as_user("admin").get("/instances")
    assert response.status_code == 200
    html = text(response)
    assert "K-2027-1" in html and "H-7" in html and "2 sager" in html
    assert "Testsag" in html and "Henvendelse" in html


@pytest.mark.parametrize("user", ["anna", "olga", "outsider"])
def test_only_administrators_see_the_case_list(as_user, user):
    response = as_user(user).get("/instances")
    assert response.status_code == 403
    assert "Adgang nægtet" in text(response)


def test_case_list_filters(as_user, web_engine, case):
    other = web_engine.runtime.start("henvendelse", business_key="H-7", user="bo")
    web_engine.runtime.suspend(other.id, "admin")
    admin = as_user("admin")
    assert "H-7" not in text(admin.get("/instances?process=testsag"))
    assert "K-2027-1" in text(admin.get("/instances?process=testsag&version=1"))
    assert "Ingen sager matcher." in text(admin.get("/instances?process=testsag&version=2"))
    suspended = text(admin.get("/instances?status=suspended"))
    assert "H-7" in suspended and "K-2027-1" not in suspended
    assert "K-2027-1" in text(admin.get("/instances?business_key=K-2027*"))
    assert "Ingen sager matcher." in text(admin.get("/instances?business_key=K-2028*"))
    assert admin.get("/instances?status=bogus&version=x").status_code == 200


def test_case_list_pages(app, as_user, web_engine):
    app.config["ALMENFLOW_PAGE_SIZE"] = 3
    for n in range(7):
        web_engine.runtime.start("henvendelse", business_key=f"H-{n}", user="anna")
    admin = as_user("admin")
    first = text(admin.get("/instances"))
    assert "Side 1 af 3" in first and "H-6" in first and "H-3" not in first
    third = text(admin.get("/instances?page=3"))
    assert "H-0" in third and "H-1" not in third


def test_case_page_for_an_administrator(as_user, case):
    response = as_user("admin").get(f"/instances/{case.id}")
    assert response.status_code == 200
    html = text(response)
    assert "K-2027-1" in html and "Aktiv" in html and "Registrer sagen" in html
    assert "Sæt på pause" in html and "Afbryd sagen" in html
    assert 'id="diagram"' in html and "Sagens forløb" in html


def test_case_page_shows_timers_the_case_waits_for(as_user, web_engine):
    inst = web_engine.runtime.start("henvendelse", business_key="H-1", user="anna")
    html = text(as_user("admin").get(f"/instances/{inst.id}"))
    assert "Tidsfrist: Påmindelse" in html


def test_members_with_a_task_and_the_starter_see_the_case_without_actions(as_user, web_engine, case):
    for user in ("anna", "carl"):  # anna started it; carl is in the forum of its open task
        response = as_user(user).get(f"/instances/{case.id}")
        assert response.status_code == 200
        assert "Sæt på pause" not in text(response)
    started_by_bo = web_engine.runtime.start("testsag", business_key="B-1", user="bo")
    assert as_user("bo").get(f"/instances/{started_by_bo.id}").status_code == 200
    # a member who had a task in the case still sees it after completing it
    web_engine.tasks.complete(case.tasks[0].id, "carl", {"titel": "Sagen", "prioritet": "lav"})
    assert as_user("bo").get(f"/instances/{case.id}").status_code == 200  # now bo's forum has the task


@pytest.mark.parametrize("user", ["outsider", "olga", "bo"])
def test_others_may_not_see_the_case(as_user, case, user):
    assert as_user(user).get(f"/instances/{case.id}").status_code == 403


def test_unknown_case_is_404(as_user):
    assert as_user("admin").get("/instances/999").status_code == 404


def test_suspend_and_resume(as_user, web_engine, case):
    admin = as_user("admin")
    response = admin.post(f"/instances/{case.id}/suspend")
    assert response.status_code == 302
    assert web_engine.runtime.get(case.id).status == "suspended"
    html = text(admin.get(f"/instances/{case.id}"))
    assert "Sagen er sat på pause." in html and "Genoptag" in html
    assert admin.post(f"/instances/{case.id}/suspend").status_code == 409
    admin.post(f"/instances/{case.id}/resume")
    assert web_engine.runtime.get(case.id).status == "active"
    events = [e.type for e in web_engine.history.events(case.id)]
    assert "suspended" in events and "resumed" in events


def test_terminate_needs_a_reason(as_user, web_engine, case):
    admin = as_user("admin")
    admin.post(f"/instances/{case.id}/terminate", {"reason": "  "})
    assert web_engine.runtime.get(case.id).status == "active"
    assert "Skriv en begrundelse" in text(admin.get(f"/instances/{case.id}"))
    admin.post(f"/instances/{case.id}/terminate", {"reason": "Oprettet ved en fejl"})
    inst = web_engine.runtime.get(case.id)
    assert inst.status == "terminated" and not inst.tasks
    html = text(admin.get(f"/instances/{case.id}"))
    assert "Oprettet ved en fejl" in html and "Afbrudt" in html


def test_retry_an_incident(as_user, web_engine):
    web_engine.definitions.deploy([Resource("fejlsag.bpmn", BROKEN)], user="olga")
    inst = web_engine.runtime.start("fejlsag", business_key="F-1", user="admin", data={"nul": 0})
    assert web_engine.runtime.get(inst.id).status == "incident"
    admin = as_user("admin")
    html = text(admin.get(f"/instances/{inst.id}"))
    assert "Fejl i sagen" in html and "Prøv igen" in html
    assert admin.post(f"/instances/{inst.id}/retry").status_code == 302
    assert "retried" in [e.type for e in web_engine.history.events(inst.id)]


def test_retry_without_an_incident_is_a_conflict(as_user, case):
    response = as_user("admin").post(f"/instances/{case.id}/retry")
    assert response.status_code == 409


@pytest.mark.parametrize("action", ["suspend", "resume", "terminate", "retry"])
@pytest.mark.parametrize("user", ["anna", "olga"])
def test_members_and_owners_may_not_operate_on_cases(as_user, web_engine, case, action, user):
    response = as_user(user).post(f"/instances/{case.id}/{action}", {"reason": "nej"})
    assert response.status_code == 403
    assert web_engine.runtime.get(case.id).status == "active"


def test_operations_need_the_csrf_token(as_user, web_engine, case):
    assert as_user("admin").post(f"/instances/{case.id}/suspend", csrf=False).status_code == 400
    assert web_engine.runtime.get(case.id).status == "active"


def test_case_list_filters_by_start_date_and_forum_with_an_open_task(as_user, web_engine, web_clock, case):
    from datetime import timedelta

    web_clock.advance(timedelta(days=10))  # 2027-01-14
    later = web_engine.runtime.start("testsag", business_key="K-later", user="anna")
    web_engine.tasks.complete(later.tasks[0].id, "anna", {"titel": "Senere", "prioritet": "lav"})
    admin = as_user("admin")
    html = text(admin.get("/instances?started_from=2027-01-10"))
    assert "K-later" in html and "K-2027-1" not in html
    html = text(admin.get("/instances?started_to=2027-01-04"))
    assert "K-2027-1" in html and "K-later" not in html
    html = text(admin.get("/instances?forum=Styregruppe"))
    assert "K-later" in html and "K-2027-1" not in html
    assert admin.get("/instances?started_from=igår").status_code == 200
