"""The bpmn-js pages: the modeler and its JSON endpoints (validate, deploy), the case diagram, and the
heatmap and version diff on a process page."""

from __future__ import annotations

import html as html_lib
import json
import re

import pytest

from engine.parsing import Resource

from .conftest import FIXTURES, text

TESTSAG = (FIXTURES / "testsag.bpmn").read_text(encoding="utf-8")
RENAMED = TESTSAG.replace('name="Registrer sagen"', 'name="Registrer henvendelsen"')
BAD_SCRIPT = TESTSAG.replace(
    '<bpmn:endEvent id="slut" name="Sag afsluttet"/>',
    '<bpmn:scriptTask id="beregn" scriptFormat="python"><bpmn:script>import os</bpmn:script></bpmn:scriptTask>'
    '<bpmn:endEvent id="slut" name="Sag afsluttet"/>')


def token(client) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', text(client.get("/processes")))
    if match:
        return match.group(1)
    return client.token()


def post_json(client, url: str, payload, csrf: bool = True, **kwargs):
    headers = {"X-CSRFToken": token(client)} if csrf else {}
    return client.client.post(url, json=payload, headers=headers, **kwargs)


def versions(eng, key: str = "testsag") -> list[int]:
    return [d.version for d in eng.definitions.list() if d.key == key]


# -- pages -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("user", ["olga", "admin"])
def test_the_modeler_opens_the_latest_version(as_user, user):
    response = as_user(user).get("/processes/testsag/edit")
    assert response.status_code == 200
    html = text(response)
    for marker in ('id="modeler"', 'id="properties-panel"', 'id="validate-button"', 'id="deploy-button"',
                   'id="download-button"', 'id="problems"', 'id="modeler-status"', "vendor/modeler.js",
                   "vendor/modeler.css", 'data-xml-url="/processes/testsag/versions/1/xml"',
                   'data-validate-url="/processes/validate"', 'data-deploy-url="/processes/__KEY__/deploy"',
                   '<meta name="csrf-token"', ">Valider<", ">Udrul ny version<", ">Hent XML<"):
        assert marker in html, marker
    assert "<script>" not in html  # no inline scripts: the page works under the Content-Security-Policy
    texts = json.loads(html_lib.unescape(re.search(r"data-texts='([^']+)'", html).group(1)))
    assert texts["valid"].startswith("Diagrammet er gyldigt") and "{n}" in texts["invalid"]


def test_the_modeler_opens_an_older_version_and_unknown_ones_are_404(as_user, web_engine):
    web_engine.definitions.deploy([Resource("testsag.bpmn", RENAMED.encode())], user="olga")
    olga = as_user("olga")
    assert 'data-xml-url="/processes/testsag/versions/1/xml"' in text(olga.get("/processes/testsag/edit?version=1"))
    assert 'data-xml-url="/processes/testsag/versions/2/xml"' in text(olga.get("/processes/testsag/edit"))
    assert olga.get("/processes/nope/edit").status_code == 404
    assert olga.get("/processes/testsag/edit?version=9").status_code == 404


def new_diagram(client) -> tuple[str, str]:
    html = text(client.get("/processes/new"))
    xml = html_lib.unescape(re.search(r'data-xml="([^"]+)"', html).group(1))
    key = re.search(r'<bpmn:process id="([^"]+)"', xml).group(1)
    return key, xml


def test_a_new_diagram_starts_from_a_deployable_template(as_user, web_engine):
    olga = as_user("olga")
    response = olga.get("/processes/new")
    assert response.status_code == 200 and 'data-key=""' in text(response)
    key, xml = new_diagram(olga)
    assert key.startswith("proces_") and "camunda:formField" in xml and "<bpmn:lane" in xml
    result = post_json(olga, "/processes/validate", {"xml": xml, "key": key})
    assert result.status_code == 200 and result.get_json() == {"valid": True, "problems": []}
    deployed = post_json(olga, f"/processes/{key}/deploy", {"xml": xml})
    assert deployed.status_code == 201, deployed.get_json()
    assert deployed.get_json()["version"] == 1 and web_engine.definitions.get(key).deployed_by == "olga"
    assert web_engine.definitions.get(key).resource_name == f"{key}.bpmn"
    # The template's user task goes to the forum named by its lane, with the Camunda form.
    web_engine.identity.add_forum("TMF sekretariat")
    inst = web_engine.runtime.start(key, user="olga")
    (task,) = inst.tasks
    assert task.forum == "TMF sekretariat" and [f["id"] for f in task.fields] == ["beslutning", "bemaerkning"]


