"""The process library: definitions and versions, upload and deploy, XML download, starting a case;
the heatmap and version diff on a process page, and the bpmn-js modeler with its JSON endpoints."""

from __future__ import annotations

import secrets
from collections import defaultdict
from pathlib import PurePath
from typing import Any

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from engine import DeploymentError, EngineError, FormValidationError, NotFoundError, Problem
from engine.diagram_diff import element_names
from engine.parsing import BPMN_NS, Resource
from engine.services.definitions import SUFFIXES
from engine.xml_loader import XmlRejected, parse_xml

from ..access import engine, may_start, may_view_instance, owner_required

bp = Blueprint("processes", __name__)
# The modeler's JSON endpoints: nested, so their errors (CSRF, 403, 413...) are answered as JSON problems.
api = Blueprint("modeler", __name__)


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
    uploads = [(f, f.filename) for f in request.files.getlist("files") if f and f.filename]
    if not uploads:
        return [Problem(None, None, _("Vælg en eller flere .bpmn- eller .dmn-filer."))]
    resources: list[Resource] = []
    problems: list[Problem] = []
    for upload, filename in uploads:
        name = PurePath(filename.replace("\\", "/")).name[:255]
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
    """Versions, the heatmap of one version (?version=N, the latest by default) and the diff of two
    (?from=A&to=B, the two newest by default)."""
    library, counts = _library()
    versions = library.get(key)
    if not versions:
        abort(404)
    numbers = [d.version for d in versions]
    shown = _int_arg("version", numbers, numbers[0])
    eng = engine()
    step_counts = eng.runtime.step_counts(key, shown)
    names = step_names(key, shown)
    heat = sorted(((names.get(i) or i, i, n) for i, n in step_counts.items()), key=lambda row: (-row[2], row[0]))
    diff_from = _int_arg("from", numbers, numbers[1] if len(numbers) > 1 else numbers[0])
    diff_to = _int_arg("to", numbers, numbers[0])
    diff = eng.definitions.diff(key, diff_from, diff_to) if len(numbers) > 1 else None
    return render_template("processes/detail.html", key=key, versions=versions, counts=counts,
                           may_start=may_start(key), shown=shown, step_counts=step_counts, heat=heat,
                           diff=diff, diff_from=diff_from, diff_to=diff_to, type_labels=type_labels(),
                           change_labels=change_labels)


def _int_arg(name: str, allowed: list[int], default: int) -> int:
    try:
        value = int(request.args.get(name, ""))
    except ValueError:
        return default
    return value if value in allowed else default


def step_names(key: str, version: int) -> dict[str, str]:
    """{element id: name} of a deployed version, for naming steps in text; {} if it cannot be read."""
    try:
        _name, content = engine().definitions.source(key, version)
        return element_names(content, process_id=key)
    except (EngineError, XmlRejected):
        return {}


@bp.app_template_global("diagram_step_names")
def diagram_step_names(definition: dict[str, Any]) -> dict[str, str]:
    """For the case diagram macro: step names of an instance's definition version."""
    return step_names(definition["key"], definition["version"])


def type_labels() -> dict[str, str]:
    return {
        "process": _("Proces"), "participant": _("Deltager (pulje)"), "lane": _("Svømmebane"),
        "startEvent": _("Starthændelse"), "endEvent": _("Sluthændelse"),
        "intermediateCatchEvent": _("Mellemliggende hændelse"), "intermediateThrowEvent": _("Afsendende hændelse"),
        "boundaryEvent": _("Randhændelse"), "userTask": _("Brugeropgave"), "manualTask": _("Manuel opgave"),
        "scriptTask": _("Scriptopgave"), "serviceTask": _("Serviceopgave"), "sendTask": _("Sendeopgave"),
        "receiveTask": _("Modtageopgave"), "businessRuleTask": _("Forretningsregel (DMN)"), "task": _("Opgave"),
        "callActivity": _("Kald af proces"), "subProcess": _("Delproces"),
        "exclusiveGateway": _("Eksklusiv gateway"), "parallelGateway": _("Parallel gateway"),
        "inclusiveGateway": _("Inklusiv gateway"), "eventBasedGateway": _("Hændelsesbaseret gateway"),
        "sequenceFlow": _("Sekvensflow"), "messageFlow": _("Beskedflow"), "message": _("Besked"),
        "signal": _("Signal"), "error": _("Fejl"), "textAnnotation": _("Tekstnote"),
        "dataObjectReference": _("Dataobjekt"), "dataStoreReference": _("Datalager"),
    }


