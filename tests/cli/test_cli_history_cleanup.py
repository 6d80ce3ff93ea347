"""`almenflow history ID` (export a case's audit trail) and `almenflow cleanup` (historyTimeToLive)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from webapp.cli import cli

# TTL of zero days: a completed instance is due for cleanup at once (the CLI runs on the real clock).
PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">
  <bpmn:process id="sag" name="Sag" isExecutable="true" camunda:historyTimeToLive="TTL">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="vurder" name="Vurder" camunda:candidateGroups="Sekretariat">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="vurder"/>
    <bpmn:sequenceFlow id="f2" sourceRef="vurder" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ALMENFLOW_DATABASE_URL", db_url)
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output + result.stderr
        return result

    invoke("init")
    (tmp_path / "org.yaml").write_text(
        "forums:\n  - {name: Sekretariat, level: 3, kind: internal}\n"
        "users:\n  - {username: anna, name: Anna, role: member, forums: [Sekretariat], password: demo-anna-1}\n",
        encoding="utf-8")
    invoke("load-org", str(tmp_path / "org.yaml"))
    return invoke


def js(result) -> object:
    return json.loads(result.stdout)


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def deploy(run, tmp_path, ttl: str = "P0D") -> None:
    (tmp_path / "sag.bpmn").write_text(PROCESS.replace("TTL", ttl), encoding="utf-8")
    run("deploy", str(tmp_path / "sag.bpmn"))


def finished_case(run, business_key: str) -> int:
    iid = js(run("start", "sag", "--business-key", business_key, "--json"))["id"]
    task = js(run("tasks", "--instance", str(iid), "--json"))[0]
    run("complete", str(task["id"]), "--user", "anna")
    return iid


def test_history_exports_the_audit_trail_and_comments_as_json(run, tmp_path):
    deploy(run, tmp_path, "P3650D")
    iid = finished_case(run, "S-1")
    export = js(run("history", str(iid), "--json"))
    assert export["format"] == "almenflow-history/1"
    assert export["instance"]["id"] == iid and export["instance"]["business_key"] == "S-1"
    assert export["instance"]["history_ttl_days"] == 3650 and export["instance"]["removal_due_at"]
    types = [e["type"] for e in export["events"]]
    assert types[0] == "started" and "task_completed" in types and types[-1] == "completed"
    assert export["comments"] == [] and export["tasks"][0]["completed_by"] == "anna"
    text = run("history", str(iid)).stdout
    assert f"instance {iid}: sag v1 [completed]" in text and "task_completed" in text


def test_cleanup_dry_run_then_cleanup(run, tmp_path):
    deploy(run, tmp_path)
    done = finished_case(run, "S-1")
    running = js(run("start", "sag", "--business-key", "S-2", "--json"))["id"]

    dry = js(run("cleanup", "--dry-run", "--json"))
    assert dry["dry_run"] is True and dry["count"] == 1
    (item,) = dry["instances"]
    assert (item["instance_id"], item["process_key"], item["process_version"], item["business_key"],
            item["ttl_days"]) == (done, "sag", 1, "S-1", 0)
    assert item["ended_at"]
    assert "would remove 1 instance(s)" in run("cleanup", "--dry-run").stdout
    run("show", str(done))  # still there after the dry runs

    removed = js(run("cleanup", "--json", "--user", "admin"))
    assert removed["dry_run"] is False and [i["instance_id"] for i in removed["instances"]] == [done]
    assert "no instance" in one_line_error(run("show", str(done), ok=False))
    assert js(run("show", str(running), "--json"))["status"] == "active"
    assert "removed 0 instance(s)" in run("cleanup").stdout


def test_cleanup_limit(run, tmp_path):
    deploy(run, tmp_path)
    for n in range(3):
        finished_case(run, f"S-{n}")
    report = js(run("cleanup", "--limit", "2", "--json"))
    assert report["count"] == 2 and report["more"] is True
    assert "removed 1 instance(s)" in run("cleanup", "--limit", "2").stdout


def test_bad_input_exits_2_with_one_line(run, tmp_path):
    assert "whole number" in one_line_error(run("history", "abc", ok=False))
    assert "no instance 999" in one_line_error(run("history", "999", "--json", ok=False))
    assert "--limit" in one_line_error(run("cleanup", "--limit", "0", ok=False))
    assert "--limit" in one_line_error(run("cleanup", "--limit", "many", ok=False))
    assert "between 1 and" in one_line_error(run("cleanup", "--limit", "99999999", ok=False))
    (tmp_path / "bad.bpmn").write_text(PROCESS.replace("TTL", "P1Y"), encoding="utf-8")
    line = one_line_error(run("deploy", str(tmp_path / "bad.bpmn"), ok=False))
    assert "bad.bpmn" in line and "'sag'" in line and "historyTimeToLive" in line
