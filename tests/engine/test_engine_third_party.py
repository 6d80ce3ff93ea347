"""A diagram nobody on the team wrote: Camunda Modeler 5 / Camunda 7 style, with lanes, camunda forms,
gateways, a timer boundary, a DMN business rule task, a message catch, a parallel multi-instance and a
call activity. It must deploy and run to completion through the engine services and through the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from engine import FormValidationError, PermissionDeniedError

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "third_party"
MAIN = FOLDER / "grant-application.bpmn"

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"

ORG = {  # forum -> members; john, mary, peter and demo (Camunda's demo users) review by assignment only
    "Front Office": ["frank"],
    "accounting": ["alice"],
    "management": ["mona"],
    "compliance": ["cora"],
}
REVIEWERS = ["john", "mary", "peter", "demo"]

REGISTRATION = {"applicantName": "Kulturhuset Islands Brygge", "amount": "25000", "category": "culture",
                "receivedOn": "2027-01-03"}


@pytest.fixture
def grants(make_engine):
    eng = make_engine()
    for forum, members in ORG.items():
        eng.identity.add_forum(forum)
        for member in members:
            eng.identity.add_user(member, forums=[forum])
    for reviewer in REVIEWERS:
        eng.identity.add_user(reviewer)
    result = eng.definitions.deploy([FOLDER], user="owner")
    assert sorted((d.key, d.version) for d in result["deployed"]) == [("applicant_check", 1),
                                                                      ("grant_application", 1)]
    return eng


def open_tasks(eng, instance_id) -> dict[str, list]:
    out: dict[str, list] = {}
    for task in eng.tasks.query(instance_id=instance_id):
        out.setdefault(task.element_id, []).append(task)
    return out


def register(eng, **overrides):
    inst = eng.runtime.start("grant_application", business_key="G-2027-001", user="frank")
    (task,) = inst.tasks
    assert (task.element_id, task.forum) == ("RegisterApplication", "Front Office")
    eng.tasks.complete(task.id, "frank", {**REGISTRATION, **overrides})
    return inst.id


# -- the fixture is what Camunda Modeler exports -------------------------------------------------------

def test_fixture_is_a_complete_camunda_modeler_export():
    for path in (MAIN, FOLDER / "applicant-check.bpmn"):
        root = etree.parse(str(path)).getroot()
        assert root.get("exporter") == "Camunda Modeler" and root.get("exporterVersion").startswith("5.")
        assert root.get("{http://camunda.org/schema/modeler/1.0}executionPlatform") == "Camunda Platform"
        nodes = {el.get("id") for el in root.iter() if isinstance(el.tag, str)
                 and etree.QName(el).namespace == BPMN and el.getparent() is not None
                 and etree.QName(el.getparent()).localname == "process"
                 and etree.QName(el).localname not in ("laneSet", "sequenceFlow")}
        flows = {el.get("id") for el in root.iter(f"{{{BPMN}}}sequenceFlow")}
        shapes = {el.get("bpmnElement") for el in root.iter(f"{{{BPMNDI}}}BPMNShape")}
        edges = {el.get("bpmnElement") for el in root.iter(f"{{{BPMNDI}}}BPMNEdge")}
        assert nodes and nodes <= shapes, f"{path.name}: shapes missing for {nodes - shapes}"
        assert flows == edges, f"{path.name}: edges missing for {flows ^ edges}"
    root = etree.parse(str(MAIN)).getroot()
    laned = {ref.text for ref in root.iter(f"{{{BPMN}}}flowNodeRef")}
    process = root.find(f"{{{BPMN}}}process")
    assert laned == {el.get("id") for el in process if etree.QName(el).localname not in (
        "laneSet", "sequenceFlow", "boundaryEvent")} | {"Event_1overdue"}
    conditions = [c.text for c in root.iter(f"{{{BPMN}}}conditionExpression")]
    assert conditions and all(c.startswith("${") for c in conditions), "conditions are JUEL"
    mi = next(root.iter(f"{{{BPMN}}}multiInstanceLoopCharacteristics"))
    assert mi.get(f"{{{CAMUNDA}}}collection") == "${reviewers}" and mi.get("isSequential") is None


# -- through the engine services -------------------------------------------------------------------------

def test_main_path_runs_to_completion(grants, clock):
    iid = register(grants)
    view = grants.runtime.get(iid)
    assert view.data["reviewers"] == ["john", "mary"]  # DMN COLLECT -> collectEntries
    assert view.data["amount"] == 25000 and view.data["urgent"] is False

    reviews = open_tasks(grants, iid)["ReviewApplication"]  # parallel multi-instance, one per reviewer
    assert sorted(t.assignee for t in reviews) == ["john", "mary"]
    assert {t.forum for t in reviews} == {"Reviewers"}
    assert [t.id for t in grants.tasks.query(user="john")] == [next(t.id for t in reviews if t.assignee == "john")]
    with pytest.raises(PermissionDeniedError):
        grants.tasks.complete(reviews[0].id, "frank", {"recommendation": "approve"})
    with pytest.raises(FormValidationError) as exc:
        grants.tasks.complete(reviews[0].id, reviews[0].assignee, {"recommendation": "maybe"})
    assert set(exc.value.errors) == {"recommendation"}
    for task in reviews:
        grants.tasks.complete(task.id, task.assignee, {"recommendation": "approve", "reviewComment": "fine"})

    assert grants.runtime.get(iid).data["reviewers"] == ["john", "mary"], "the collection is input only"
    tasks = open_tasks(grants, iid)  # parallel gateway: payment + call activity
    assert sorted(tasks) == ["PreparePayment", "VerifyIdentity"]
    assert tasks["PreparePayment"][0].forum == "accounting"
    assert tasks["VerifyIdentity"][0].forum == "compliance"
    assert [w.element_id for w in grants.runtime.get(iid).waits] == ["Event_1overdue"]
    assert grants.runtime.get(iid).next_due == (clock.now() + timedelta(days=5)).isoformat()

    grants.tasks.complete(tasks["VerifyIdentity"][0].id, "cora",
                          {"identityVerified": True, "registrationNumber": "12345678"})
    clock.advance(timedelta(days=2))
    grants.tasks.complete(tasks["PreparePayment"][0].id, "alice", {"bankAccount": "1234567890"})
    view = grants.runtime.get(iid)
    assert view.tasks == [] and [(w.kind, w.name) for w in view.waits] == [("message", "GrantAgreementSigned")]
    assert view.next_due is None, "the boundary timer is gone with its task"

    assert grants.runtime.correlate("GrantAgreementSigned", "G-2027-001", {"signedBy": "K. Hansen"}) == [iid]
    (payout,) = open_tasks(grants, iid)["PayOutGrant"]
    grants.tasks.complete(payout.id, "alice", {"paidAmount": 25000, "paidOn": "2027-01-08"})

    done = grants.runtime.get(iid)
    assert done.status == "completed"
    assert {k: done.data[k] for k in ("identityVerified", "signedBy", "paidAmount", "bankAccount")} == {
        "identityVerified": True, "signedBy": "K. Hansen", "paidAmount": 25000, "bankAccount": "1234567890"}
    assert {"Event_1paid", "CheckApplicant", "Gateway_1join"} <= set(done.completed_elements)
    assert "Event_0rejected" not in done.completed_elements
    types = [h.type for h in done.history]
    assert types.count("task_completed") == 6 and types[-1] == "completed"
    assert grants.scheduler.run_due() == {"fired": 0, "started": 0}


def test_interrupting_timer_escalates_an_overdue_payment(grants, clock):
    iid = register(grants, amount="500", category="social")  # no reviewers: fast track
    tasks = open_tasks(grants, iid)
    assert sorted(tasks) == ["PreparePayment", "VerifyIdentity"]
    assert grants.runtime.get(iid).data["reviewers"] == []

    clock.advance(timedelta(days=5))
    assert grants.scheduler.run_due()["fired"] == 1
    after = open_tasks(grants, iid)
    assert sorted(after) == ["EscalatePayment", "VerifyIdentity"]
    assert after["EscalatePayment"][0].forum == "management"
    assert grants.tasks.get(tasks["PreparePayment"][0].id).status == "cancelled"

    grants.tasks.complete(after["EscalatePayment"][0].id, "mona", {"bankAccount": "9999888877"})
    grants.tasks.complete(after["VerifyIdentity"][0].id, "cora", {})  # unchecked -> not verified
    (docs,) = open_tasks(grants, iid)["RequestDocuments"]  # default flow in the called process
    assert docs.forum == "compliance"
    grants.tasks.complete(docs.id, "cora", {"documentsReceived": "true"})
    grants.runtime.correlate("GrantAgreementSigned", "G-2027-001")
    (payout,) = open_tasks(grants, iid)["PayOutGrant"]
    grants.tasks.complete(payout.id, "alice", {"paidAmount": 500, "paidOn": "2027-01-11"})
    done = grants.runtime.get(iid)
    assert done.status == "completed"
    assert [h.element_id for h in done.history if h.type == "timer_fired"] == ["Event_1overdue"]
    assert done.data["identityVerified"] is False and done.data["documentsReceived"] is True


def test_amount_above_limit_is_rejected(grants):
    iid = register(grants, amount="150000")
    (task,) = grants.tasks.query(instance_id=iid)
    assert (task.element_id, task.forum) == ("SendRejection", "Front Office")
    grants.tasks.complete(task.id, "frank", {"rejectionReason": "Over the limit"})
    done = grants.runtime.get(iid)
    assert done.status == "completed"
    assert "Event_0rejected" in done.completed_elements and "ReviewApplication" not in done.completed_elements


def test_reviewers_follow_the_decision_table(grants):
    iid = register(grants, amount="150000", urgent="true", category="social")
    reviews = open_tasks(grants, iid)["ReviewApplication"]
    assert sorted(t.assignee for t in reviews) == ["demo", "mary"]
    register_sport = register(grants, amount="60000", category="sport")
    assert sorted(t.assignee for t in open_tasks(grants, register_sport)["ReviewApplication"]) == ["john", "peter"]


# -- through the CLI alone ------------------------------------------------------------------------------

def test_runs_to_completion_through_the_cli_alone(db_url, tmp_path, monkeypatch):
    cli_module = pytest.importorskip("webapp.cli", reason="webapp/cli.py is not there yet")
    from click.testing import CliRunner

    monkeypatch.setenv("ALMENFLOW_DATABASE_URL", db_url)
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(cli_module.cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, f"{args}: {result.output} {result.stderr}"
        return json.loads(result.stdout) if "--json" in args else result.stdout

    org = tmp_path / "org.yaml"
    lines = ["forums:"] + [f"  - {{name: {forum}, kind: role}}" for forum in ORG] + ["users:"]
    lines += [f"  - {{username: {m}, forums: [{forum}]}}" for forum, members in ORG.items() for m in members]
    lines += [f"  - {{username: {r}, forums: []}}" for r in REVIEWERS]
    org.write_text("\n".join(lines) + "\n", encoding="utf-8")

    run("init")
    run("load-org", str(org))
    deployed = run("deploy", str(FOLDER), "--json")
    assert sorted(d["key"] for d in deployed["deployed"]) == ["applicant_check", "grant_application"]
    assert {d["key"] for d in run("definitions", "--json")} == {"applicant_check", "grant_application"}

    iid = run("start", "grant_application", "--business-key", "G-CLI-1", "--user", "frank", "--json")["id"]

    def tasks() -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for t in run("tasks", "--instance", str(iid), "--json"):
            assert {"id", "name", "element_id", "forum", "instance_id", "assignee", "due", "fields"} <= set(t)
            out.setdefault(t["element_id"], []).append(t)
        return out

    def complete(task: dict, user: str, data: dict) -> None:
        run("complete", str(task["id"]), "--user", user, "--data", json.dumps(data), "--json")

    (reg,) = tasks()["RegisterApplication"]
    assert reg["forum"] == "Front Office"
    assert [f["id"] for f in reg["fields"]] == ["applicantName", "amount", "category", "urgent", "receivedOn"]
    complete(reg, "frank", REGISTRATION)

    reviews = tasks()["ReviewApplication"]
    assert sorted(t["assignee"] for t in reviews) == ["john", "mary"]
    for t in reviews:
        run("claim", str(t["id"]), "--user", t["assignee"], "--json")
        complete(t, t["assignee"], {"recommendation": "approve"})

    open_ = tasks()
    assert sorted(open_) == ["PreparePayment", "VerifyIdentity"]
    complete(open_["PreparePayment"][0], "alice", {"bankAccount": "1234567890"})
    complete(open_["VerifyIdentity"][0], "cora", {"identityVerified": True})
    assert tasks() == {}

    delivered = run("message", "GrantAgreementSigned", "--business-key", "G-CLI-1", "--data",
                    json.dumps({"signedBy": "K. Hansen"}), "--json")
    assert delivered["instances"] == [iid]
    (payout,) = tasks()["PayOutGrant"]
    assert payout["forum"] == "accounting"
    complete(payout, "alice", {"paidAmount": 25000, "paidOn": "2027-01-08"})

    shown = run("show", str(iid), "--json")
    assert shown["status"] == "completed"
    assert shown["definition"]["key"] == "grant_application" and shown["business_key"] == "G-CLI-1"
    assert shown["tasks"] == []
    assert shown["data"]["signedBy"] == "K. Hansen" and shown["data"]["reviewers"] == ["john", "mary"]
    assert {"type", "time", "user", "element_id"} <= set(shown["history"][0])
    assert shown["history"][-1]["type"] == "completed"
    assert any(i["id"] == iid for i in run("instances", "--status", "completed", "--json"))
