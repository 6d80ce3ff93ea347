"""The hostile-model corpus (tests/fixtures/hostile, listed in its manifest.json): diagrams a careless
or malicious process owner could upload, and data a member could type into them. Each must end as a
refusal at deploy (naming the element where one is to blame) or as an incident on the case, within the
evaluator's limits: the engine's own process never takes the memory or the time."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import pytest

from engine import DeploymentError, Limits
from engine.models import Instance
from engine.parsing import Resource

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
# Generous: a contained model ends in well under this; a model that is not contained runs for minutes.
WALL_SECONDS = 30
ENGINE_GROWTH_MB = 150


def test_the_corpus_is_large_and_every_file_is_listed():
    files = {p.name for p in CORPUS.iterdir() if p.suffix in (".bpmn", ".dmn")}
    listed = {m["file"] for m in MANIFEST} | {f for m in MANIFEST for f in m.get("with", [])}
    assert len(MANIFEST) >= 60
    assert files == listed


@pytest.fixture
def hostile_engine(make_engine):
    from tests.conftest import add_organisation

    eng = make_engine(limits=Limits(eval_cpu_seconds=0.5, eval_memory_mb=128, max_engine_steps=2_000,
                                    max_step_seconds=5))
    add_organisation(eng)
    return eng


@pytest.mark.parametrize("case", MANIFEST, ids=[m["file"] for m in MANIFEST])
def test_hostile_model_is_refused_or_contained(hostile_engine, case):
    engine = hostile_engine
    resources = [Resource(name, (CORPUS / name).read_bytes()) for name in [*case.get("with", []), case["file"]]]
    before_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.monotonic()
    if case["expect"] == "refused":
        with pytest.raises(DeploymentError) as exc:
            engine.definitions.deploy(resources)
        problems = exc.value.problems
        assert problems and all(p.message for p in problems)
        if case["element"]:
            assert case["element"] in [p.element_id for p in problems], [str(p) for p in problems]
        if case.get("says"):
            assert any(case["says"] in p.message for p in problems), [str(p) for p in problems]
        assert engine.definitions.list() == []  # nothing half-deployed
    else:
        deployed = engine.definitions.deploy(resources)["deployed"]
        key = next(d.key for d in deployed if d.resource_name == case["file"])
        inst = engine.runtime.start(key, data=case.get("data") or {})
        assert inst.status == "incident", f"expected an incident, the case is {inst.status}"
        if case["element"]:
            assert inst.incident["element_id"] == case["element"]
        if case.get("says"):
            assert case["says"] in inst.incident["message"]
        with engine.db.read() as session:
            json.loads(session.get(Instance, inst.id).state_json)  # stored state is valid JSON
    assert time.monotonic() - began < WALL_SECONDS
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_rss) / 1024
    assert grown_mb < ENGINE_GROWTH_MB, f"the engine's process grew by {grown_mb:.0f} MB"
