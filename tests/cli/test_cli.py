"""The `almenflow` command line: its JSON contract and its error behaviour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from webapp.cli import cli

ROOT = Path(__file__).resolve().parents[2]

PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">
  <bpmn:process id="sag" name="Sag" isExecutable="true">
    <bpmn:laneSet id="ls">
      <bpmn:lane id="l1" name="Sekretariat"><bpmn:flowNodeRef>s</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>vurder</bpmn:flowNodeRef><bpmn:flowNodeRef>svar</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>e</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="vurder" name="Vurder sagen" camunda:dueDate="P3D">
      <bpmn:extensionElements><camunda:formData>
        <camunda:formField id="beslutning" label="Beslutning" type="enum">
          <camunda:value id="ja" name="Ja"/><camunda:value id="nej" name="Nej"/>
          <camunda:validation><camunda:constraint name="required"/></camunda:validation>
        </camunda:formField>
        <camunda:formField id="antal" label="Antal" type="long">
          <camunda:validation><camunda:constraint name="min" config="1"/></camunda:validation>
        </camunda:formField>
      </camunda:formData></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:intermediateCatchEvent id="svar" name="Svar">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:messageEventDefinition messageRef="m1"/></bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="e"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="vurder"/>
    <bpmn:sequenceFlow id="f2" sourceRef="vurder" targetRef="svar"/>
    <bpmn:sequenceFlow id="f3" sourceRef="svar" targetRef="e"/>
  </bpmn:process>
  <bpmn:message id="m1" name="svar_modtaget"/>
</bpmn:definitions>
"""


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ALMENFLOW_DATABASE_URL", db_url)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, ok: bool = True):
        result = runner.invoke(cli, list(args), input=input, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output + result.stderr
        return result

    invoke("init")
    invoke("forums")  # empty organisation is fine
    return invoke


@pytest.fixture
def org(run, tmp_path):
    (tmp_path / "org.yaml").write_text(
        "forums:\n  - {name: Sekretariat, level: 3, kind: internal}\n"
        "users:\n  - {username: anna, name: Anna, role: member, forums: [Sekretariat], password: demo-anna-1}\n"
        "  - {username: bo, name: Bo, role: member, forums: [], password: demo-bo-123}\n",
        encoding="utf-8")
    run("load-org", str(tmp_path / "org.yaml"))
    (tmp_path / "sag.bpmn").write_text(PROCESS, encoding="utf-8")
    return tmp_path


def js(result) -> object:
    return json.loads(result.stdout)


def test_json_contract_start_tasks_complete_show(run, org):
    deployed = js(run("deploy", str(org / "sag.bpmn"), "--json"))
    assert [(d["key"], d["version"]) for d in deployed["deployed"]] == [("sag", 1)]
    listed = js(run("definitions", "--json"))
    assert [(d["key"], d["version"], d["name"]) for d in listed] == [("sag", 1, "Sag")]

    started = js(run("start", "sag", "--business-key", "S-1", "--user", "anna", "--data", '{"emne": "x"}', "--json"))
    assert isinstance(started["id"], int)

    tasks = js(run("tasks", "--user", "anna", "--json"))
    assert len(tasks) == 1
    task = tasks[0]
    assert {"id", "name", "element_id", "forum", "instance_id", "assignee", "due", "fields"} <= set(task)
    assert task["element_id"] == "vurder" and task["forum"] == "Sekretariat"
    assert task["instance_id"] == started["id"] and task["due"].startswith("20")
    assert [f["id"] for f in task["fields"]] == ["beslutning", "antal"]
    assert js(run("tasks", "--forum", "Andet", "--json")) == []
    assert js(run("tasks", "--user", "bo", "--json")) == []

    run("claim", str(task["id"]), "--user", "anna")
    run("complete", str(task["id"]), "--user", "anna", "--data", '{"beslutning": "ja", "antal": 2}')
    shown = js(run("show", str(started["id"]), "--json"))
    assert shown["status"] == "active"
    assert (shown["definition"]["key"], shown["definition"]["version"]) == ("sag", 1)
    assert shown["business_key"] == "S-1"
    assert shown["data"]["beslutning"] == "ja" and shown["data"]["emne"] == "x"
    assert shown["tasks"] == []
    types = [h["type"] for h in shown["history"]]
    assert types[:2] == ["started", "task_created"] and "claimed" in types and "task_completed" in types
    completed = next(h for h in shown["history"] if h["type"] == "task_completed")
    assert completed["user"] == "anna" and completed["element_id"] == "vurder" and completed["time"]

    run("message", "svar_modtaget", "--business-key", "S-1", "--data", '{"svar": "ok"}')
    shown = js(run("show", str(started["id"]), "--json"))
    assert shown["status"] == "completed" and shown["data"]["svar"] == "ok"
    assert [i["id"] for i in js(run("instances", "--status", "completed", "--json"))] == [started["id"]]


def _error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    return lines[0]


def test_bad_input_exits_2_with_one_line(run, org):
    run("deploy", str(org / "sag.bpmn"))
    assert "no process definition 'nope'" in _error(run("start", "nope", ok=False))
    assert "not valid JSON" in _error(run("start", "sag", "--data", "{bad", ok=False))
    iid = js(run("start", "sag", "--json"))["id"]
    task_id = js(run("tasks", "--instance", str(iid), "--json"))[0]["id"]
    line = _error(run("complete", str(task_id), "--user", "anna", "--data", '{"antal": 0}', ok=False))
    assert "beslutning" in line and "antal" in line
    assert "may not" in _error(run("complete", str(task_id), "--user", "bo", "--data", '{"beslutning": "ja"}', ok=False))
    run("complete", str(task_id), "--user", "anna", "--data", '{"beslutning": "nej"}')
    assert "already completed" in _error(run("complete", str(task_id), "--user", "anna", "--data",
                                             '{"beslutning": "nej"}', ok=False))
    assert "svar_modtaget" in _error(run("message", "svar_modtaget", "--business-key", "other", ok=False))
    bad = org / "bad.bpmn"
    bad.write_text(PROCESS.replace('targetRef="e"/>', 'targetRef="nowhere"/>'), encoding="utf-8")
    line = _error(run("deploy", str(bad), ok=False))
    assert "bad.bpmn" in line and "f3" in line
    assert "unknown forum" in _error(run("user", "add", "carl", "--forum", "Nope", ok=False))


def test_user_add_with_several_forums_and_password_stdin(run, org, tmp_path):
    (tmp_path / "org2.yaml").write_text("forums:\n  - {name: TMF, kind: administration}\n", encoding="utf-8")
    run("load-org", str(tmp_path / "org2.yaml"))
    out = js(run("user", "add", "carl", "--forum", "Sekretariat", "--forum", "TMF", "--role", "owner",
                 "--password-stdin", "--json", input="langt-kodeord\n"))
    assert out["role"] == "owner" and sorted(out["forums"]) == ["Sekretariat", "TMF"]


def test_suspend_resume_terminate_and_run_due(run, org):
    run("deploy", str(org / "sag.bpmn"))
    iid = str(js(run("start", "sag", "--json"))["id"])
    assert js(run("suspend", iid, "--user", "anna", "--json"))["status"] == "suspended"
    assert js(run("resume", iid, "--json"))["status"] == "active"
    missing_reason = run("terminate", iid, ok=False)
    assert missing_reason.exit_code == 2 and "--reason" in missing_reason.stderr
    assert js(run("terminate", iid, "--reason", "fejloprettet", "--json"))["status"] == "terminated"
    assert "terminated" in _error(run("suspend", iid, ok=False))
    assert js(run("run-due", "--json")) == {"fired": 0, "started": 0}


def test_every_corpus_file_deploys_or_is_refused_without_a_crash(run):
    corpus = sorted(p for p in (ROOT.parent / "shared" / "corpus").glob("*/*") if p.name != "README.md")
    assert corpus, "the shared corpus is missing"
    for path in corpus:
        result = run("deploy", str(path), ok=False)
        if result.exit_code == 0:
            continue
        line = _error(result)
        assert path.name in line and "deployment refused" in line


def test_installed_console_script_runs_without_traceback(empty_db_url):
    exe = Path(sys.executable).parent / "almenflow"
    env = dict(os.environ, ALMENFLOW_DATABASE_URL=empty_db_url)
    result = subprocess.run([str(exe), "tasks"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2 and "almenflow init" in result.stderr and "Traceback" not in result.stderr
