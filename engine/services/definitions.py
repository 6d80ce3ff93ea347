"""Repository: validate, deploy and version BPMN/DMN resources."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer, load_only

from ..bpmn.subprocesses import called_elements
from ..diagram_diff import DiagramDiff, diff_documents
from ..errors import DeploymentError, InvalidInputError, NotFoundError, Problem
from ..models import Definition, Deployment, Instance
from ..models import Resource as ResourceRow
from ..parsing import LoadedResource, ParsedProcess, Resource, build_processes, load_resource, public_id
from ..views import DefinitionInfo

if TYPE_CHECKING:
    from ..clock import Clock
    from ..limits import Limits
    from ..serialization import WorkflowCodec
    from ..timer_starts import TimerStartSchedule
    from ..uow import UnitOfWorkFactory

SUFFIXES = (".bpmn", ".bpmn20.xml", ".dmn", ".dmn11.xml")
# What a list of definitions shows: never spec_json (tens of KB each).
LIST_COLUMNS = (Definition.id, Definition.key, Definition.version, Definition.name, Definition.deployed_by,
                Definition.deployed_at, Definition.start_timer, Definition.start_message, Definition.start_signal,
                Definition.next_start_at, Definition.start_form, Definition.history_ttl_days)


def collect_resources(paths: Iterable[str | Path]) -> list[Resource]:
    """Files as given, folders expanded to their BPMN/DMN files (sorted, non-recursive into hidden dirs)."""
    resources: list[Resource] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(SUFFIXES)
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                raise DeploymentError([Problem(str(path), None, "folder contains no .bpmn or .dmn files")])
            resources.extend(Resource(p.name, p.read_bytes()) for p in files)
        elif path.is_file():
            resources.append(Resource(path.name, path.read_bytes()))
        else:
            raise DeploymentError([Problem(str(path), None, "no such file or folder")])
    return resources


@dataclass(frozen=True)
class DefinitionHeader:
    id: int
    key: str
    version: int
    name: str


class DefinitionService:
    def __init__(self, uow: UnitOfWorkFactory,
                 clock: Clock,
                 limits: Limits,
                 codec: WorkflowCodec,
                 timer_starts: TimerStartSchedule) -> None:
        self._uow = uow
        self._clock = clock
        self._limits = limits
        self._codec = codec
        self._timer_starts = timer_starts
        self._headers: dict[int, DefinitionHeader] = {}

    # -- validation and deployment -------------------------------------------------------------
    def validate(self, resources: list[Resource]) -> list[Problem]:
        """Every problem deploying these resources would report; nothing is stored."""
        with self._uow.read() as uow:
            session = uow.session
            try:
                self._parse(session, resources)
            except DeploymentError as exc:
                return exc.problems
        return []

    def deploy(self, items: Iterable[str | Path | Resource], user: str | None = None) -> dict[str, list[DefinitionInfo]]:
        """Deploy files/folders/resources. Returns {"deployed": [...], "unchanged": [...]}.

        All or nothing: if any resource is refused, DeploymentError lists every problem and no
        row is written."""
        items = list(items)
        resources = [i for i in items if isinstance(i, Resource)]
        resources += collect_resources([i for i in items if not isinstance(i, Resource)])
        if not resources:
            raise DeploymentError([Problem(None, None, "nothing to deploy")])
        names = [r.name for r in resources]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise DeploymentError([Problem(n, None, "given twice in one deployment") for n in sorted(dupes)])
        now = self._clock.now()
        with self._uow.write() as uow:
            session = uow.session
            loaded, parsed = self._parse(session, resources)
            deployed: list[DefinitionInfo] = []
            unchanged: list[DefinitionInfo] = []
            deployment = Deployment(deployed_by=user, deployed_at=now)
            session.add(deployment)
            rows: dict[str, ResourceRow] = {}
            for lr in loaded:
                if lr.kind == "dmn" and self._latest_resource_hash(session, lr) == lr.resource.sha256:
                    continue
                rows[lr.resource.name] = ResourceRow(deployment=deployment, name=lr.resource.name, kind=lr.kind,
                                                     sha256=lr.resource.sha256, content=lr.resource.content,
                                                     decision_ids=lr.decision_ids)
                session.add(rows[lr.resource.name])
            session.flush()
            for proc in parsed:
                try:
                    spec_json = self._codec.spec_json(proc.spec, proc.subprocess_specs)
                except (TypeError, ValueError) as exc:  # a spec part nothing can store must refuse, not crash
                    raise DeploymentError([Problem(proc.resource.name, proc.key,
                                                   f"the process cannot be stored: {exc}")]) from None
                content_hash = self._content_hash(proc, spec_json)
                latest = self._latest(session, proc.key)
                if latest is not None and latest.content_hash == content_hash:
                    unchanged.append(DefinitionInfo.of(latest))
                    continue
                definition = Definition(
                    key=proc.key, version=(latest.version + 1) if latest else 1, name=proc.name,
                    resource_id=rows[proc.resource.name].id, deployment_id=deployment.id,
                    content_hash=content_hash,
                    spec_json=spec_json,
                    deployed_by=user, deployed_at=now, start_form=proc.start_form,
                    history_ttl_days=proc.history_ttl_days)
                self._apply_start_trigger(session, definition, proc, latest)
                session.add(definition)
                session.flush()
                deployed.append(DefinitionInfo.of(definition))
            self._check_called_versions(session, parsed)
            if not deployed and not any(r.kind == "dmn" for r in rows.values()):
                session.rollback()
                return {"deployed": [], "unchanged": unchanged}
            return {"deployed": deployed, "unchanged": unchanged}

    def _parse(self, session: Session, resources: list[Resource]) -> tuple[list[LoadedResource], list[ParsedProcess]]:
        loaded: list[LoadedResource] = []
        problems: list[Problem] = []
        for res in resources:
            lr, found = load_resource(res)
            problems.extend(found)
            if lr is not None:
                loaded.append(lr)
        if problems:
            raise DeploymentError(problems)
        context = self._context_resources(session, loaded)
        deployed: dict[str, list[int]] = {}
        for key, version in session.execute(select(Definition.key, Definition.version)):
            deployed.setdefault(key, []).append(version)
        return loaded, build_processes(loaded, context, self._limits, self._clock.now(),
                                       deployed=deployed)

    @staticmethod
    def _check_called_versions(session: Session, parsed: list[ParsedProcess]) -> None:
        """calledElementBinding="version" must name a version that exists once this deployment is
        stored (validation before storing can only tell that it might: the next version number)."""
        problems = []
        for proc in parsed:
            for element, key, binding, version in called_elements([proc.spec, *proc.subprocess_specs.values()]):
                if binding == "version" and session.scalar(select(Definition.id).where(
                        Definition.key == key, Definition.version == version)) is None:
                    problems.append(Problem(proc.resource.name, public_id(element),
                                            f"calls version {version} of process '{key}', which is not deployed"))
        if problems:
            raise DeploymentError(problems)

    def _context_resources(self, session: Session, new: list[LoadedResource]) -> list[LoadedResource]:
        """The newest deployed DMN of every decision, to resolve decision references across
        deployments (called processes are resolved when a call activity starts)."""
        new_names = {lr.resource.name for lr in new}
        rows: list[ResourceRow] = []
        dmn_rows = session.scalars(select(ResourceRow).where(ResourceRow.kind == "dmn")
                                   .order_by(ResourceRow.id.desc())).all()
        seen_decisions: set[str] = set()
        for row in dmn_rows:
            if set(row.decision_ids or []) - seen_decisions:
                rows.append(row)
                seen_decisions.update(row.decision_ids or [])
        context: list[LoadedResource] = []
        seen: set[int] = set()
        for row in rows:
            if row.id in seen or row.name in new_names:
                continue
            seen.add(row.id)
            lr, problems = load_resource(Resource(row.name, row.content))
            if lr is not None and not problems:
                context.append(lr)
        return context

    @staticmethod
    def _latest_resource_hash(session: Session, lr: LoadedResource) -> str | None:
        return session.scalar(select(ResourceRow.sha256).where(ResourceRow.name == lr.resource.name)
                              .order_by(ResourceRow.id.desc()).limit(1))

    @staticmethod
    def _content_hash(proc: ParsedProcess, spec_json: str) -> str:
        # A process changes when its file changes or a decision it uses changes: the spec embeds the
        # decision tables, so hashing it covers them. Called processes are resolved at run time.
        h = hashlib.sha256(proc.resource.content)
        h.update(proc.key.encode())
        h.update(spec_json.encode())
        return h.hexdigest()

    def _apply_start_trigger(self, session: Session, definition: Definition, proc: ParsedProcess,
                             previous: Definition | None) -> None:
        if previous is not None:
            previous.next_start_at = None  # only the newest version is started by its timer
        trigger = proc.start_trigger
        if not trigger:
            return
        definition.start_variable = trigger.get("variable")
        if trigger["kind"] == "message":
            definition.start_message = trigger["name"]
        elif trigger["kind"] == "signal":
            definition.start_signal = trigger["name"]
        elif trigger["kind"] == "timer":
            definition.start_timer = trigger["expression"]
            try:
                definition.next_start_at = self._timer_starts.first_start(trigger["expression"])
            except Exception as exc:  # evaluated here, at deploy: a refusal naming the start event
                raise DeploymentError([Problem(proc.resource.name, public_id(trigger.get("element_id")),
                                               f"the timer start event cannot be scheduled: {_describe(exc)}")]) \
                    from None

    # -- queries --------------------------------------------------------------------------------
    @staticmethod
    def _latest(session: Session, key: str) -> Definition | None:
        return session.scalar(select(Definition).where(Definition.key == key)
                              .order_by(Definition.version.desc()).limit(1))

    def list(self, latest_only: bool = False) -> list[DefinitionInfo]:
        """Every definition (or the latest version of each): one query for the listed columns and the
        resource's name, never the spec or the file content."""
        with self._uow.read() as uow:
            session = uow.session
            q = (select(Definition, ResourceRow.name).join(ResourceRow, ResourceRow.id == Definition.resource_id)
                 .options(load_only(*LIST_COLUMNS)).order_by(Definition.key, Definition.version))
            if latest_only:
                q = q.where(Definition.id.in_(select(func.max(Definition.id)).group_by(Definition.key)))
            return [DefinitionInfo.of(d, resource_name=name) for d, name in session.execute(q)]

    def get(self, key: str, version: int | None = None) -> DefinitionInfo:
        with self._uow.read() as uow:
            session = uow.session
            return DefinitionInfo.of(self.find(session, key, version))

    def header(self, session: Session, definition_id: int) -> DefinitionHeader:
        """Key, version and name of a definition: immutable, so cached for the process's lifetime."""
        hit = self._headers.get(definition_id)
        if hit is None:
            row = session.execute(select(Definition.key, Definition.version, Definition.name)
                                  .where(Definition.id == definition_id)).one_or_none()
            if row is None:
                raise NotFoundError(f"no process definition {definition_id}")
            hit = self._headers[definition_id] = DefinitionHeader(definition_id, *row)
        return hit

    def find(self, session: Session, key: str, version: int | None = None) -> Definition:
        """The definition, without its spec JSON (loaded only where no cached spec serves)."""
        q = select(Definition).where(Definition.key == key).options(defer(Definition.spec_json))
        q = q.where(Definition.version == version) if version else q.order_by(Definition.version.desc())
        d = session.scalar(q.limit(1))
        if d is None:
            what = f"'{key}'" + (f" version {version}" if version else "")
            raise NotFoundError(f"no process definition {what}")
        return d

    def source(self, key: str, version: int | None = None) -> tuple[str, bytes]:
        with self._uow.read() as uow:
            session = uow.session
            d = self.find(session, key, version)
            return d.resource.name, d.resource.content

    def diff(self, key: str, old_version: int, new_version: int) -> DiagramDiff:
        """Elements added, removed and changed in process `key` from one deployed version to another."""
        _, old = self.source(key, old_version)
        _, new = self.source(key, new_version)
        try:
            return diff_documents(old, new, process_id=key)
        except ValueError as exc:  # XmlRejected: cannot happen for a deployed file, but never a crash
            raise InvalidInputError(f"cannot compare the versions: {exc}") from None

    def instance_counts(self) -> dict[tuple[str, int], dict[str, int]]:
        """{(key, version): {status: count}} for the process library and dashboard: one GROUP BY over
        the (definition_id, status) index, never the case rows."""
        with self._uow.read() as uow:
            session = uow.session
            rows = session.execute(select(Instance.definition_id, Instance.status, func.count())
                                   .group_by(Instance.definition_id, Instance.status)).all()
            names = dict(((i, (k, v)) for i, k, v in session.execute(
                select(Definition.id, Definition.key, Definition.version))))
        out: dict[tuple[str, int], dict[str, int]] = {}
        for definition_id, status, count in rows:
            out.setdefault(names[definition_id], {})[status] = count
        return out


def _describe(exc: Exception) -> str:
    if hasattr(exc, "describe"):  # a sandboxed evaluation's failure (scripting.ScriptFailed)
        return str(exc.describe())
    text = str(exc.args[0]) if exc.args else str(exc)
    return text if isinstance(exc, ValueError) and text else f"{exc.__class__.__name__}: {text}"
