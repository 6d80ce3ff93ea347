"""The process library: versions and counts, upload and deploy, XML download, starting a case."""

from __future__ import annotations

import io

import pytest

from .conftest import FIXTURES, resource, text


def upload(client, files: list[tuple[str, bytes]], csrf: bool = True):
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    return client.post("/processes", data, csrf=csrf, content_type="multipart/form-data")


@pytest.mark.parametrize("user", ["olga", "admin"])
def test_owners_and_admins_see_the_library(as_user, web_engine, case, user):
    response = as_user(user).get("/processes")
    assert response.status_code == 200
    html = text(response)
    assert "Testsag" in html and "Henvendelse" in html and "olga" in html
    assert 'name="files"' in html and 'enctype="multipart/form-data"' in html


@pytest.mark.parametrize("url", ["/processes", "/processes/testsag"])
@pytest.mark.parametrize("user", ["anna", "outsider"])
def test_members_may_not_see_the_library(as_user, url, user):
    assert as_user(user).get(url).status_code == 403


def test_members_may_not_deploy(as_user, web_engine):
    xml = (FIXTURES / "testsag.bpmn").read_bytes().replace(b'name="Registrer sagen"', b'name="Hack"')
    assert upload(as_user("anna"), [("testsag.bpmn", xml)]).status_code == 403
    assert [d.version for d in web_engine.definitions.list() if d.key == "testsag"] == [1]


def test_upload_deploys_a_new_version(as_user, web_engine):
    olga = as_user("olga")
    xml = (FIXTURES / "testsag.bpmn").read_bytes().replace(b'name="Registrer sagen"', b'name="Registrer henvendelsen"')
    response = upload(olga, [("testsag.bpmn", xml)])
    assert response.status_code == 302
    latest = web_engine.definitions.get("testsag")
    assert latest.version == 2 and latest.deployed_by == "olga"
    html = text(olga.get("/processes"))
    assert "Udrullet: Testsag version 2." in html


def test_uploading_the_same_file_again_changes_nothing(as_user, web_engine):
    olga = as_user("olga")
    upload(olga, [("testsag.bpmn", (FIXTURES / "testsag.bpmn").read_bytes())])
    assert web_engine.definitions.get("testsag").version == 1
    assert "Uændret: Testsag er allerede udrullet som version 1." in text(olga.get("/processes"))


def test_a_refused_upload_shows_each_problem(as_user, web_engine):
    broken = b'<?xml version="1.0"?><bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
    response = upload(as_user("olga"), [("broken.bpmn", broken)])
    assert response.status_code == 422
    html = text(response)
    assert "Filerne blev ikke udrullet" in html and "broken.bpmn" in html
    assert {d.key for d in web_engine.definitions.list()} == {"testsag", "henvendelse"}


def test_upload_refuses_other_files_and_an_empty_form(as_user):
    olga = as_user("olga")
    response = upload(olga, [("notes.txt", b"hello")])
    assert response.status_code == 422 and "Kun .bpmn- og .dmn-filer kan udrulles." in text(response)
    response = olga.post("/processes", {}, content_type="multipart/form-data")
    assert response.status_code == 422 and "Vælg en eller flere" in text(response)


def test_upload_needs_the_csrf_token(as_user, web_engine):
    xml = (FIXTURES / "testsag.bpmn").read_bytes().replace(b'name="Registrer sagen"', b'name="X"')
    assert upload(as_user("olga"), [("testsag.bpmn", xml)], csrf=False).status_code == 400
    assert web_engine.definitions.get("testsag").version == 1


def test_process_page_lists_versions_with_downloads(as_user, web_engine, case):
    response = as_user("olga").get("/processes/testsag")
    assert response.status_code == 200
    html = text(response)
    assert "/processes/testsag/versions/1/xml" in html and "testsag.bpmn" in html
    assert "Aktiv: 1" in html
    assert as_user("olga").get("/processes/nope").status_code == 404


def test_download_a_version_as_an_attachment(as_user):
    response = as_user("anna").get("/processes/testsag/versions/1/xml")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert response.headers["Content-Disposition"] == 'attachment; filename="testsag-v1.bpmn"'
    assert response.data == (FIXTURES / "testsag.bpmn").read_bytes()
    assert as_user("anna").get("/processes/testsag/versions/9/xml").status_code == 404


def test_any_member_may_start_an_open_process_and_lands_on_the_first_task(as_user, web_engine):
    anna = as_user("anna")
    assert "Start en ny sag" in text(anna.get("/")) and "Henvendelse" in text(anna.get("/"))
    response = anna.post("/processes/henvendelse/start", {"business_key": "H-2027-9"})
    rows, total = web_engine.runtime.list(key="henvendelse")
    assert total == 1 and rows[0]["started_by"] == "anna" and rows[0]["business_key"] == "H-2027-9"
    task = web_engine.tasks.query(instance_id=rows[0]["id"])[0]
    assert response.status_code == 302 and response.location == f"/tasks/{task.id}"


def test_a_starter_without_a_task_lands_on_the_case(as_user, web_engine):
    response = as_user("outsider").post("/processes/henvendelse/start")
    rows, _ = web_engine.runtime.list(key="henvendelse")
    assert response.location == f"/instances/{rows[0]['id']}"
    assert as_user("outsider").get(response.location).status_code == 200


def test_members_may_not_start_other_processes(as_user, web_engine):
    assert as_user("anna").post("/processes/testsag/start").status_code == 403
    assert web_engine.runtime.list(key="testsag")[1] == 0


def test_owners_may_start_any_process(as_user, web_engine):
    response = as_user("olga").post("/processes/testsag/start", {"business_key": "T-1"})
    assert response.status_code == 302
    assert web_engine.runtime.list(key="testsag")[1] == 1
    assert as_user("olga").post("/processes/nope/start").status_code == 404


def test_start_needs_the_csrf_token(as_user, web_engine):
    assert as_user("anna").post("/processes/henvendelse/start", csrf=False).status_code == 400
    assert web_engine.runtime.list(key="henvendelse")[1] == 0


def test_an_upload_over_the_size_limit_is_refused(app, as_user, web_engine):
    app.config["MAX_CONTENT_LENGTH"] = 2000
    xml = (FIXTURES / "testsag.bpmn").read_bytes().replace(b'name="Registrer sagen"', b'name="Stor"')
    response = upload(as_user("olga"), [("testsag.bpmn", xml)])
    assert response.status_code == 413
    assert "Filen er for stor" in text(response)
    assert web_engine.definitions.get("testsag").version == 1


def test_a_process_with_required_start_fields_is_started_through_its_start_form(web_engine, as_user):
    """The quick start on the process page must not bypass the start form's rules."""
    web_engine.definitions.deploy([resource("startsag.bpmn")], user="olga")
    before = web_engine.runtime.list()[1]
    response = as_user("olga").post("/processes/startsag/start", {"business_key": "S-9"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/start/startsag")
    assert web_engine.runtime.list()[1] == before
