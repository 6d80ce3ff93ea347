"""Workflow state <-> JSON. The spec is stored once per definition and stripped from instance state."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from functools import partial
from threading import Lock
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.task_spec import (
    ConditionalGatewayConverter,
    ParallelGatewayConverter,
)
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.camunda.serializer.event_definition import MessageEventDefinitionConverter

from .bpmn import multi_instance, subprocesses
from .bpmn.scopes import AlmenInclusiveGateway, AlmenSubWorkflow, AlmenSubWorkflowConverter, AlmenWorkflow
from .bpmn.serialization import register_event_converters
from .calls import CallResolver, called_definition_ids
from .dmn import DecisionTableConverter
from .errors import StateNotStorable
from .gateways import LoopSafeParallelGateway
from .parsing import AlmenBusinessRuleTask, AlmenMessageEventDefinition
from .timers import (
    ClockCycleTimerEventDefinition,
    ClockDurationTimerEventDefinition,
    ClockTimeDateEventDefinition,
)


def _config() -> dict:
    config = dict(CAMUNDA_CONFIG)
    config[ClockTimeDateEventDefinition] = TimerConditionalEventDefinitionConverter
    config[ClockDurationTimerEventDefinition] = TimerConditionalEventDefinitionConverter
    config[ClockCycleTimerEventDefinition] = TimerConditionalEventDefinitionConverter
    config[AlmenMessageEventDefinition] = MessageEventDefinitionConverter
    config[AlmenBusinessRuleTask] = DecisionTableConverter
    config[LoopSafeParallelGateway] = ParallelGatewayConverter
    register_event_converters(config)
    config.update(subprocesses.CONVERTERS)
    config.update(multi_instance.CONVERTERS)
    return config


def make_serializer() -> BpmnWorkflowSerializer:
    registry = BpmnWorkflowSerializer.configure(_config())
    # Under SpiffWorkflow's names and registered last, so saved states and specs (old ones too)
    # restore as AlmenFlow's classes; SpiffWorkflow's own classes still serialise.
    workflow_converter = BpmnWorkflowConverter(AlmenWorkflow, registry, typename="BpmnWorkflow")
    AlmenSubWorkflowConverter(AlmenSubWorkflow, registry, typename="BpmnSubWorkflow")
    ConditionalGatewayConverter(AlmenInclusiveGateway, registry, typename="InclusiveGateway")
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
    serializer = BpmnWorkflowSerializer(registry)
    serializer.workflow_converter = workflow_converter
    return serializer


SpecSource = str | Callable[[], str]


class SpecCache:
    """Restored spec objects per definition id, shared by every workflow of that version.

    A definition version is immutable and AlmenFlow's task specs keep no per-instance state (the
    multi-instance classes of engine/bpmn/multi_instance.py do not rewrite their spec as
    SpiffWorkflow's Camunda ones did), so one restored copy serves all instances: a load neither
    parses the spec JSON nor copies it."""

    def __init__(self, restore: Callable[[dict], Any], size: int = 256) -> None:
        self._restore = restore
        self._items: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, kind: str, definition_id: int, build: Callable[[], Any]) -> Any:
        key = (kind, definition_id)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        value = build()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


class WorkflowCache:
    """The workflow a committed step left, per instance and row version: the next step of the case
    in this process continues with it instead of deserialising the state again. A step takes its
    workflow out (so no other thread shares it) and the unit of work puts it back after the commit;
    a failed step simply never puts it back."""

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[int, tuple[int, Any]] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def take(self, instance_id: int, version: int) -> Any:
        with self._lock:
            hit = self._items.pop(instance_id, None)
        return hit[1] if hit is not None and hit[0] == version else None

    def put(self, instance_id: int, version: int, workflow: Any) -> None:
        with self._lock:
            self._items[instance_id] = (version, workflow)
            self._items.move_to_end(instance_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def drop(self, instance_id: int) -> None:
        with self._lock:
            self._items.pop(instance_id, None)


class WorkflowCodec:
    def __init__(self) -> None:
        self.serializer = make_serializer()
        self.specs = SpecCache(self.serializer.from_dict)
        self.workflows = WorkflowCache()

    def spec_json(self, spec: Any, subprocess_specs: dict[str, Any]) -> str:
        return json.dumps({
            "spec": self.serializer.to_dict(spec),
            "subprocess_specs": {name: self.serializer.to_dict(s) for name, s in subprocess_specs.items()},
        })

    def specs_from_json(self, spec_json: str) -> tuple[Any, dict[str, Any]]:
        """Fresh spec objects (for comparing versions); running instances use `spec_objects`."""
        d = json.loads(spec_json)
        return (self.serializer.from_dict(d["spec"]),
                {k: self.serializer.from_dict(v) for k, v in d["subprocess_specs"].items()})

    def spec_objects(self, definition_id: int, spec_json: SpecSource) -> tuple[Any, dict[str, Any]]:
        return self.specs.get("own", definition_id, lambda: self.specs_from_json(_text(spec_json)))

    def new_workflow(self, spec_json: SpecSource, script_engine: Any, resolver: Any = None,
                     definition_id: int | None = None) -> AlmenWorkflow:
        if definition_id is None:
            spec, subprocess_specs = self.specs_from_json(_text(spec_json))
        else:
            spec, subprocess_specs = self.spec_objects(definition_id, spec_json)
        workflow = AlmenWorkflow(spec, dict(subprocess_specs), script_engine=script_engine)
        workflow.call_resolver = resolver
        return workflow

    def called_specs(self, definition_id: int, spec_json: SpecSource) -> dict[str, Any]:
        """A definition's specs named for a call from another process (see engine/calls.py)."""
        return self.specs.get("called", definition_id, lambda: {
            name: self.serializer.from_dict(dct)
            for name, dct in self._called_spec_dicts(definition_id, _text(spec_json)).items()})

    def _called_spec_dicts(self, definition_id: int, spec_json: str) -> dict[str, dict]:
        specs = json.loads(spec_json)
        main = specs["spec"]
        prefix = f"{main['name']}@{definition_id}"
        main["name"] = prefix
        out = {prefix: main}
        for name, sub in specs["subprocess_specs"].items():
            sub["name"] = f"{prefix}/{name}"
            out[sub["name"]] = sub
        return out

    def dump(self, workflow: BpmnWorkflow) -> str:
        """The state as strict JSON (no NaN, no Infinity, nothing the serializer cannot express),
        without the specs: they are stored once per definition."""
        converter = self.serializer.workflow_converter
        try:
            dct = WorkflowConverter.to_dict(converter, workflow)
            dct["subprocesses"] = converter.mapping_to_dict(workflow.subprocesses)
            dct["bpmn_events"] = converter.registry.convert(workflow.bpmn_events)
            dct["typename"] = converter.typename
            return json.dumps(dct, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise StateNotStorable(f"the case's state cannot be stored as JSON: {exc}") from None

    def load(self, state_json: str, definition_id: int, spec_json: SpecSource, script_engine: Any,
             resolver: CallResolver | None = None) -> BpmnWorkflow:
        dct = json.loads(state_json)
        dct.pop("spec", None)  # states saved before the specs were stripped at the source
        dct.pop("subprocess_specs", None)
        spec, subprocess_specs = self.spec_objects(definition_id, spec_json)
        subprocess_specs = dict(subprocess_specs)
        if resolver is not None:
            # The called process versions the instance's sub-workflows run (engine/calls.py).
            for called_id in called_definition_ids(dct):
                subprocess_specs.update(self.called_specs(called_id, partial(resolver.spec_json, called_id)))
        workflow = self._restore(dct, spec, subprocess_specs)
        workflow.script_engine = script_engine
        workflow.call_resolver = resolver
        return workflow

    def _restore(self, dct: dict[str, Any], spec: Any, subprocess_specs: dict[str, Any]) -> AlmenWorkflow:
        """BpmnWorkflowConverter.from_dict, with spec objects that are already restored."""
        converter = self.serializer.workflow_converter
        workflow = AlmenWorkflow(spec, subprocess_specs, deserializing=True)
        workflow.tasks = converter.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        converter.set_default_attributes(workflow, dct)
        converter.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = converter.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _text(spec_json: SpecSource) -> str:
    return spec_json() if callable(spec_json) else spec_json
