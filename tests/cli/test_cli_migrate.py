"""`almenflow migrate`: the report, its JSON contract, exit statuses and bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from webapp.cli import MIGRATE_REFUSED_EXIT, cli

from .test_cli import PROCESS

# Version 2 asks for a reason as well and adds a script step after the task.
PROCESS_V2 = (PROCESS
              .replace('name="Vurder sagen"', 'name="Vurder sagen nu"')
              .replace('<camunda:formField id="antal"',
                       '<camunda:formField id="begrundelse" label="Begrundelse" type="string"/>'
                       '<camunda:formField id="antal"')
              .replace('<bpmn:sequenceFlow id="f2" sourceRef="vurder" targetRef="svar"/>',
                       '<bpmn:scriptTask id="noter" scriptFormat="python"><bpmn:script>noteret = True</bpmn:script>'
                       '</bpmn:scriptTask>'
                       '<bpmn:sequenceFlow id="f2" sourceRef="vurder" targetRef="noter"/>'
                       '<bpmn:sequenceFlow id="f2b" sourceRef="noter" targetRef="svar"/>'))
# Version 3 has no task "vurder": instances waiting there cannot move.
PROCESS_V3 = PROCESS.replace('id="vurder"', 'id="bedoem"').replace('Ref="vurder"', 'Ref="bedoem"').replace(
    ">vurder<", ">bedoem<")


@pytest.fixture
def cli_env(db_url, tmp_path):
    runner = CliRunner(env={"ALMENFLOW_DATABASE_URL": db_url})

    def run(*args: str, code: int = 0):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, f"{args}: {result.exit_code} {result.stdout}{result.stderr}"
        return result

    run("init")
    (tmp_path / "org.yaml").write_text(
        "forums:\n  - {name: Sekretariat, level: 3, kind: internal}\n"
        "users:\n  - {username: anna, name: Anna, role: member, forums: [Sekretariat], password: demo-anna-1}\n",
        encoding="utf-8")
    run("load-org", str(tmp_path / "org.yaml"))
    for version, text in enumerate((PROCESS, PROCESS_V2, PROCESS_V3), start=1):
        (tmp_path / f"v{version}").mkdir()
        (tmp_path / f"v{version}" / "sag.bpmn").write_text(text, encoding="utf-8")
    return run, tmp_path


def js(result) -> dict:
    return json.loads(result.stdout)


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_dry_run_then_migrate_and_the_case_runs_on_the_new_version(cli_env):
    run, tmp = cli_env
    run("deploy", str(tmp / "v1" / "sag.bpmn"))
    first = js(run("start", "sag", "--business-key", "S-1", "--json"))
    second = js(run("start", "sag", "--business-key", "S-2", "--json"))
    run("deploy", str(tmp / "v2" / "sag.bpmn"))

    text = run("migrate", "sag", "--from", "1", "--to", "2", "--dry-run").stdout
    assert "dry run" in text and "added noter" in text
    assert "S-1" in text and "migratable" in text and "2 instance(s): 2 migratable." in text
    assert js(run("show", str(first["id"]), "--json"))["definition"]["version"] == 1

    report = js(run("migrate", "sag", "--from", "1", "--to", "2", "--instance", str(first["id"]),
                    "--user", "admin", "--json"))
    assert report["dry_run"] is False and report["counts"]["migrated"] == 1
    assert [(i["id"], i["outcome"]) for i in report["instances"]] == [(first["id"], "migrated")]
    shown = js(run("show", str(first["id"]), "--json"))
    assert shown["definition"]["version"] == 2
    [task] = shown["tasks"]
    assert task["id"] == first["tasks"][0]["id"] and [f["id"] for f in task["fields"]] == [
        "beslutning", "begrundelse", "antal"]
    migrated = [h for h in shown["history"] if h["type"] == "migrated"]
    assert migrated and migrated[0]["user"] == "admin"
    run("complete", str(task["id"]), "--user", "anna", "--data", '{"beslutning": "ja", "begrundelse": "b"}')
    assert js(run("show", str(first["id"]), "--json"))["data"]["noteret"] is True
    # The other instance was not asked for and stayed on version 1.
    assert js(run("show", str(second["id"]), "--json"))["definition"]["version"] == 1


def test_refusals_are_listed_with_their_reason_and_exit_3(cli_env):
    run, tmp = cli_env
    run("deploy", str(tmp / "v1" / "sag.bpmn"))
    waiting = js(run("start", "sag", "--business-key", "W", "--json"))
    past_task = js(run("start", "sag", "--business-key", "P", "--json"))
    run("complete", str(past_task["tasks"][0]["id"]), "--user", "anna", "--data", '{"beslutning": "nej"}')
    run("deploy", str(tmp / "v2" / "sag.bpmn"))
    run("deploy", str(tmp / "v3" / "sag.bpmn"))

    result = run("migrate", "sag", "--from", "1", "--to", "3", code=MIGRATE_REFUSED_EXIT)
    assert "vurder -> bedoem (id" in result.stdout
    assert "refused" in result.stdout and "active element 'vurder' has no element with the same id in version 3" \
        in result.stdout
    assert "1 migrated, 1 refused" in result.stdout
    assert js(run("show", str(waiting["id"]), "--json"))["definition"]["version"] == 1
    assert js(run("show", str(past_task["id"]), "--json"))["definition"]["version"] == 3

    report = js(run("migrate", "sag", "--from", "1", "--to", "3", "--json", code=MIGRATE_REFUSED_EXIT))
    [entry] = report["instances"]
    assert entry["outcome"] == "refused" and entry["active_elements"] == ["vurder"] and entry["reasons"]

    run("message", "svar_modtaget", "--business-key", "P")
    result = run("migrate", "sag", "--from", "3", "--to", "2", "--instance", str(past_task["id"]),
                 code=MIGRATE_REFUSED_EXIT)
    assert "not running" in result.stdout and "completed" in result.stdout


def test_nothing_to_migrate_is_not_an_error(cli_env):
    run, tmp = cli_env
    run("deploy", str(tmp / "v1" / "sag.bpmn"))
    done = js(run("start", "sag", "--business-key", "D", "--json"))
    run("terminate", str(done["id"]), "--reason", "test")
    run("deploy", str(tmp / "v2" / "sag.bpmn"))
    text = run("migrate", "sag", "--from", "1", "--to", "2").stdout
    assert "No running instances of sag version 1" in text and "1 completed or terminated" in text
    assert js(run("migrate", "sag", "--from", "1", "--to", "2", "--json"))["instances"] == []


def test_bad_input_exits_2_with_one_line(cli_env):
    run, tmp = cli_env
    run("deploy", str(tmp / "v1" / "sag.bpmn"))
    inst = js(run("start", "sag", "--json"))
    assert "no process definition 'nope'" in one_line_error(run("migrate", "nope", "--from", "1", "--to", "2", code=2))
    assert "version 2" in one_line_error(run("migrate", "sag", "--from", "1", "--to", "2", code=2))
    run("deploy", str(tmp / "v2" / "sag.bpmn"))
    assert "same version" in one_line_error(run("migrate", "sag", "--from", "2", "--to", "2", code=2))
    assert "positive" in one_line_error(run("migrate", "sag", "--from", "0", "--to", "2", code=2))
    assert "no instance 4242" in one_line_error(run("migrate", "sag", "--from", "1", "--to", "2",
                                                    "--instance", "4242", code=2))
    missing = run("migrate", "sag", "--to", "2", code=2)
    assert "--from" in missing.stderr
    not_a_number = run("migrate", "sag", "--from", "x", "--to", "2", code=2)
    assert "--from" in not_a_number.stderr and "Traceback" not in not_a_number.stderr
    assert js(run("show", str(inst["id"]), "--json"))["definition"]["version"] == 1
