"""The demo data set behind `make run`: organisation, the KK processes and a few running cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from engine import Engine, EngineError

DEMO_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("henvendelse", "H-2027-001", {"titel": "Venteliste til ungdomsboliger", "beskrivelse":
                                   "Boligorganisationen ønsker en fælles venteliste for ungdomsboliger.",
                                   "rejst_af": "boligorganisation", "emne": "udlejning"}),
    ("henvendelse", "H-2027-002", {"titel": "Tryghedsvandring i Tingbjerg", "beskrivelse":
                                   "Lokaludvalget foreslår en fælles tryghedsvandring.",
                                   "rejst_af": "lokaludvalg", "emne": "tryghed"}),
    ("faellesindstilling", "FI-2027-004", {"titel": "Boligsocial helhedsplan for Mjølnerparken 2027-2030",
                                           "sagsnummer": "2027-0012345", "udvalg": ["TMU", "SOU"],
                                           "lokaludvalg": ["Lokaludvalg Nørrebro"], "medunderskrivere": ["SOF"]}),
    ("styringsdialog", "SD-2027", {"aar": 2027, "boligorganisationer": ["fsb", "AKB København", "3B"]}),
]


def load_demo(engine: Engine, organisation: Path, processes: Path) -> str:
    """Idempotent: a second run adds nothing that is already there. Returns the logins to print."""
    engine.init_db()
    engine.identity.load_organisation(organisation)
    engine.definitions.deploy([processes], user="system")
    existing = {r["business_key"] for r in engine.runtime.list(limit=1000)[0]}
    doc = yaml.safe_load(organisation.read_text(encoding="utf-8")) or {}
    starter = next((u["username"] for u in doc.get("users", []) if u.get("role") == "member"), None)
    for key, business_key, data in DEMO_CASES:
        if business_key in existing:
            continue
        try:
            engine.runtime.start(key, business_key=business_key, data=data, user=starter)
        except EngineError:
            continue  # a demo case that no longer fits its diagram is skipped, not fatal
    lines = ["Demo logins (username / password):"]
    for u in doc.get("users", []):
        forums = ", ".join(u.get("forums") or []) or "-"
        lines.append(f"  {u['username']:<12} {u.get('password', ''):<16} {u.get('role', 'member'):<7} {forums}")
    return "\n".join(lines)
