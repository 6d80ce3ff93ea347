"""The process library: definitions and versions, upload and deploy, XML download, and starting a case."""

from __future__ import annotations

from collections import defaultdict
from pathlib import PurePath
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine import DeploymentError, Problem
from engine.parsing import Resource
from engine.services.definitions import SUFFIXES

from ..access import engine, may_start, may_view_instance, owner_required

bp = Blueprint("processes", __name__)


def _library() -> tuple[dict[str, list[Any]], dict[tuple[str, int], dict[str, int]]]:
    eng = engine()
    by_key: dict[str, list[Any]] = defaultdict(list)
    for d in eng.definitions.list():
        by_key[d.key].append(d)
    for versions in by_key.values():
        versions.sort(key=lambda d: d.version, reverse=True)
    return dict(sorted(by_key.items())), eng.definitions.instance_counts()


@bp.route("/processes", methods=["GET", "POST"])
@owner_required
def index() -> Any:
    problems: list[Problem] = []
    status = 200
    if request.method == "POST":
        problems = _deploy_upload()
        if not problems:
            return redirect(url_for("processes.index"))
        status = 422
    library, counts = _library()
    return render_template("processes/list.html", library=library, counts=counts, problems=problems,
                           suffixes=SUFFIXES), status


def _deploy_upload() -> list[Problem]:
    uploads = [f for f in request.files.getlist("files") if f and f.filename]
    if not uploads:
        return [Problem(None, None, _("Vælg en eller flere .bpmn- eller .dmn-filer."))]
    resources: list[Resource] = []
    problems: list[Problem] = []
    for upload in uploads:
        name = PurePath(upload.filename.replace("\\", "/")).name[:255]
        if not name.lower().endswith(SUFFIXES):
            problems.append(Problem(name, None, _("Kun .bpmn- og .dmn-filer kan udrulles.")))
            continue
        resources.append(Resource(name, upload.read()))
    if problems:
        return problems
    try:
        result = engine().definitions.deploy(resources, user=current_user.username)
    except DeploymentError as exc:
        return exc.problems
    for d in result["deployed"]:
        flash(_("Udrullet: %(name)s version %(version)d.", name=d.name or d.key, version=d.version), "success")
    for d in result["unchanged"]:
        flash(_("Uændret: %(name)s er allerede udrullet som version %(version)d.", name=d.name or d.key,
                version=d.version), "info")
    if not result["deployed"] and not result["unchanged"]:
        flash(_("Filerne er gemt."), "info")
    return []


@bp.route("/processes/<key>")
@owner_required
def detail(key: str) -> Any:
    library, counts = _library()
    versions = library.get(key)
    if not versions:
        abort(404)
    return render_template("processes/detail.html", key=key, versions=versions, counts=counts,
                           may_start=may_start(key))


@bp.route("/processes/<key>/versions/<int:version>/xml")
def source(key: str, version: int) -> Any:
    """The deployed XML of one version (any logged-in user: the diagram viewer on case pages needs it).
    Always an attachment, never rendered inline by the browser."""
    name, content = engine().definitions.source(key, version)
    stem = PurePath(name).name.rsplit(".", 1)[0] or key
    ext = "dmn" if name.lower().endswith((".dmn", ".dmn11.xml")) else "bpmn"
    response = Response(content, mimetype="application/xml")
    response.headers["Content-Disposition"] = f'attachment; filename="{_ascii(stem)}-v{version}.{ext}"'
    return response


def _ascii(text: str) -> str:
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in text) or "process"


@bp.route("/processes/<key>/start", methods=["POST"])
def start(key: str) -> Any:
    if not may_start(key):
        abort(403)
    eng = engine()
    user = current_user.username
    business_key = request.form.get("business_key", "").strip()[:255] or None
    inst = eng.runtime.start(key, business_key=business_key, user=user)
    first = eng.tasks.next_for(inst.id, user)
    if first is not None:
        flash(_("Sagen er startet. Her er din første opgave."), "success")
        return redirect(url_for("tasks.detail", task_id=first.id))
    flash(_("Sagen er startet."), "success")
    if may_view_instance(inst):
        return redirect(url_for("instances.detail", instance_id=inst.id))
    return redirect(url_for("home.index"))
