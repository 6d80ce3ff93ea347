"""Called processes: which deployed version a call activity starts, and how it is saved.

A definition's stored spec holds its own process and embedded sub-processes only. When a call
activity starts, `CallResolver.attach` picks the called definition by the activity's
calledElementBinding and adds its specs to the workflow under '<key>@<definition id>' (its
embedded sub-processes under '<key>@<definition id>/<sub-process id>'), so two versions of one
process, or two processes with the same sub-process id, never collide.

The instance state stores each running sub-workflow with the name of its spec, and the engine
strips all specs before saving. On load, `called_definition_ids` reads those names back and the
codec attaches the same definition versions again, so an instance keeps running the version it
started even after newer ones are deployed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .bpmn.subprocesses import CallResolutionError
from .models import Definition


def called_name(key: str, definition_id: int) -> str:
    return f"{key}@{definition_id}"


def definition_id_of(spec_name: str | None) -> int | None:
    """The definition id in '<key>@<id>' or '<key>@<id>/<sub>' (None for the instance's own specs)."""
    if not spec_name or "@" not in spec_name:
        return None
    tail = spec_name.split("/", 1)[0].rsplit("@", 1)[1]
    return int(tail) if tail.isdigit() else None


def called_definition_ids(state: dict[str, Any]) -> set[int]:
    """Definition ids of the called processes a saved instance state has sub-workflows of."""
    ids = set()
    for sub in (state.get("subprocesses") or {}).values():
        found = definition_id_of(sub.get("spec") if isinstance(sub, dict) else None)
        if found is not None:
            ids.add(found)
    return ids


class CallResolver:
    """Finds called definitions in the caller's session (one per loaded or started instance)."""

    def __init__(self, session: Session, codec: Any, definition: Definition | Callable[[], Definition]) -> None:
        self._session = session
        self._codec = codec
        self._definition = definition  # or a function that loads it: most steps never need it

    @property
    def definition(self) -> Definition:
        if callable(self._definition):
            self._definition = self._definition()
        return self._definition

    def spec_json(self, definition_id: int) -> str:
        spec_json = self._session.scalar(select(Definition.spec_json).where(Definition.id == definition_id))
        if spec_json is None:
            raise CallResolutionError(f"the called process definition {definition_id} no longer exists")
        return spec_json

    def attach(self, workflow: Any, caller_spec_name: str, key: str, binding: str, version: int | None) -> str:
        """Resolve the called definition, add its specs to `workflow`, return its spec name."""
        definition = self.find(caller_spec_name, key, binding, version)
        name = called_name(key, definition.id)
        if name not in workflow.subprocess_specs:
            workflow.subprocess_specs.update(self._codec.called_specs(definition.id, definition.spec_json))
        return name

    def find(self, caller_spec_name: str, key: str, binding: str, version: int | None) -> Definition:
        q = select(Definition).where(Definition.key == key)
        if binding == "version":
            q = q.where(Definition.version == version)
            what = f"version {version} of process '{key}'"
        elif binding == "deployment":
            caller_id = definition_id_of(caller_spec_name)
            caller = self._session.get(Definition, caller_id) if caller_id is not None else self.definition
            if caller is None:
                raise CallResolutionError(f"the calling process definition {caller_id} no longer exists")
            q = q.where(Definition.deployment_id <= caller.deployment_id).order_by(Definition.version.desc())
            what = f"process '{key}' deployed with '{caller.key}' version {caller.version}"
        else:
            q = q.order_by(Definition.version.desc())
            what = f"process '{key}'"
        found = self._session.scalar(q.limit(1))
        if found is None:
            raise CallResolutionError(f"the called {what} is not deployed")
        return found