def change_labels(change: str) -> str:
    """What changed on an element, in words ("name", "form", "attribute:camunda:dueDate" ...)."""
    fixed = {
        "type": _("type"), "name": _("navn"), "lane": _("svømmebane"), "documentation": _("beskrivelse"),
        "condition": _("betingelse"), "event": _("hændelse (tidsfrist, besked ...)"), "script": _("script"),
        "form": _("formularfelter"), "extensions": _("andre Camunda-indstillinger"),
        "loop": _("gentagelse"), "other": _("andet indhold"),
        "attribute:camunda:candidateGroups": _("kandidatgrupper"), "attribute:camunda:candidateUsers":
            _("kandidatbrugere"), "attribute:camunda:assignee": _("tildelt"),
        "attribute:camunda:dueDate": _("frist"), "attribute:camunda:decisionRef": _("DMN-beslutning"),
        "attribute:sourceRef": _("forbindelse"), "attribute:targetRef": _("forbindelse"),
        "attribute:default": _("standardflow"),
    }
    if change in fixed:
        return fixed[change]
    if change.startswith("attribute:"):
        return _("attributten %(name)s", name=change.split(":", 1)[1])
    return change


# -- the modeler -------------------------------------------------------------------------------------

@bp.route("/processes/<key>/edit")
@owner_required
def edit(key: str) -> Any:
    """The modeler on a deployed version (?version=N, the latest by default)."""
    version = request.args.get("version", type=int)
    definition = engine().definitions.get(key, version)
    return render_template("processes/modeler.html", key=key, definition=definition,
                           xml_url=url_for("processes.source", key=key, version=definition.version), xml=None)


@bp.route("/processes/new")
@owner_required
def new() -> Any:
    """The modeler on a new diagram: one lane (a forum), a user task with a Camunda form."""
    xml = render_template("processes/new.bpmn", process_id="proces_" + secrets.token_hex(3))
    return render_template("processes/modeler.html", key=None, definition=None, xml_url=None, xml=xml)


def _resource_name(key: str | None) -> str:
    """The file name a modeler deployment is stored under: that of the latest version, so it replaces it."""
    if key:
        try:
            name = engine().definitions.get(key).resource_name
        except NotFoundError:
            name = ""
        if name.lower().endswith((".bpmn", ".bpmn20.xml")):
            return name
        return f"{PurePath(_ascii(key)).name}.bpmn"
    return "diagram.bpmn"


def _posted_xml() -> bytes:
    """The diagram from a JSON body {"xml": "..."} (or a raw application/xml body)."""
    if request.mimetype in ("application/xml", "text/xml"):
        content = request.get_data()
    else:
        payload = request.get_json(silent=True)
        xml = payload.get("xml") if isinstance(payload, dict) else None
        content = xml.encode("utf-8") if isinstance(xml, str) else b""
    if not content.strip():
        raise _Refused(400, _("Ugyldig forespørgsel"), _("Send diagrammet som JSON: {\"xml\": \"...\"}."))
    return content


def _key_problems(key: str, name: str, content: bytes) -> list[Problem]:
    """The diagram must hold the executable process it is deployed as (its id is the process key)."""
    try:
        root = parse_xml(content)
    except XmlRejected:
        return []  # the engine reports why
    ids = [pid for p in root.iterfind(f"{{{BPMN_NS}}}process")
           if p.get("isExecutable", "true") == "true" and (pid := p.get("id"))]  # no id: the engine says so
    if key in ids or not ids:
        return []
    return [Problem(name, None, _("Diagrammet indeholder ikke processen %(key)s (det indeholder: %(ids)s). "
                                 "Processens id er dens nøgle og kan ikke ændres her.", key=key, ids=", ".join(ids)))]


