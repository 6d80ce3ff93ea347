"""Fixtures for the KK process library tests: an engine with organisation.yaml loaded and every
process in processes/ deployed, and a small driver that plays the forums' members."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import Engine

PROCESSES = Path(__file__).resolve().parents[2] / "processes"
ORGANISATION = PROCESSES / "organisation.yaml"


def organisation() -> dict[str, Any]:
    return yaml.safe_load(ORGANISATION.read_text(encoding="utf-8"))


def members_by_forum() -> dict[str, list[str]]:
    doc = organisation()
    out: dict[str, list[str]] = {f["name"]: [] for f in doc["forums"]}
    for u in doc["users"]:
        for f in u.get("forums") or []:
            out[f].append(u["username"])
    return out


@pytest.fixture(scope="session")
def kk_members() -> dict[str, list[str]]:
    return members_by_forum()


@pytest.fixture
def kk(make_engine) -> Engine:
    """An engine on a fresh database (clock frozen at Monday 2027-01-04 09:00 UTC) with the KK
    organisation (without password hashing, which is slow) and the process library deployed."""
    eng = make_engine()
    eng.identity.load_organisation(ORGANISATION, with_passwords=False)
    eng.definitions.deploy([PROCESSES], user="owner")
    return eng


class Case:
    """One process instance, driven through the engine's public services as its users would."""

    def __init__(self, eng: Engine, members: dict[str, list[str]], key: str, data: dict[str, Any] | None = None,
                 business_key: str | None = None, user: str = "anna") -> None:
        self.eng = eng
        self.members = members
        self.id = eng.runtime.start(key, business_key=business_key, data=data or {}, user=user).id

    # -- reading --------------------------------------------------------------------------------
    @property
    def view(self):
        return self.eng.runtime.get(self.id)

    @property
    def status(self) -> str:
        return self.view.status

    @property
    def data(self) -> dict[str, Any]:
        return self.view.data

    def tasks(self, element_id: str | None = None) -> list:
        return [t for t in self.eng.tasks.query(instance_id=self.id)
                if element_id is None or t.element_id == element_id]

    def open(self) -> list[tuple[str, str | None]]:
        """(element id, forum) of every open task, sorted: a compact picture of where the case is."""
        return sorted((t.element_id, t.forum) for t in self.tasks())

    def task(self, element_id: str, forum: str | None = None):
        found = [t for t in self.tasks(element_id) if forum is None or t.forum == forum]
        assert found, f"no open task {element_id!r} for {forum!r}; open: {self.open()}"
        return found[0]

    def history(self, type_: str | None = None) -> list:
        return [e for e in self.view.history if type_ is None or e.type == type_]

    def fired(self) -> list[str]:
        return [e.element_id for e in self.history("timer_fired")]

    # -- acting -----------------------------------------------------------------------------------
    def member_of(self, forum: str) -> str:
        assert self.members.get(forum), f"forum {forum!r} has no members in organisation.yaml"
        return self.members[forum][0]

    def do(self, element_id: str, forum: str | None = None, **data: Any):
        """Claim and complete the open task as a member of its forum; returns the completed TaskView."""
        t = self.task(element_id, forum)
        user = self.member_of(t.forum)
        self.eng.tasks.claim(t.id, user=user)
        done = self.eng.tasks.complete(t.id, user=user, data=data)
        assert self.status != "incident", self.view.incident
        return done

    def wait(self, **delta: float) -> dict[str, int]:
        """Move the engine's clock and let the scheduler fire what is due."""
        self.eng.clock.advance(timedelta(**delta))
        result = self.eng.scheduler.run_due()
        assert self.status != "incident", self.view.incident
        return result

    def wait_until(self, when: datetime) -> dict[str, int]:
        return self.wait(seconds=(when - self.eng.clock.now()).total_seconds())


@pytest.fixture
def case(kk, kk_members):
    """case("henvendelse", data={...}) starts an instance and returns its driver."""
    def start(key: str, data: dict[str, Any] | None = None, **kw: Any) -> Case:
        return Case(kk, kk_members, key, data, **kw)
    return start
