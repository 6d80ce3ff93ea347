"""Models made by other tools (../shared/corpus): each deploys or is refused cleanly, never crashes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import DeploymentError
from engine.models import Definition, Deployment

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
FILES = sorted(p for p in CORPUS.glob("*/*") if p.is_file() and p.name != "README.md")

if not FILES and os.environ.get("CI"):
    raise RuntimeError(f"CI runs with ../shared beside the checkout, but there is no corpus at {CORPUS}")
pytestmark = pytest.mark.skipif(not FILES, reason=f"no corpus at {CORPUS} (../shared is not beside this checkout)")


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_corpus_file_deploys_or_is_refused_cleanly(engine, path):
    try:
        result = engine.definitions.deploy([path])
    except DeploymentError as exc:
        assert exc.problems, "a refusal must list its problems"
        for problem in exc.problems:
            assert problem.file == path.name
            assert problem.message and problem.message.strip()
            assert problem.element_id, f"refusal without the element: {problem}"
            assert str(problem).startswith(f"{path.name}, element '{problem.element_id}': ")
        assert engine.definitions.list() == []
        return
    deployed_keys = {d.key for d in result["deployed"]}
    assert deployed_keys == {d.key for d in engine.definitions.list()}
    if path.suffix == ".dmn":
        assert deployed_keys == set()
    else:
        assert deployed_keys, "a deployed BPMN file yields at least one definition"


def test_whole_corpus_in_one_deployment_is_all_or_nothing(engine):
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy(FILES)
    assert {p.file for p in exc.value.problems} <= {p.name for p in FILES}
    with engine.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Deployment)) == 0
        assert s.scalar(select(func.count()).select_from(Definition)) == 0


def test_deployable_corpus_processes_start(engine):
    """The corpus processes that deploy also start without crashing (tasks, waits or an incident)."""
    started = 0
    for path in FILES:
        try:
            result = engine.definitions.deploy([path])
        except DeploymentError:
            continue
        for info in result["deployed"]:
            if info.start_trigger and info.start_trigger["kind"] == "message":
                ids = engine.runtime.correlate(info.start_trigger["name"], business_key=f"bk-{info.key}")
                inst = engine.runtime.get(ids[0])
            else:
                inst = engine.runtime.start(info.key, business_key=f"bk-{info.key}")
            assert inst.status in ("active", "completed", "incident")
            started += 1
    assert started >= 3


def test_cli_deploys_or_refuses_every_corpus_file(db_url, tmp_path, monkeypatch):
    cli_module = pytest.importorskip("webapp.cli", reason="webapp/cli.py is not there yet")
    from click.testing import CliRunner

    monkeypatch.setenv("ALMENFLOW_DATABASE_URL", db_url)
    runner = CliRunner()
    assert runner.invoke(cli_module.cli, ["init"]).exit_code == 0
    outcomes = {}
    for path in FILES:
        result = runner.invoke(cli_module.cli, ["deploy", str(path), "--json"])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert result.exit_code in (0, 2), f"{path.name}: exit {result.exit_code}: {result.stderr}"
        assert "Traceback" not in result.output + result.stderr
        if result.exit_code == 0:
            assert set(json.loads(result.stdout)) == {"deployed", "unchanged"}
        else:
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert lines[0].startswith("error: deployment refused: ") and path.name in lines[0]
            assert result.stdout == ""
        outcomes[path.name] = result.exit_code
    assert 0 in outcomes.values() and 2 in outcomes.values()
    listed = runner.invoke(cli_module.cli, ["definitions", "--json"])
    assert listed.exit_code == 0
    deployed_files = {d["resource_name"] for d in json.loads(listed.stdout)}
    assert deployed_files == {n for n, code in outcomes.items() if code == 0 and not n.endswith(".dmn")}