class _Refused(Exception):
    def __init__(self, status: int, title: str, detail: str, problems: list[Problem] | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.problems = status, title, detail, problems or []


def _problem_response(status: int, title: str, detail: str, problems: list[Problem] | None = None) -> Any:
    body = {"status": status, "title": title, "detail": detail, "problems": [p.to_dict() for p in problems or []]}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


@api.route("/processes/validate", methods=["POST"])
@owner_required
def validate() -> Any:
    """{"xml": "...", "key": "optional"} -> {"valid": bool, "problems": [{file, element_id, message}]}.
    Nothing is stored."""
    content = _posted_xml()
    payload = request.get_json(silent=True)
    key = payload.get("key") if isinstance(payload, dict) and isinstance(payload.get("key"), str) else None
    key = key.strip() or None if key else None
    name = _resource_name(key)
    problems = (_key_problems(key, name, content) if key else []) + \
        engine().definitions.validate([Resource(name, content)])
    return jsonify(valid=not problems, problems=[p.to_dict() for p in problems])


@api.route("/processes/<key>/deploy", methods=["POST"])
@owner_required
def deploy(key: str) -> Any:
    """{"xml": "..."} -> 201 {"version", "message", "url", "deployed", "unchanged"} (200 when nothing
    changed), or 422 {"title", "detail", "problems"} with nothing deployed."""
    content = _posted_xml()
    name = _resource_name(key)
    problems = _key_problems(key, name, content)
    if not problems:
        try:
            result = engine().definitions.deploy([Resource(name, content)], user=current_user.username)
        except DeploymentError as exc:
            problems = exc.problems
    if problems:
        return _problem_response(422, _("Diagrammet blev ikke udrullet"),
                                 _("Ret problemerne, og prøv igen. Intet er udrullet."), problems)
    new = next((d for d in result["deployed"] if d.key == key), None)
    same = next((d for d in result["unchanged"] if d.key == key), None)
    info = new or same
    if info is None:  # cannot happen: the key check above found the process in the file
        return _problem_response(422, _("Diagrammet blev ikke udrullet"), _("Processen blev ikke fundet."))
    if new is not None:
        message = _("Udrullet: %(name)s version %(version)d.", name=info.name or key, version=info.version)
    else:
        message = _("Uændret: %(name)s er allerede udrullet som version %(version)d.", name=info.name or key,
                    version=info.version)
    body = {"key": key, "version": info.version, "changed": new is not None, "message": message,
            "url": url_for("processes.detail", key=key, version=info.version),
            "deployed": [d.to_dict() for d in result["deployed"]],
            "unchanged": [d.to_dict() for d in result["unchanged"]]}
    return jsonify(body), 201 if new is not None else 200


@api.errorhandler(_Refused)
def _refused(exc: _Refused) -> Any:
    return _problem_response(exc.status, exc.title, exc.detail, exc.problems)


@api.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError) -> Any:
    return _problem_response(400, _("Ugyldig forespørgsel"),
                             _("Sikkerhedsnøglen (CSRF) manglede eller var udløbet. Genindlæs siden, og prøv igen."))


@api.errorhandler(HTTPException)
def _http_refused(exc: HTTPException) -> Any:
    from ..errors import _titles

    code = exc.code or 500
    title, text = _titles().get(code, (exc.name, exc.description or ""))
    return _problem_response(code, title, text)


@api.errorhandler(EngineError)
def _engine_refused(exc: EngineError) -> Any:
    problems = exc.problems if isinstance(exc, DeploymentError) else []
    return _problem_response(exc.http_status, _("Ugyldig forespørgsel"), exc.message, problems)


bp.register_blueprint(api)


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
    try:
        # The start form's rules apply here too; a process with required start fields is started there.
        inst = eng.runtime.start_with_form(key, {}, user, business_key=business_key, locale=str(get_locale()))
    except FormValidationError:
        flash(_("Udfyld startformularen for at starte en sag."), "info")
        return redirect(url_for("start.form", key=key))
    first = eng.tasks.next_for(inst.id, user)
    if first is not None:
        flash(_("Sagen er startet. Her er din første opgave."), "success")
        return redirect(url_for("tasks.detail", task_id=first.id))
    flash(_("Sagen er startet."), "success")
    if may_view_instance(inst):
        return redirect(url_for("instances.detail", instance_id=inst.id))
    return redirect(url_for("home.index"))
