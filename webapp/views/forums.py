"""Forums by level of the memo's hierarchy (1-3, internal and with the sector), then the others."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_login import current_user

from ..access import engine, is_admin

bp = Blueprint("forums", __name__)

DECISIONS = 10  # recent decisions shown on a forum's page
FORUM_TASKS = 25  # open tasks shown on a forum's page (the inbox has them all)
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


def labelled_data(decision: dict[str, Any]) -> list[tuple[str, Any]]:
    """A decision's submitted data as (label, value) in form order: field labels from the model and
    enum values as their option names; data without a declared field comes last under its own name."""
    out: list[tuple[str, Any]] = []
    data = dict(decision.get("data") or {})
    for spec in decision.get("fields") or []:
        if spec["id"] not in data:
            continue
        value = data.pop(spec["id"])
        options = {str(o["id"]): o.get("name") or o["id"] for o in spec.get("options") or []}
        out.append((spec.get("label") or spec["id"], options.get(str(value), value) if options else value))
    out.extend(sorted(data.items()))
    return out


@bp.route("/forums/<path:name>")
def detail(name: str) -> Any:
    eng = engine()
    forum = eng.identity.forum(name)
    today = eng.clock.now().date().isoformat()
    meetings = [m for m in forum["meetings"] if m >= today]
    decisions = eng.history.forum_decisions(name, DECISIONS)
    for d in decisions:
        d["items"] = labelled_data(d)
    return render_template("forums/detail.html", forum=forum, meetings=meetings,
                           tasks=eng.tasks.query(forum=name, limit=FORUM_TASKS),
                           task_total=eng.tasks.count(forum=name), decisions=decisions,
                           show_decision_data=is_admin() or name in current_user.forums)
