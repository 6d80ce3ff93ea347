"""Identity: users, forums and memberships; the organisation file loader; password hashing."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..credential_cache import CredentialCache
from ..errors import ConflictError, InvalidInputError, NotFoundError
from ..models import Forum, HousingOrganisation, Membership, User

if TYPE_CHECKING:
    from ..business_calendar import BusinessCalendar
    from ..clock import Clock
    from ..db import Database
    from ..limits import Limits
    from ..uow import UnitOfWorkFactory

ROLES = ("member", "owner", "admin")
FORUM_KINDS = ("internal", "sector", "administration", "committee", "council", "lokaludvalg", "role")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,49}$")
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@dataclass(frozen=True)
class Principal:
    username: str
    role: str
    forums: tuple[str, ...]


_MISS = object()


class PrincipalCache:
    """username -> Principal (or None: no such active user) for a few seconds; bounded."""

    def __init__(self, seconds: float, size: int = 4096) -> None:
        self._seconds = seconds
        self._size = size
        self._items: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def get(self, username: str) -> Any:
        with self._lock:
            hit = self._items.get(username)
        if hit is None or hit[0] < time.monotonic():
            return _MISS
        return hit[1]

    def put(self, username: str, principal: Principal | None) -> None:
        with self._lock:
            if len(self._items) >= self._size:
                self._items.clear()
            self._items[username] = (time.monotonic() + self._seconds, principal)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class IdentityService:
    def __init__(self, uow: UnitOfWorkFactory,
                 clock: Clock,
                 calendar: BusinessCalendar,
                 db: Database,
                 limits: Limits) -> None:
        self._uow = uow
        self._clock = clock
        self._calendar = calendar
        self._db = db
        self._limits = limits
        self._principals = PrincipalCache(limits.identity_cache_seconds)
        limits = self._limits
        # HTTP Basic's successful checks (verify_password(cached=True)); see engine/credential_cache.py.
        self.credentials = CredentialCache(limits.credential_cache_seconds, limits.credential_cache_entries)
        # Each argon2 call takes 64 MiB: bound how many run at once, so N clients do not cost N x 64 MiB.
        self._hash_slots = threading.BoundedSemaphore(limits.password_hash_concurrency)

    def _hash(self, password: str) -> str:
        with self._hash_slots:
            return hash_password(password)

    def _session(self, session: Session | None) -> Any:
        from contextlib import nullcontext

        return nullcontext(session) if session is not None else self._db.read()

    # -- users ------------------------------------------------------------------------------
    def add_user(self, username: str, name: str = "", role: str = "member", forums: list[str] | None = None,
                 password: str | None = None) -> dict[str, Any]:
        if not _USERNAME.match(username or ""):
            raise InvalidInputError("username must be 2-50 lowercase letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise InvalidInputError(f"role must be one of {', '.join(ROLES)}")
        if password is not None and len(password) < 8:
            raise InvalidInputError("password must be at least 8 characters")
        password_hash = self._hash(password) if password else None  # argon2 before the write lock, not in it
        with self._uow.write() as uow:
            uow.after_commit(self._principals.clear)  # this process sees the change at once
            session = uow.session
            if session.scalar(select(User).where(User.username == username)):
                raise ConflictError(f"user '{username}' already exists")
            forum_rows = self._forums_by_name(session, forums or [])
            user = User(username=username, name=name or username, role=role, password_hash=password_hash,
                        created_at=self._clock.now())
            session.add(user)
            session.flush()
            for f in forum_rows:
                session.add(Membership(user_id=user.id, forum_id=f.id))
            return self._user_dict(session, user)

    def update_user(self, username: str, *, role: str | None = None, active: bool | None = None,
                    name: str | None = None, password: str | None = None) -> dict[str, Any]:
        if password is not None and len(password) < 8:
            raise InvalidInputError("password must be at least 8 characters")
        password_hash = self._hash(password) if password is not None else None  # before the write lock
        with self._uow.write() as uow:
            uow.after_commit(self._principals.clear)  # this process sees the change at once
            session = uow.session
            user = self._user(session, username)
            if role is not None:
                if role not in ROLES:
                    raise InvalidInputError(f"role must be one of {', '.join(ROLES)}")
                user.role = role
            if active is not None:
                user.active = active
            if name is not None:
                user.name = name
            if password_hash is not None:
                user.password_hash = password_hash
            if role is not None or active is not None or password is not None:
                # Other processes: their cached checks miss on the new hash, and expire with the TTL.
                uow.after_commit(lambda: self.credentials.invalidate(username))
            return self._user_dict(session, user)

    def set_membership(self, username: str, forum: str, member: bool) -> None:
        with self._uow.write() as uow:
            uow.after_commit(self._principals.clear)  # this process sees the change at once
            session = uow.session
            user = self._user(session, username)
            f = self._forums_by_name(session, [forum])[0]
            existing = session.scalar(select(Membership).where(Membership.user_id == user.id,
                                                               Membership.forum_id == f.id))
            if member and existing is None:
                session.add(Membership(user_id=user.id, forum_id=f.id))
            elif not member and existing is not None:
                session.delete(existing)

    def verify_password(self, username: str, password: str, *, cached: bool = False) -> dict[str, Any] | None:
        """The active user's data when the password is right, else None.

        cached=True (the API's HTTP Basic): a check that succeeded within the last few minutes for the
        same username, password and stored hash is not repeated (self.credentials), so only the first
        request of a script pays argon2. The user's row is read either way: role, forums and the active
        flag are always current, and a changed password misses the cache at once."""
        with self._uow.read() as uow:
            session = uow.session
            user = self._active_user(session, username)
            stored = user.password_hash if user is not None else None
            if user is not None and stored and cached and self.credentials.matches(username, password, stored):
                return self._user_dict(session, user)
        # argon2 runs outside any database session: a slow check holds no connection.
        with self._hash_slots:
            if not stored:
                _hasher.hash("timing-equaliser")  # same cost whether or not the user exists
                return None
            try:
                _hasher.verify(stored, password)
            except (VerificationError, InvalidHashError):
                return None
        with self._uow.read() as uow:
            session = uow.session
            user = self._active_user(session, username)
            if user is None or user.password_hash != stored:  # changed while we were checking
                return None
            if cached:
                self.credentials.remember(username, password, stored)
            return self._user_dict(session, user)

    @staticmethod
    def _active_user(session: Session, username: str) -> User | None:
        return session.scalar(select(User).where(User.username == username, User.active.is_(True)))

    def get_user(self, username: str) -> dict[str, Any]:
        with self._uow.read() as uow:
            session = uow.session
            return self._user_dict(session, self._user(session, username))

    def users(self) -> list[dict[str, Any]]:
        with self._uow.read() as uow:
            session = uow.session
            return [self._user_dict(session, u) for u in session.scalars(select(User).order_by(User.username))]

    def exists(self, username: str, session: Session | None = None) -> bool:
        return self.principal(username, session) is not None

    def is_admin(self, username: str | None, session: Session | None = None) -> bool:
        principal = self.principal(username, session) if username else None
        return principal is not None and principal.role == "admin"

    def forums_of(self, username: str, session: Session | None = None) -> list[str]:
        principal = self.principal(username, session)
        return list(principal.forums) if principal is not None else []

    def principal(self, username: str, session: Session | None = None) -> Principal | None:
        """An active user's role and forums, from a short-lived process-local cache (every task
        operation asks; Limits.identity_cache_seconds bounds how long another process's change to
        a user takes to apply here; this process's own changes apply at once)."""
        hit = self._principals.get(username)
        if hit is not _MISS:
            return hit
        with self._session(session) as s:
            rows = s.execute(select(User.role, Forum.name).select_from(User)
                             .outerjoin(Membership, Membership.user_id == User.id)
                             .outerjoin(Forum, Forum.id == Membership.forum_id)
                             .where(User.username == username, User.active.is_(True))).all()
        found = Principal(username, rows[0][0], tuple(sorted(f for _, f in rows if f))) if rows else None
        self._principals.put(username, found)
        return found

    def _user(self, session: Session, username: str) -> User:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(f"no user '{username}'")
        return user

    def _user_dict(self, session: Session, user: User) -> dict[str, Any]:
        return {"username": user.username, "name": user.name, "role": user.role, "active": user.active,
                "forums": self.forums_of(user.username, session) if user.active else []}

    # -- forums -----------------------------------------------------------------------------
    def add_forum(self, name: str, level: int | None = None, kind: str = "role", description: str = "",
                  meetings: list[str] | None = None) -> dict[str, Any]:
        if not name or len(name) > 255:
            raise InvalidInputError("a forum needs a name of at most 255 characters")
        if kind not in FORUM_KINDS:
            raise InvalidInputError(f"forum kind must be one of {', '.join(FORUM_KINDS)}")
        with self._uow.write() as uow:
            session = uow.session
            forum = session.scalar(select(Forum).where(Forum.name == name))
            if forum is None:
                forum = Forum(name=name)
                session.add(forum)
            forum.level, forum.kind, forum.description = level, kind, description
            forum.meetings = sorted({date.fromisoformat(str(m)).isoformat() for m in meetings or []})
            session.flush()
        self.refresh_calendar()
        return self.forum(name)

    def forums(self) -> list[dict[str, Any]]:
        """Every forum with its active members: two queries, not one per forum."""
        with self._uow.read() as uow:
            session = uow.session
            members: dict[int, list[str]] = {}
            for forum_id, username in session.execute(
                    select(Membership.forum_id, User.username).join(User, User.id == Membership.user_id)
                    .where(User.active.is_(True)).order_by(User.username)):
                members.setdefault(forum_id, []).append(username)
            return [self._forum_dict(session, f, members.get(f.id, [])) for f in session.scalars(
                select(Forum).order_by(Forum.level.is_(None), Forum.level, Forum.name))]

    def forum(self, name: str) -> dict[str, Any]:
        with self._uow.read() as uow:
            session = uow.session
            f = session.scalar(select(Forum).where(Forum.name == name))
            if f is None:
                raise NotFoundError(f"no forum '{name}'")
            return self._forum_dict(session, f)

    def _forum_dict(self, session: Session, f: Forum, members: list[str] | None = None) -> dict[str, Any]:
        if members is None:
            members = list(session.scalars(select(User.username).join(Membership, Membership.user_id == User.id)
                                           .where(Membership.forum_id == f.id, User.active.is_(True))
                                           .order_by(User.username)))
        return {"name": f.name, "level": f.level, "kind": f.kind, "description": f.description,
                "meetings": list(f.meetings or []), "members": members}

    @staticmethod
    def _forums_by_name(session: Session, names: list[str]) -> list[Forum]:
        rows = list(session.scalars(select(Forum).where(Forum.name.in_(names)))) if names else []
        missing = sorted(set(names) - {f.name for f in rows})
        if missing:
            raise InvalidInputError(f"unknown forum(s): {', '.join(missing)}")
        return rows

    def refresh_calendar(self) -> None:
        with self._uow.read() as uow:
            session = uow.session
            for f in session.scalars(select(Forum)):
                self._calendar.set_meetings(f.name, [date.fromisoformat(m) for m in f.meetings or []])

    def housing_organisations(self) -> list[dict[str, Any]]:
        with self._uow.read() as uow:
            session = uow.session
            return [{"name": h.name, "afdelinger": h.afdelinger, "fictional": h.fictional}
                    for h in session.scalars(select(HousingOrganisation).order_by(HousingOrganisation.name))]

    # -- organisation file ------------------------------------------------------------------
    def load_organisation(self, path: str | Path, with_passwords: bool = True) -> dict[str, int]:
        """Create or update forums, housing organisations and users from a YAML file (idempotent)."""
        try:
            doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInputError(f"{path}: cannot read organisation file: {exc}") from None
        if not isinstance(doc, dict):
            raise InvalidInputError(f"{path}: expected a mapping with forums, users, housing_organisations")
        counts = {"forums": 0, "users": 0, "housing_organisations": 0}
        for f in doc.get("forums") or []:
            self.add_forum(f["name"], f.get("level"), f.get("kind", "role"), f.get("description", ""),
                           f.get("meetings"))
            counts["forums"] += 1
        with self._uow.write() as uow:
            session = uow.session
            for h in doc.get("housing_organisations") or []:
                row = session.scalar(select(HousingOrganisation).where(HousingOrganisation.name == h["name"]))
                if row is None:
                    row = HousingOrganisation(name=h["name"])
                    session.add(row)
                row.afdelinger = int(h.get("afdelinger") or 0)
                row.fictional = bool(h.get("fictional", False))
                counts["housing_organisations"] += 1
        for u in doc.get("users") or []:
            password = u.get("password") if with_passwords else None
            if self.exists(u["username"]):
                self.update_user(u["username"], role=u.get("role", "member"), name=u.get("name"))
            else:
                self.add_user(u["username"], u.get("name", ""), u.get("role", "member"), [], password)
            for forum in u.get("forums") or []:
                self.set_membership(u["username"], forum, True)
            counts["users"] += 1
        return counts
