"""Forums by level of the memo's hierarchy (1-3, internal and with the sector), then the others."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from ..access import engine

bp = Blueprint("forums", __name__)

OTHER_KINDS = ("administration", "committee", "council", "lokaludvalg", "role")


def group_forums(forums: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[tuple[str, list[dict]]]]:
    """Levels 1-3 each with internal and sector forums; then forums without a level grouped by kind."""
    levels = []
    for level in (1, 2, 3):
        at = [f for f in forums if f.get("level") == level]
        levels.append({"level": level,
                       "internal": [f for f in at if f.get("kind") != "sector"],
                       "sector": [f for f in at if f.get("kind") == "sector"]})
    rest = [f for f in forums if f.get("level") not in (1, 2, 3)]
    kinds = list(OTHER_KINDS) + sorted({f.get("kind") or "role" for f in rest} - set(OTHER_KINDS))
    groups = [(kind, [f for f in rest if (f.get("kind") or "role") == kind]) for kind in kinds]
    return levels, [(k, fs) for k, fs in groups if fs]


@bp.route("/forums")
def index() -> Any:
    levels, others = group_forums(engine().identity.forums())
    return render_template("forums/list.html", levels=levels, others=others)


@bp.route("/forums/<path:name>")
def detail(name: str) -> Any:
    eng = engine()
    forum = eng.identity.forum(name)
    today = eng.clock.now().date().isoformat()
    meetings = [m for m in forum["meetings"] if m >= today]
    return render_template("forums/detail.html", forum=forum, meetings=meetings, tasks=eng.tasks.query(forum=name))