@pytest.mark.parametrize("url", ["/processes/testsag/edit", "/processes/new"])
def test_members_may_not_open_the_modeler(as_user, url):
    assert as_user("anna").get(url).status_code == 403


# -- deploy ------------------------------------------------------------------------------------------

def test_deploy_a_changed_diagram_as_a_new_version(as_user, web_engine):
    olga = as_user("olga")
    response = post_json(olga, "/processes/testsag/deploy", {"xml": RENAMED})
    assert response.status_code == 201
    body = response.get_json()
    assert body["version"] == 2 and body["changed"] is True
    assert body["message"] == "Udrullet: Testsag version 2."
    assert body["url"] == "/processes/testsag?version=2"
    latest = web_engine.definitions.get("testsag")
    assert latest.version == 2 and latest.deployed_by == "olga" and latest.resource_name == "testsag.bpmn"
    assert web_engine.definitions.source("testsag", 2)[1] == RENAMED.encode()
    # The same diagram again changes nothing.
    again = post_json(olga, "/processes/testsag/deploy", {"xml": RENAMED})
    assert again.status_code == 200 and again.get_json()["changed"] is False
    assert again.get_json()["message"] == "Uændret: Testsag er allerede udrullet som version 2."
    assert versions(web_engine) == [1, 2]


def test_deploy_accepts_a_raw_xml_body(as_user, web_engine):
    olga = as_user("olga")
    response = olga.client.post("/processes/testsag/deploy", data=RENAMED.encode(), content_type="application/xml",
                                headers={"X-CSRFToken": token(olga)})
    assert response.status_code == 201 and versions(web_engine) == [1, 2]


def test_an_invalid_diagram_is_refused_with_problems_and_nothing_is_deployed(as_user, web_engine):
    olga = as_user("olga")
    response = post_json(olga, "/processes/testsag/deploy", {"xml": BAD_SCRIPT})
    assert response.status_code == 422 and response.is_json
    body = response.get_json()
    assert body["title"] == "Diagrammet blev ikke udrullet" and body["detail"]
    assert any(p["element_id"] == "beregn" and p["file"] == "testsag.bpmn" for p in body["problems"])
    broken = post_json(olga, "/processes/testsag/deploy", {"xml": "<bpmn:definitions"})
    assert broken.status_code == 422 and "not well-formed" in broken.get_json()["problems"][0]["message"]
    assert versions(web_engine) == [1]


def test_deploy_refuses_a_diagram_without_the_process_of_the_url(as_user, web_engine):
    response = post_json(as_user("olga"), "/processes/henvendelse/deploy", {"xml": RENAMED})
    assert response.status_code == 422
    assert "henvendelse" in response.get_json()["problems"][0]["message"]
    assert versions(web_engine) == [1] and versions(web_engine, "henvendelse") == [1]


def test_deploy_refuses_a_diagram_whose_process_has_no_id(as_user, web_engine):
    # Once a server error: the check for the process of the URL listed the ids, None among them.
    no_id = TESTSAG.replace('<bpmn:process id="testsag"', "<bpmn:process", 1)
    assert no_id != TESTSAG
    response = post_json(as_user("olga"), "/processes/testsag/deploy", {"xml": no_id})
    assert response.status_code == 422
    assert [p["message"] for p in response.get_json()["problems"]] == ["the executable process has no id"]
    assert versions(web_engine) == [1]


@pytest.mark.parametrize("payload", [{}, {"xml": ""}, {"xml": 5}, [1, 2]])
def test_deploy_without_a_diagram_is_a_bad_request(as_user, web_engine, payload):
    response = post_json(as_user("olga"), "/processes/testsag/deploy", payload)
    assert response.status_code == 400 and response.get_json()["title"] == "Ugyldig forespørgsel"
    assert versions(web_engine) == [1]


@pytest.mark.parametrize("url", ["/processes/testsag/deploy", "/processes/validate"])
def test_members_may_not_deploy_or_validate(as_user, web_engine, url):
    response = post_json(as_user("anna"), url, {"xml": RENAMED})
    assert response.status_code == 403 and response.is_json
    assert response.get_json()["title"] == "Adgang nægtet" and response.get_json()["problems"] == []
    assert versions(web_engine) == [1]


