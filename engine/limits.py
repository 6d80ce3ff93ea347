"""Resource bounds on untrusted models and on the engine itself.

Diagrams and form values are untrusted: every bound here is checked at deploy time where the
value is literal, and at run time (an incident on the instance) where it is computed. Each
bound can be changed with an environment variable ALMENFLOW_LIMIT_<NAME> (e.g.
ALMENFLOW_LIMIT_EVAL_CPU_SECONDS=5); the defaults are safe for a shared server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

ENV_PREFIX = "ALMENFLOW_LIMIT_"


@dataclass(frozen=True)
class Limits:
    # One evaluation of a script or expression (in an evaluator process, see engine/sandbox).
    eval_cpu_seconds: float = 2.0
    eval_wall_seconds: float = 5.0
    eval_memory_mb: int = 256
    evaluator_processes: int = 2
    # One engine step: everything one transaction runs (start, complete, message, timer firing).
    max_engine_steps: int = 10_000
    max_step_seconds: float = 10.0
    max_new_tasks: int = 50_000
    max_multi_instance: int = 5_000
    max_call_depth: int = 20
    # Timers.
    min_timer_cycle_seconds: int = 60
    max_timer_horizon_years: int = 100
    # Data: the JSON size of one variable, and of all of a case's variables together.
    max_variable_bytes: int = 1_048_576
    max_instance_bytes: int = 4_194_304
    max_data_depth: int = 64
    # How long a write waits for a case (or, on SQLite, the database) another writer holds.
    lock_wait_seconds: float = 20.0
    # Signals whose receivers throw signals again are followed this many levels deep (then an incident).
    max_signal_depth: int = 10
    # How long another process's change to a user's role, forums or active flag may take to apply here.
    identity_cache_seconds: float = 5.0
    # Timer-start processes started by one run_due call (the rest wait for the next call).
    max_timer_starts_per_run: int = 100
    # HTTP Basic: a successful password check is remembered this long (process-local, at most this many
    # entries), so a script's requests do not each pay argon2; a password change takes effect at once.
    credential_cache_seconds: float = 300.0
    credential_cache_entries: int = 1000
    # Argon2 checks run at once (each takes 64 MiB and ~0.1 s of CPU): more wait their turn.
    password_hash_concurrency: int = 2

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Limits:
        """Defaults, then ALMENFLOW_LIMIT_* variables, then keyword overrides."""
        environ = dict(os.environ) if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            kind = float if f.type in ("float", float) else int
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()} must be a number, not {raw!r}") from None
            if value <= 0:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()} must be positive")
            values[f.name] = value
        return replace(cls(), **values, **overrides)


DEFAULT_LIMITS = Limits()
