"""The four KK processes run to completion through the `almenflow` command line alone.

A driver lists the open tasks of the case (`tasks --instance --json`), fills each form from the
field definitions the CLI prints (with a few answers that steer the main path), and completes
it (`complete --data`), until `show --json` says the case is completed."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from webapp.cli import cli

ROOT = Path(__file__).resolve().parents[2]

# Answers that take the main path; every other field is filled from its definition.
ANSWERS: dict[str, dict[str, object]] = {
    "visiter": {"temagruppe": "Temagruppe Boligsocial"},
    "forbered_sag": {"anbefaling": "indstilling"},
    "sf_beslutning": {"beslutning": "luk"},
    "udarbejd_indstilling": {"udvalg": ["TMU"], "lokaludvalg": ["Lokaludvalg Valby"], "medunderskrivere": ["SOF"],
                             "kraever_oeu": True, "to_behandlinger": False},
    "godkend_medunderskrift": {"medunderskrift_svar": "godkendt"},
    "behandl_i_udvalg": {"udvalg_beslutning": "anbefalet"},
    "br_behandling": {"br_beslutning": "vedtaget_uden_afstemning"},
    "tmf_gennemgang": {"risiko": "gul"},
    "godkend_referat": {"referat_svar": "godkendt"},
    "bl_godkendelse": {"bl_beslutning": "godkendt"},
    "pf_godkendelse": {"pf_beslutning": "godkendt"},
    "indgaa_enkeltaftale": {"enkeltaftale_indgaaet": True},
    "statusrapport": {"sidste_rapport": True},
}

# Steps each main path must pass (per organisation twice in B and C, as two organisations are given).
MAIN_PATH = {
    "henvendelse": ["visiter", "forbered_sag", "sf_beslutning", "svar_og_luk"],
    "faellesindstilling": ["udarbejd_indstilling", "godkend_medunderskrift", "orienter_udvalg", "afgiv_hoeringssvar",
                           "udarbejd_hoeringsnotat", "behandl_i_udvalg", "afgiv_oeu_erklaering", "br_behandling",
                           "offentliggoer"],
    "styringsdialog": ["indsend_dokumentation", "tmf_gennemgang", "dialogmoede", "referat_aftale", "godkend_referat",
                       "offentliggoer_redegoerelse", "skriv_sammenfatning"],
    "partnerskabsaftale": ["evaluer_succeskriterier", "forhandl_udkast", "bl_godkendelse", "pf_godkendelse",
                           "br_behandling", "indgaa_delaftaler", "indgaa_enkeltaftale", "statusrapport"],
}

STARTS = {
    "henvendelse": {"titel": "Fælles venteliste", "beskrivelse": "Ønske om fælles venteliste.",
                    "rejst_af": "boligorganisation", "emne": "udlejning"},
    "faellesindstilling": {},
    "styringsdialog": {"boligorganisationer": ["fsb", "AKB København"]},
    "partnerskabsaftale": {"boligorganisationer": ["fsb", "3B"]},
}


def fill(task: dict) -> dict[str, object]:
    data: dict[str, object] = {}
    for f in task["fields"]:
        v = f.get("validation") or {}
        kind = f["type"]
        if kind == "enum":
            data[f["id"]] = f["default"] or f["options"][0]["id"]
        elif kind == "boolean":
            data[f["id"]] = False
        elif kind == "long":
            data[f["id"]] = int(v.get("min") or f["default"] or 1)
        elif kind == "date":
            data[f["id"]] = date.today().isoformat()
        elif (f.get("properties") or {}).get("widget") == "list":
            data[f["id"]] = ["punkt"]
        else:
            data[f["id"]] = "tekst" * max(1, int(v.get("minlength") or 1) // 5 + 1)
    data.update(ANSWERS.get(task["element_id"], {}))
    return data


def make_cli(database_url: str):
    """A `run(*args)` for the CLI on one database, initialised with the organisation and processes."""
    runner = CliRunner(env={"ALMENFLOW_DATABASE_URL": database_url})

    def run(*args: str) -> object:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, f"{args}: {result.stdout}{result.stderr}"
        return json.loads(result.stdout) if "--json" in args else result.stdout

    run("init")
    run("load-org", str(ROOT / "processes" / "organisation.yaml"))
    deployed = run("deploy", str(ROOT / "processes"), "--user", "owner", "--json")
    assert sorted(d["key"] for d in deployed["deployed"]) == sorted(STARTS)
    return run


def drive_to_completion(run, key: str) -> None:
    instance = run("start", key, "--business-key", f"CLI-{key}", "--user", "anna",
                   "--data", json.dumps(STARTS[key]), "--json")["id"]
    completed_elements: list[str] = []
    for _ in range(200):
        shown = run("show", str(instance), "--json")
        assert shown["status"] in ("active", "completed"), shown.get("incident")
        if shown["status"] == "completed":
            break
        tasks = run("tasks", "--instance", str(instance), "--json")
        assert tasks, f"{key} is active with no open task and no due timer: {shown['tasks']}"
        task = tasks[0]
        assert task["forum"], f"task {task['element_id']} has no forum"
        run("complete", str(task["id"]), "--user", "admin", "--data", json.dumps(fill(task)))
        completed_elements.append(task["element_id"])
    else:
        pytest.fail(f"{key} did not complete; completed so far: {completed_elements}")
    assert set(MAIN_PATH[key]) <= set(completed_elements), completed_elements
    if key in ("faellesindstilling", "partnerskabsaftale"):
        assert shown["data"]["udfald"] == "vedtaget"
    history = [h["type"] for h in shown["history"]]
    assert history[0] == "started" and history[-1] == "completed"
    assert history.count("task_completed") == len(completed_elements)


@pytest.fixture(scope="module")
def cli_run(new_database):
    return make_cli(new_database())


@pytest.mark.parametrize("key", list(STARTS))
def test_process_runs_to_completion_through_the_cli(cli_run, key):
    drive_to_completion(cli_run, key)