@pytest.mark.parametrize("url", ["/processes/testsag/deploy", "/processes/validate"])
def test_json_endpoints_need_the_csrf_token(as_user, web_engine, url):
    response = post_json(as_user("olga"), url, {"xml": RENAMED}, csrf=False)
    assert response.status_code == 400 and response.is_json
    assert "CSRF" in response.get_json()["detail"]
    olga = as_user("olga")
    wrong = olga.client.post(url, json={"xml": RENAMED}, headers={"X-CSRFToken": "forfalsket"})
    assert wrong.status_code == 400
    assert versions(web_engine) == [1]


def test_json_endpoints_answer_other_errors_as_json(app, as_user, web_engine):
    olga = as_user("olga")
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = post_json(olga, "/processes/testsag/deploy", {"xml": RENAMED})
    assert response.status_code == 413 and response.get_json()["title"] == "Filen er for stor"
    assert versions(web_engine) == [1]


def test_visitors_who_are_not_logged_in_are_sent_to_the_login(web, web_engine):
    response = web.client.post("/processes/testsag/deploy", json={"xml": RENAMED}, headers={"X-CSRFToken": web.token()})
    assert response.status_code == 302 and "/login" in response.location
    assert versions(web_engine) == [1]


# -- validate ----------------------------------------------------------------------------------------

