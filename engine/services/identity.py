"""Identity: users, forums and memberships; the organisation file loader; password hashing."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ConflictError, InvalidInputError, NotFoundError
from ..models import Forum, HousingOrganisation, Membership, User

ROLES = ("member", "owner", "admin")
FORUM_KINDS = ("internal", "sector", "administration", "committee", "council", "lokaludvalg", "role")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,49}$")
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


class IdentityService:
    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def _session(self, session: Session | None) -> Any:
        from contextlib import nullcontext

        return nullcontext(session) if session is not None else self._engine.db.read()

    # -- users ------------------------------------------------------------------------------
    def add_user(self, username: str, name: str = "", role: str = "member", forums: list[str] | None = None,
                 password: str | None = None) -> dict[str, Any]:
        if not _USERNAME.match(username or ""):
            raise InvalidInputError("username must be 2-50 lowercase letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise InvalidInputError(f"role must be one of {', '.join(ROLES)}")
        if password is not None and len(password) < 8:
            raise InvalidInputError("password must be at least 8 characters")
        with self._engine.db.transaction() as session:
            if session.scalar(select(User).where(User.username == username)):
                raise ConflictError(f"user '{username}' already exists")
            forum_rows = self._forums_by_name(session, forums or [])
            user = User(username=username, name=name or username, role=role,
                        password_hash=hash_password(password) if password else None,
                        created_at=self._engine.clock.now())
            session.add(user)
            session.flush()
            for f in forum_rows:
                session.add(Membership(user_id=user.id, forum_id=f.id))
            return self._user_dict(session, user)

    def update_user(self, username: str, *, role: str | None = None, active: bool | None = None,
                    name: str | None = None, password: str | None = None) -> dict[str, Any]:
        with self._engine.db.transaction() as session:
            user = self._user(session, username)
            if role is not None:
                if role not in ROLES:
                    raise InvalidInputError(f"role must be one of {', '.join(ROLES)}")
                user.role = role
            if active is not None:
                user.active = active
            if name is not None:
                user.name = name
            if password is not None:
                if len(password) < 8:
                    raise InvalidInputError("password must be at least 8 characters")
                user.password_hash = hash_password(password)
            return self._user_dict(session, user)

    def set_membership(self, username: str, forum: str, member: bool) -> None:
        with self._engine.db.transaction() as session:
            user = self._user(session, username)
            f = self._forums_by_name(session, [forum])[0]
            existing = session.scalar(select(Membership).where(Membership.user_id == user.id,
                                                               Membership.forum_id == f.id))
            if member and existing is None:
                session.add(Membership(user_id=user.id, forum_id=f.id))
            elif not member and existing is not None:
                session.delete(existing)

    def verify_password(self, username: str, password: str) -> dict[str, Any] | None:
        with self._engine.db.read() as session:
            user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
            if user is None or not user.password_hash:
                _hasher.hash("timing-equaliser")  # same cost whether or not the user exists
                return None
            try:
                _hasher.verify(user.password_hash, password)
            except (VerificationError, InvalidHashError):
                return None
            return self._user_dict(session, user)

    def get_user(self, username: str) -> dict[str, Any]:
        with self._engine.db.read() as session:
            return self._user_dict(session, self._user(session, username))

    def users(self) -> list[dict[str, Any]]:
        with self._engine.db.read() as session:
            return [self._user_dict(session, u) for u in session.scalars(select(User).order_by(User.username))]

    def exists(self, username: str, session: Session | None = None) -> bool:
        with self._session(session) as s:
            return s.scalar(select(User.id).where(User.username == username, User.active.is_(True))) is not None

    def is_admin(self, username: str | None, session: Session | None = None) -> bool:
        if not username:
            return False
        with self._session(session) as s:
            return s.scalar(select(User.role).where(User.username == username, User.active.is_(True))) == "admin"

    def forums_of(self, username: str, session: Session | None = None) -> list[str]:
        with self._session(session) as s:
            return list(s.scalars(select(Forum.name).join(Membership, Membership.forum_id == Forum.id)
                                  .join(User, User.id == Membership.user_id)
                                  .where(User.username == username, User.active.is_(True))))

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
        with self._engine.db.transaction() as session:
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
        with self._engine.db.read() as session:
            members: dict[int, list[str]] = {}
            for forum_id, username in session.execute(
                    select(Membership.forum_id, User.username).join(User, User.id == Membership.user_id)
                    .where(User.active.is_(True)).order_by(User.username)):
                members.setdefault(forum_id, []).append(username)
            return [self._forum_dict(session, f, members.get(f.id, [])) for f in session.scalars(
                select(Forum).order_by(Forum.level.is_(None), Forum.level, Forum.name))]

    def forum(self, name: str) -> dict[str, Any]:
        with self._engine.db.read() as session:
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
        with self._engine.db.read() as session:
            for f in session.scalars(select(Forum)):
                self._engine.calendar.set_meetings(f.name, [date.fromisoformat(m) for m in f.meetings or []])

    def housing_organisations(self) -> list[dict[str, Any]]:
        with self._engine.db.read() as session:
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
        with self._engine.db.transaction() as session:
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
