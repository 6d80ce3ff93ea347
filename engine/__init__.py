"""AlmenFlow's BPMN engine. No web framework is imported anywhere in this package.

Names are imported lazily (PEP 562): the evaluator processes of engine.sandbox import a few small
modules of this package and must not pay for SpiffWorkflow and SQLAlchemy at every start.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Clock": ".clock", "FrozenClock": ".clock", "SystemClock": ".clock",
    "Engine": ".engine",
    "Limits": ".limits",
    "AuthenticationError": ".errors", "ConflictError": ".errors", "DeploymentError": ".errors", "EngineError": ".errors",
    "FormValidationError": ".errors", "InvalidInputError": ".errors", "InvalidStateError": ".errors",
    "MessageCorrelationError": ".errors", "NotFoundError": ".errors", "OptimisticLockingError": ".errors",
    "PermissionDeniedError": ".errors", "Problem": ".errors", "TaskAlreadyClaimedError": ".errors",
    "TaskAlreadyCompletedError": ".errors",
}

__all__ = [
    "AuthenticationError", "Clock", "ConflictError", "DeploymentError", "Engine", "EngineError", "FormValidationError", "FrozenClock",
    "InvalidInputError", "InvalidStateError", "Limits", "MessageCorrelationError", "NotFoundError",
    "OptimisticLockingError", "PermissionDeniedError", "Problem", "SystemClock", "TaskAlreadyClaimedError",
    "TaskAlreadyCompletedError",
]

if TYPE_CHECKING:
    from .clock import Clock, FrozenClock, SystemClock
    from .engine import Engine
    from .errors import (
        AuthenticationError,
        ConflictError,
        DeploymentError,
        EngineError,
        FormValidationError,
        InvalidInputError,
        InvalidStateError,
        MessageCorrelationError,
        NotFoundError,
        OptimisticLockingError,
        PermissionDeniedError,
        Problem,
        TaskAlreadyClaimedError,
        TaskAlreadyCompletedError,
    )
    from .limits import Limits


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