def test_validate_lists_problems_with_their_elements_and_stores_nothing(as_user, web_engine):
    olga = as_user("olga")
    response = post_json(olga, "/processes/validate", {"xml": BAD_SCRIPT, "key": "testsag"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["valid"] is False and [p["element_id"] for p in body["problems"]] == ["beregn"]
    ok = post_json(olga, "/processes/validate", {"xml": RENAMED, "key": "testsag"})
    assert ok.get_json() == {"valid": True, "problems": []}
    other_key = post_json(olga, "/processes/validate", {"xml": RENAMED, "key": "henvendelse"})
    assert other_key.get_json()["valid"] is False
    assert versions(web_engine) == [1]


def test_validate_without_a_key_and_with_broken_xml(as_user):
    olga = as_user("olga")
    assert post_json(olga, "/processes/validate", {"xml": RENAMED}).get_json()["valid"] is True
    body = post_json(olga, "/processes/validate", {"xml": "<x"}).get_json()
    assert body["valid"] is False and body["problems"][0]["file"] == "diagram.bpmn"
    assert post_json(olga, "/processes/validate", {"nothing": 1}).status_code == 400


# -- the viewer on case pages ------------------------------------------------------------------------

def test_case_and_task_pages_carry_the_marked_diagram_and_a_text_fallback(as_user, web_engine, case):
    anna = as_user("anna")
    task = case.tasks[0]
    for url in (f"/instances/{case.id}", f"/tasks/{task.id}"):
        html = text(anna.get(url))
        assert 'id="diagram"' in html and "data-bpmn-viewer" in html and "vendor/viewer.js" in html
        assert 'data-xml-url="/processes/testsag/versions/1/xml"' in html
        assert 'data-active="registrer"' in html and 'data-completed="start"' in html
        assert "Aktive trin: Registrer sagen" in html and "Udførte trin: Sag modtaget" in html
        for label in (">Zoom ind<", ">Zoom ud<", ">Vis hele diagrammet<", "Udført", "Aktivt nu"):
            assert label in html, label
        assert 'aria-label="Procesdiagram for Testsag, version 1"' not in html  # it labels the canvas
        assert 'data-label-canvas="Procesdiagram for Testsag, version 1"' in html


BROKEN = TESTSAG.replace('<bpmn:endEvent id="slut" name="Sag afsluttet"/>',
                         '<bpmn:scriptTask id="del" name="Del" scriptFormat="python"><bpmn:script>x = 1 / 0'
                         '</bpmn:script></bpmn:scriptTask><bpmn:endEvent id="slut" name="Sag afsluttet"/>'
                         ).replace('targetRef="slut"', 'targetRef="del"').replace(
                         '</bpmn:process>', '<bpmn:sequenceFlow id="f9" sourceRef="del" targetRef="slut"/></bpmn:process>')


def test_an_incident_is_marked_apart_from_the_active_steps(as_user, web_engine):
    web_engine.definitions.deploy([Resource("testsag.bpmn", BROKEN.encode())], user="olga")
    inst = web_engine.runtime.start("testsag", user="admin", data={})
    answers = {"registrer": {"titel": "Sag", "prioritet": "lav"}, "godkend": {"beslutning": "godkendt"}}
    while tasks := web_engine.tasks.query(instance_id=inst.id):
        web_engine.tasks.complete(tasks[0].id, "admin", answers[tasks[0].element_id])
    assert web_engine.runtime.get(inst.id).status == "incident"
    html = text(as_user("admin").get(f"/instances/{inst.id}"))
    assert 'data-incident="del"' in html and "Trin med fejl: Del" in html
    assert "Aktive trin: –" in html


# -- heatmap and diff on the process page ------------------------------------------------------------

def test_the_process_page_shows_running_cases_per_step(as_user, web_engine):
    for n in range(3):
        web_engine.runtime.start("testsag", business_key=f"K-{n}", user="anna")
    html = text(as_user("olga").get("/processes/testsag"))
    assert 'data-counts=\'{"registrer": 3}\'' in html
    assert "Kørende sager pr. trin (version 1)" in html and "Antal kørende sager på trinnet" in html
    assert re.search(r"<td>Registrer sagen</td><td><code>registrer</code></td><td>3</td>", html)
    assert 'href="/processes/testsag/edit"' in html and 'href="/processes/testsag/edit?version=1"' in html
    assert "Der er kun én version." in html


def test_the_heatmap_shows_a_chosen_version(as_user, web_engine):
    web_engine.runtime.start("testsag", user="anna")
    web_engine.definitions.deploy([Resource("testsag.bpmn", RENAMED.encode())], user="olga")
    olga = as_user("olga")
    latest = text(olga.get("/processes/testsag"))
    assert "data-counts='{}'" in latest and "Ingen kørende sager på denne version." in latest
    first = text(olga.get("/processes/testsag?version=1"))
    assert 'data-counts=\'{"registrer": 1}\'' in first and 'data-xml-url="/processes/testsag/versions/1/xml"' in first
    assert "data-counts='{}'" in text(olga.get("/processes/testsag?version=99"))  # unknown: the latest


def test_the_process_page_summarises_the_diff_between_two_versions(as_user, web_engine):
    changed = RENAMED.replace('camunda:dueDate="P3D"', 'camunda:dueDate="P5D"').replace(
        '<bpmn:endEvent id="slut" name="Sag afsluttet"/>',
        '<bpmn:manualTask id="arkiver" name="Arkiver"/><bpmn:endEvent id="slut" name="Sag afsluttet"/>'
    ).replace('<bpmn:sequenceFlow id="f3" sourceRef="godkend" targetRef="slut"/>',
              '<bpmn:sequenceFlow id="f3" sourceRef="godkend" targetRef="arkiver"/>'
              '<bpmn:sequenceFlow id="f4" sourceRef="arkiver" targetRef="slut"/>')
    web_engine.definitions.deploy([Resource("testsag.bpmn", changed.encode())], user="olga")
    olga = as_user("olga")
    html = text(olga.get("/processes/testsag"))
    assert "Version 1 → 2: 2 tilføjet, 0 fjernet, 2 ændret." in html
    assert "Manuel opgave «Arkiver» <code>arkiver</code>" in html
    assert "Brugeropgave «Registrer henvendelsen» <code>registrer</code>:" in html
    assert "navn (Registrer sagen → Registrer henvendelsen), frist" in html
    assert "Sekvensflow <code>f3</code>:\n      forbindelse" in html or "forbindelse" in html
    reverse = text(olga.get("/processes/testsag?from=2&to=1"))
    assert "Version 2 → 1: 0 tilføjet, 2 fjernet, 2 ændret." in reverse
    same = text(olga.get("/processes/testsag?from=2&to=2"))
    assert "Ingen elementer er tilføjet, fjernet eller ændret." in same


def test_process_page_in_english(as_user, web_engine):
    web_engine.definitions.deploy([Resource("testsag.bpmn", RENAMED.encode())], user="olga")
    olga = as_user("olga")
    html = text(olga.get("/processes/testsag?lang=en"))
    assert "Running cases per step (version 2)" in html and "Differences between versions" in html
    assert "User task «Registrer henvendelsen»" in html and "name (Registrer sagen → Registrer henvendelsen)" in html
    assert ">Validate<" in text(olga.get("/processes/testsag/edit"))
