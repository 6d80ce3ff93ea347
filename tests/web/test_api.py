"""The JSON API: authentication (session + CSRF header, HTTP Basic), every endpoint's happy path,
error paths as application/problem+json, and the same role rules as the web pages."""

from __future__ import annotations

import base64
import io
import json
from datetime import timedelta

import pytest

from .conftest import FIXTURES, PASSWORD, TOKEN, resource

PROBLEM = "application/problem+json"


class Api:
    """A test client speaking JSON with HTTP Basic credentials (or none)."""

    def __init__(self, client, username: str | None = None, password: str = PASSWORD) -> None:
        self.client = client
        self.headers = {}
        if username:
            raw = base64.b64encode(f"{username}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {raw}"

    def get(self, url: str, **kwargs):
        return self.client.get(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, url: str, body=None, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if body is not None and "data" not in kwargs:
            kwargs["data"] = body if isinstance(body, str | bytes) else json.dumps(body)
            kwargs.setdefault("content_type", "application/json")
        return self.client.post(url, headers=headers, **kwargs)


@pytest.fixture
def api(app):
    """api("anna") -> an Api client with anna's Basic credentials; api() -> no credentials."""
    return lambda username=None, password=PASSWORD: Api(app.test_client(), username, password)


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"] and body["type"]
    return body


# -- authentication ------------------------------------------------------------------------------
def test_no_credentials_is_401_problem_with_a_basic_challenge(api):
    body = problem(api().get("/api/tasks"), 401)
    assert body["type"] == "urn:almenflow:problem:unauthorized"
    assert api().get("/api/tasks").headers["WWW-Authenticate"].startswith("Basic ")


def test_wrong_password_and_unknown_scheme_are_401(api):
    problem(api("anna", "forkert-kode").get("/api/tasks"), 401)
    problem(api("nobody").get("/api/tasks"), 401)
    problem(api().get("/api/tasks", headers={"Authorization": "Bearer abc"}), 401)


def test_basic_logins_are_rate_limited(api):
    for _ in range(5):
        problem(api("anna", "forkert-kode").get("/api/tasks"), 401)
    response = api("anna").get("/api/tasks")  # even the right password waits now
    problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0


def test_basic_auth_creates_no_session(api):
    response = api("anna").get("/api/tasks")
    assert response.status_code == 200
    assert not any(k == "Set-Cookie" for k, _ in response.headers.items())


def test_a_deactivated_user_cannot_use_the_api(api, web_engine):
    web_engine.identity.update_user("anna", active=False)
    problem(api("anna").get("/api/tasks"), 401)


def test_the_login_session_works_and_posts_need_the_csrf_header(as_user, web_engine, case):
    anna = as_user("anna")
    assert anna.get("/api/tasks").get_json()["total"] == 1
    url = f"/api/tasks/{case.tasks[0].id}/claim"
    body = problem(anna.client.post(url), 400)
    assert body["type"] == "urn:almenflow:problem:csrf"
    assert web_engine.tasks.get(case.tasks[0].id).assignee is None
    token = TOKEN.search(anna.get("/").get_data(as_text=True)).group(1)
    response = anna.client.post(url, headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.get_json()["assignee"] == "anna"


def test_basic_posts_from_a_foreign_origin_are_refused(api, web_engine, case):
    url = f"/api/tasks/{case.tasks[0].id}/claim"
    problem(api("anna").post(url, headers={"Origin": "https://evil.example"}), 403)
    assert web_engine.tasks.get(case.tasks[0].id).assignee is None
    assert api("anna").post(url, headers={"Origin": "http://localhost"}).status_code == 200


def test_unknown_paths_and_methods_are_problems(api):
    problem(api("anna").get("/api/nope"), 404)
    problem(api("anna").get("/api/tasks/abc"), 404)
    problem(api("anna").client.delete("/api/tasks", headers=api("anna").headers), 405)


# -- OpenAPI ---------------------------------------------------------------------------------------
def test_openapi_document_is_generated_from_the_schemas(app, api):
    response = api().get("/api/openapi.json")  # public: tools read it before they log in
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = str(rule).replace("<int:", "{").replace("<", "{").replace(">", "}")
            routed |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routed == documented and len(documented) == 16
    schemas = doc["components"]["schemas"]
    # every $ref resolves
    refs = set()

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"].rsplit("/", 1)[1])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(doc)
    assert refs and refs <= set(schemas)
    # fields map to JSON Schema with their constraints
    start = schemas["StartRequest"]
    assert start["required"] == ["key"] and start["additionalProperties"] is False
    assert start["properties"]["business_key"] == {"type": ["string", "null"], "maxLength": 255}
    query = {p["name"]: p for p in doc["paths"]["/api/tasks"]["get"]["parameters"]}
    assert query["sort"]["schema"]["enum"] == ["due", "created", "name", "process"]
    assert query["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}
    task = schemas["Task"]["properties"]
    assert "fields" in task and task["due"]["format"] == "date-time"
    complete = doc["paths"]["/api/tasks/{task_id}/complete"]["post"]
    assert complete["responses"]["422"]["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
    deploy = doc["paths"]["/api/definitions"]["post"]
    assert "multipart/form-data" in deploy["requestBody"]["content"]


# -- definitions -----------------------------------------------------------------------------------
def test_members_list_the_processes_they_may_start(api):
    keys = [d["key"] for d in api("anna").get("/api/definitions").get_json()]
    assert keys == ["henvendelse"]


def test_owners_list_every_definition_and_version(api, web_engine):
    web_engine.definitions.deploy([resource("startsag.bpmn")], user="olga")
    defs = api("olga").get("/api/definitions").get_json()
    assert {d["key"] for d in defs} == {"henvendelse", "testsag", "startsag"}
    start = next(d for d in defs if d["key"] == "startsag")
    assert [f["id"] for f in start["start_form"]] == ["titel", "antal", "kategori", "haster"]
    assert api("olga").get("/api/definitions?latest=true").status_code == 200
    problem(api("olga").get("/api/definitions?latest=maybe"), 400)
    problem(api("olga").get("/api/definitions?bogus=1"), 400)


def _upload(api_client, *files):
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    return api_client.post("/api/definitions", data=data, content_type="multipart/form-data")


def test_owners_deploy_files(api, web_engine):
    content = (FIXTURES / "testsag.bpmn").read_bytes().replace(b'name="Registrer sagen"', b'name="Registrer"')
    response = _upload(api("olga"), ("testsag.bpmn", content))
    assert response.status_code == 201
    body = response.get_json()
    assert [(d["key"], d["version"], d["deployed_by"]) for d in body["deployed"]] == [("testsag", 2, "olga")]
    again = _upload(api("admin"), ("testsag.bpmn", content)).get_json()
    assert again["deployed"] == [] and again["unchanged"][0]["version"] == 2


def test_members_may_not_deploy(api, web_engine):
    problem(_upload(api("anna"), ("x.bpmn", (FIXTURES / "testsag.bpmn").read_bytes())), 403)
    assert [d.version for d in web_engine.definitions.list() if d.key == "testsag"] == [1]


def test_a_refused_deployment_is_422_with_every_problem(api):
    body = problem(_upload(api("olga"), ("bad.bpmn", b"<bpmn:definitions")), 422)
    assert body["type"] == "urn:almenflow:problem:deployment"
    assert body["problems"][0]["file"] == "bad.bpmn" and body["problems"][0]["message"]


def test_deploy_without_files_or_with_the_wrong_kind_is_400(api):
    assert "files" in problem(api("olga").post("/api/definitions", data={}, content_type="multipart/form-data"),
                              400)["errors"]
    problem(_upload(api("olga"), ("notes.txt", b"hello")), 400)


# -- instances -----------------------------------------------------------------------------------
def test_a_member_starts_an_open_process(api, web_engine):
    response = api("anna").post("/api/instances", {"key": "henvendelse", "business_key": "H-9"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["business_key"] == "H-9" and body["started_by"] == "anna" and body["status"] == "active"
    assert response.headers["Location"].endswith(f"/api/instances/{body['id']}")
    assert body["tasks"][0]["name"] == "Beskriv henvendelsen"
    assert body["history"][0]["type"] == "started"


def test_start_rules_and_start_form_validation(api, web_engine):
    web_engine.definitions.deploy([resource("startsag.bpmn")], user="olga")
    problem(api("anna").post("/api/instances", {"key": "testsag"}), 403)
    problem(api("olga").post("/api/instances", {"key": "nope"}), 404)
    body = problem(api("olga").post("/api/instances", {"key": "startsag", "data": {"antal": 0}}), 422)
    assert body["errors"]["titel"] == ["Feltet skal udfyldes."] and "antal" in body["errors"]
    english = problem(api("olga").post("/api/instances", {"key": "startsag", "data": {}},
                                       headers={"Accept-Language": "en"}), 422)
    assert english["errors"]["titel"] == ["This field is required."]
    assert web_engine.runtime.list()[1] == 0
    ok = api("olga").post("/api/instances", {"key": "startsag", "data": {"titel": "Godt", "kategori": "tryghed"}})
    assert ok.status_code == 201 and ok.get_json()["data"]["kategori"] == "tryghed"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "key"),
    ({"key": "henvendelse", "extra": 1}, "extra"),
    ({"key": 5}, "key"),
    ({"key": "henvendelse", "data": [1]}, "data"),
    ({"key": "henvendelse", "business_key": "x" * 256}, "business_key"),
])
def test_invalid_start_bodies_are_400_with_field_errors(api, web_engine, body, field):
    result = problem(api("anna").post("/api/instances", body), 400)
    assert field in result["errors"]
    assert web_engine.runtime.list()[1] == 0


@pytest.mark.parametrize("raw", ['{"key": ', "not json", "[1, 2]", '"henvendelse"', b"\xff\xfe"])
def test_malformed_json_is_400_never_500(api, raw):
    body = problem(api("anna").post("/api/instances", raw, content_type="application/json"), 400)
    assert body["type"] in ("urn:almenflow:problem:malformed-json", "urn:almenflow:problem:invalid-request")


def test_bad_variable_names_are_400(api):
    problem(api("anna").post("/api/instances", {"key": "henvendelse", "data": {"not valid": 1}}), 400)


def test_admins_list_cases_with_filters_and_paging(api, web_engine, case):
    for n in range(3):
        web_engine.runtime.start("henvendelse", business_key=f"H-{n}", user="bo")
    admin = api("admin")
    page = admin.get("/api/instances?limit=2").get_json()
    assert page["total"] == 4 and page["limit"] == 2 and [i["business_key"] for i in page["items"]] == ["H-2", "H-1"]
    assert admin.get("/api/instances?limit=2&offset=2").get_json()["items"][1]["business_key"] == "K-2027-1"
    assert admin.get("/api/instances?process=testsag").get_json()["total"] == 1
    assert admin.get("/api/instances?business_key=H-*&started_by=bo").get_json()["total"] == 3
    assert admin.get("/api/instances?forum=Sekretariat&status=active").get_json()["total"] == 4
    # the cases started at 09:00 UTC = 10:00 in Copenhagen: offsets are honoured
    assert admin.get("/api/instances?started_from=2027-01-04T10:00:01%2B01:00").get_json()["total"] == 0
    assert admin.get("/api/instances?started_from=2027-01-04T10:00:00%2B01:00").get_json()["total"] == 4
    assert admin.get("/api/instances?started_to=2027-01-05T00:00:00Z").get_json()["total"] == 4


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "offset=-1", "status=bogus", "version=x",
                                   "started_from=2027-01-04", "unknown=1"])
def test_bad_instance_queries_are_400(api, query):
    problem(api("admin").get(f"/api/instances?{query}"), 400)


def test_members_list_only_the_cases_they_started(api, web_engine, case):
    web_engine.runtime.start("henvendelse", business_key="H-bo", user="bo")
    page = api("bo").get("/api/instances?started_by=anna").get_json()
    assert [i["business_key"] for i in page["items"]] == ["H-bo"]


def test_read_a_case_with_the_web_pages_visibility_rules(api, case):
    body = api("anna").get(f"/api/instances/{case.id}").get_json()
    assert body["id"] == case.id and body["definition"]["key"] == "testsag"
    assert body["tasks"][0]["fields"][0]["id"] == "titel" and body["waits"] == []
    assert body["active_elements"] == ["registrer"]
    problem(api("outsider").get(f"/api/instances/{case.id}"), 403)
    problem(api("admin").get("/api/instances/999"), 404)


def test_admin_operations_with_audit(api, web_engine, case):
    admin = api("admin")
    assert admin.post(f"/api/instances/{case.id}/suspend").get_json()["status"] == "suspended"
    problem(admin.post(f"/api/instances/{case.id}/suspend"), 409)
    assert admin.post(f"/api/instances/{case.id}/resume").get_json()["status"] == "active"
    problem(admin.post(f"/api/instances/{case.id}/terminate", {}), 400)
    problem(admin.post(f"/api/instances/{case.id}/terminate", {"reason": ""}), 400)
    done = admin.post(f"/api/instances/{case.id}/terminate", {"reason": "Dublet"}).get_json()
    assert done["status"] == "terminated" and done["tasks"] == []
    events = [(e.type, e.user) for e in web_engine.history.events(case.id) if e.user == "admin"]
    assert events == [("suspended", "admin"), ("resumed", "admin"), ("terminated", "admin")]
    problem(admin.post("/api/instances/999/suspend"), 404)


@pytest.mark.parametrize("user", ["anna", "olga"])
@pytest.mark.parametrize("action", ["suspend", "resume", "retry"])
def test_members_and_owners_may_not_operate_cases(api, web_engine, case, user, action):
    problem(api(user).post(f"/api/instances/{case.id}/{action}"), 403)
    problem(api(user).post(f"/api/instances/{case.id}/terminate", {"reason": "nej"}), 403)
    assert web_engine.runtime.get(case.id).status == "active"


@pytest.fixture
def waiting(web_engine):
    web_engine.definitions.deploy([resource("beskedsag.bpmn")], user="olga")
    return web_engine.runtime.start("beskedsag", business_key="B-1", user="anna", data={"deler": 0})


def test_messages_and_retry_with_corrected_data(api, web_engine, waiting):
    admin = api("admin")
    body = admin.post("/api/messages", {"name": "svar_modtaget", "business_key": "B-1", "data": {"svar": "ja"}})
    assert body.status_code == 200 and body.get_json() == {"instances": [waiting.id]}
    assert web_engine.runtime.get(waiting.id).status == "incident"
    problem(admin.post(f"/api/instances/{waiting.id}/retry", {"data": "x"}), 400)
    retried = admin.post(f"/api/instances/{waiting.id}/retry", {"data": {"deler": 10}}).get_json()
    assert retried["status"] == "active" and retried["data"]["andel"] == 10
    types = [e.type for e in web_engine.history.events(waiting.id)]
    assert "message_received" in types and "retried" in types
    problem(admin.post(f"/api/instances/{waiting.id}/retry"), 409)  # no incident any more


def test_message_errors(api, web_engine, waiting):
    body = problem(api("admin").post("/api/messages", {"name": "ukendt"}), 404)
    assert body["type"] == "urn:almenflow:problem:message-not-correlated"
    problem(api("admin").post("/api/messages", {"business_key": "B-1"}), 400)
    problem(api("anna").post("/api/messages", {"name": "svar_modtaget"}), 403)
    assert web_engine.runtime.get(waiting.id).waits


# -- tasks ---------------------------------------------------------------------------------------
def test_inbox_query_with_filters_sorting_and_paging(api, web_engine, case, web_clock):
    other = web_engine.runtime.start("henvendelse", business_key="H-1", user="anna")
    anna = api("anna")
    page = anna.get("/api/tasks").get_json()
    assert page["total"] == 2 and [t["business_key"] for t in page["items"]] == ["K-2027-1", "H-1"]
    assert anna.get("/api/tasks?sort=name").get_json()["items"][0]["name"] == "Beskriv henvendelsen"
    assert anna.get("/api/tasks?process=henvendelse").get_json()["total"] == 1
    assert anna.get("/api/tasks?limit=1&offset=1").get_json()["items"][0]["business_key"] == "H-1"
    assert anna.get("/api/tasks?overdue=true").get_json()["total"] == 0
    web_clock.advance(timedelta(days=4))
    assert anna.get("/api/tasks?overdue=true").get_json()["items"][0]["business_key"] == "K-2027-1"
    web_engine.tasks.claim(other.tasks[0].id, "anna")
    assert anna.get("/api/tasks?assigned=me").get_json()["items"][0]["business_key"] == "H-1"
    assert anna.get("/api/tasks?assigned=unassigned").get_json()["total"] == 1
    assert api("bo").get("/api/tasks").get_json()["total"] == 0


@pytest.mark.parametrize("query", ["sort=id", "assigned=you", "limit=abc", "status=done", "overdue=perhaps"])
def test_bad_task_queries_are_400(api, query):
    problem(api("anna").get(f"/api/tasks?{query}"), 400)


def test_tasks_of_one_case(api, case):
    assert api("admin").get(f"/api/tasks?instance_id={case.id}").get_json()["total"] == 1
    assert api("anna").get(f"/api/tasks?instance_id={case.id}&status=all").get_json()["total"] == 1
    problem(api("outsider").get(f"/api/tasks?instance_id={case.id}"), 403)
    problem(api("admin").get("/api/tasks?instance_id=999"), 404)


def test_read_a_task(api, case):
    task_id = case.tasks[0].id
    body = api("carl").get(f"/api/tasks/{task_id}").get_json()
    assert body["name"] == "Registrer sagen" and body["forum"] == "Sekretariat"
    problem(api("bo").get(f"/api/tasks/{task_id}"), 403)
    problem(api("anna").get("/api/tasks/999"), 404)


def test_claim_unclaim_and_conflicts(api, web_engine, case):
    task_id = case.tasks[0].id
    assert api("anna").post(f"/api/tasks/{task_id}/claim").get_json()["assignee"] == "anna"
    body = problem(api("carl").post(f"/api/tasks/{task_id}/claim"), 409)
    assert "already claimed" in body["detail"]
    problem(api("carl").post(f"/api/tasks/{task_id}/unclaim"), 403)
    assert api("anna").post(f"/api/tasks/{task_id}/unclaim").get_json()["assignee"] is None
    problem(api("anna").post(f"/api/tasks/{task_id}/unclaim"), 409)  # not claimed
    problem(api("bo").post(f"/api/tasks/{task_id}/claim"), 403)
    claimed = [e.type for e in web_engine.history.events(case.id)]
    assert claimed.count("claimed") == 1 and claimed.count("unclaimed") == 1


def test_complete_with_validation_and_the_next_task(api, web_engine, case):
    task_id = case.tasks[0].id
    body = problem(api("carl").post(f"/api/tasks/{task_id}/complete", {"data": {"titel": "ab", "antal": "x"}}), 422)
    assert body["type"] == "urn:almenflow:problem:form-validation"
    assert body["errors"]["titel"] == ["Skal være mindst 3 tegn."]
    assert body["errors"]["antal"] == ["Skal være et helt tal."] and "prioritet" in body["errors"]
    assert web_engine.tasks.get(task_id).status == "open"
    problem(api("bo").post(f"/api/tasks/{task_id}/complete", {"data": {"titel": "Godt", "prioritet": "lav"}}), 403)
    done = api("carl").post(f"/api/tasks/{task_id}/complete", {"data": {"titel": "Godt", "prioritet": "lav"}})
    assert done.status_code == 200
    result = done.get_json()
    assert result["task"]["status"] == "completed" and result["task"]["completed_by"] == "carl"
    assert result["next_task"]["name"] == "Godkend sagen"  # carl is in Styregruppe too
    problem(api("carl").post(f"/api/tasks/{task_id}/complete", {"data": {}}), 409)
    events = [e for e in web_engine.history.events(case.id) if e.type == "task_completed"]
    assert events[0].user == "carl" and events[0].details["data"]["titel"] == "Godt"


def test_complete_body_must_be_an_object_with_data(api, case):
    task_id = case.tasks[0].id
    problem(api("anna").post(f"/api/tasks/{task_id}/complete", {"daten": {}}), 400)
    problem(api("anna").post(f"/api/tasks/{task_id}/complete", "{oops", content_type="application/json"), 400)


def test_completing_a_task_of_a_suspended_case_is_a_conflict(api, web_engine, case):
    web_engine.runtime.suspend(case.id, "admin")
    problem(api("anna").post(f"/api/tasks/{case.tasks[0].id}/complete",
                             {"data": {"titel": "Godt", "prioritet": "lav"}}), 409)
