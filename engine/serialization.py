"""Workflow state <-> JSON. The spec is stored once per definition and stripped from instance state."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from threading import Lock
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.task_spec import (
    ConditionalGatewayConverter,
    ParallelGatewayConverter,
)
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.camunda.serializer.event_definition import MessageEventDefinitionConverter

from .bpmn import multi_instance, subprocesses
from .bpmn.scopes import AlmenInclusiveGateway, AlmenSubWorkflow, AlmenSubWorkflowConverter, AlmenWorkflow
from .bpmn.serialization import register_event_converters
from .calls import called_definition_ids
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
    BpmnWorkflowConverter(AlmenWorkflow, registry, typename="BpmnWorkflow")
    AlmenSubWorkflowConverter(AlmenSubWorkflow, registry, typename="BpmnSubWorkflow")
    ConditionalGatewayConverter(AlmenInclusiveGateway, registry, typename="InclusiveGateway")
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
    return BpmnWorkflowSerializer(registry)


class SpecCache:
    """Deserialised spec dicts per definition id; parsing spec JSON is most of the cost of a load."""

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[int, dict] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, definition_id: int, spec_json: str | Callable[[], str]) -> dict:
        """The parsed spec; `spec_json` may be a function that reads it (only called on a miss)."""
        with self._lock:
            hit = self._items.get(definition_id)
            if hit is not None:
                self._items.move_to_end(definition_id)
                return hit
        parsed = json.loads(spec_json() if callable(spec_json) else spec_json)
        with self._lock:
            self._items[definition_id] = parsed
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return parsed


class WorkflowCodec:
    def __init__(self) -> None:
        self.serializer = make_serializer()
        self.specs = SpecCache()

    def spec_json(self, spec: Any, subprocess_specs: dict[str, Any]) -> str:
        return json.dumps({
            "spec": self.serializer.to_dict(spec),
            "subprocess_specs": {name: self.serializer.to_dict(s) for name, s in subprocess_specs.items()},
        })

    def specs_from_json(self, spec_json: str) -> tuple[Any, dict[str, Any]]:
        d = json.loads(spec_json)
        return (self.serializer.from_dict(d["spec"]),
                {k: self.serializer.from_dict(v) for k, v in d["subprocess_specs"].items()})

    def new_workflow(self, spec_json: str, script_engine: Any, resolver: Any = None) -> AlmenWorkflow:
        spec, subprocess_specs = self.specs_from_json(spec_json)
        workflow = AlmenWorkflow(spec, subprocess_specs, script_engine=script_engine)
        workflow.call_resolver = resolver
        return workflow

    def called_specs(self, definition_id: int, spec_json: str) -> dict[str, Any]:
        """A definition's specs named for a call from another process (see engine/calls.py)."""
        return {name: self.serializer.from_dict(dct)
                for name, dct in self._called_spec_dicts(definition_id, spec_json).items()}

    def _called_spec_dicts(self, definition_id: int, spec_json: str | Callable[[], str]) -> dict[str, dict]:
        specs = self.specs.get(definition_id, spec_json)
        main = json.loads(json.dumps(specs["spec"]))
        prefix = f"{main['name']}@{definition_id}"
        main["name"] = prefix
        out = {prefix: main}
        for name, dct in specs["subprocess_specs"].items():
            sub = json.loads(json.dumps(dct))
            sub["name"] = f"{prefix}/{name}"
            out[sub["name"]] = sub
        return out

    def dump(self, workflow: BpmnWorkflow) -> str:
        """The state as strict JSON (no NaN, no Infinity, nothing the serializer cannot express)."""
        try:
            dct = self.serializer.to_dict(workflow)
            dct.pop("spec", None)
            dct.pop("subprocess_specs", None)
            return json.dumps(dct, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise StateNotStorable(f"the case's state cannot be stored as JSON: {exc}") from None

    def load(self, state_json: str, definition_id: int, spec_json: str, script_engine: Any,
             resolver: Any = None) -> BpmnWorkflow:
        dct = json.loads(state_json)
        specs = self.specs.get(definition_id, spec_json)
        # from_dict consumes nested dicts; give it copies of the cached spec parts
        dct["spec"] = json.loads(json.dumps(specs["spec"]))
        dct["subprocess_specs"] = json.loads(json.dumps(specs["subprocess_specs"]))
        if resolver is not None:
            # The called process versions the instance's sub-workflows run (engine/calls.py).
            for called_id in called_definition_ids(dct):
                dct["subprocess_specs"].update(self._called_spec_dicts(
                    called_id, lambda called_id=called_id: resolver.spec_json(called_id)))
        workflow = self.serializer.from_dict(dct)
        workflow.script_engine = script_engine
        workflow.call_resolver = resolver
        return workflow
