"""Personal API tokens: a user's own credential for scripts, instead of their password.

A token is "af_" + secrets.token_urlsafe(32) (256 random bits). It is shown once, when it is made;
the database keeps only its SHA-256, so checking one is a single lookup on a unique index and a
hash of a few dozen bytes: microseconds, where a password costs argon2 (~0.1 s, 64 MiB). A token
acts with its user's role and forums as they are at each request; it stops working when it expires,
is revoked, or its user is deactivated. Creating and revoking one are audit events (without an
instance).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ..clock import Clock
from ..errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError
from ..models import ApiToken, Forum, Membership, User
from ..uow import UnitOfWork, UnitOfWorkFactory
from ..views import _iso

PREFIX = "af_"
HINT_LENGTH = len(PREFIX) + 4
MAX_NAME = 100
MAX_EXPIRY_DAYS = 3650
MAX_ACTIVE_PER_USER = 50
# last_used_at is written at most this often per token: most requests stay pure reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_MAX_TOKEN_LENGTH = 200

log = logging.getLogger(__name__)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class TokenView:
    id: int
    username: str
    name: str
    hint: str
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    status: str  # active | expired | revoked

    @classmethod
    def of(cls, row: ApiToken, username: str, now: datetime) -> TokenView:
        if row.revoked_at is not None:
            status = "revoked"
        elif row.expires_at is not None and row.expires_at <= now:
            status = "expired"
        else:
            status = "active"
        return cls(row.id, username, row.name, row.hint, row.created_at, row.created_by, row.expires_at,
                   row.last_used_at, row.revoked_at, row.revoked_by, status)

    @property
    def active(self) -> bool:
        return self.status == "active"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "name": self.name, "hint": self.hint,
                "status": self.status, "created_at": _iso(self.created_at), "created_by": self.created_by,
                "expires_at": _iso(self.expires_at), "last_used_at": _iso(self.last_used_at),
                "revoked_at": _iso(self.revoked_at), "revoked_by": self.revoked_by}


@dataclass(frozen=True)
class NewToken:
    """A token just made: `token` is the secret itself, which exists nowhere else afterwards."""

    token: str
    view: TokenView

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, **self.view.to_dict()}


class TokenService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    # -- managing tokens ------------------------------------------------------------------------
    def create(self, username: str, name: str, expires_days: int | None = None,
               by: str | None = None) -> NewToken:
        """Make a token for `username` (an active user). `expires_days` None: it never expires."""
        name = _clean_name(name)
        if expires_days is not None and (isinstance(expires_days, bool) or not isinstance(expires_days, int)
                                         or not 1 <= expires_days <= MAX_EXPIRY_DAYS):
            raise InvalidInputError(f"the expiry must be a whole number of days from 1 to {MAX_EXPIRY_DAYS}")
        now = self._clock.now()
        with self._uow.write() as uow:
            session = uow.session
            user = self._user(session, username)
            if not user.active:
                raise InvalidInputError(f"user '{username}' is deactivated")
            if self._active_count(session, user.id, now) >= MAX_ACTIVE_PER_USER:
                raise ConflictError(f"user '{username}' already has {MAX_ACTIVE_PER_USER} active tokens; "
                                    "revoke one first")
            token = PREFIX + secrets.token_urlsafe(32)
            row = ApiToken(user_id=user.id, name=name, token_hash=token_hash(token), hint=token[:HINT_LENGTH],
                           created_at=now, created_by=by,
                           expires_at=now + timedelta(days=expires_days) if expires_days else None)
            session.add(row)
            session.flush()
            self._audit(uow, "token_created", by, row, username)
            return NewToken(token, TokenView.of(row, username, now))

    def list(self, username: str | None = None) -> list[TokenView]:
        """One user's tokens (every user's when `username` is None), newest first; revoked and
        expired ones too, so their owner sees what happened to them."""
        now = self._clock.now()
        with self._uow.read() as uow:
            session = uow.session
            q = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
            if username is not None:
                q = q.where(User.id == self._user(session, username).id)
            q = q.order_by(User.username, ApiToken.id.desc())
            return [TokenView.of(row, owner, now) for row, owner in session.execute(q)]

    def get(self, token_id: int) -> TokenView:
        with self._uow.read() as uow:
            row, owner = self._token(uow.session, token_id)
            return TokenView.of(row, owner, self._clock.now())

    def revoke(self, token_id: int, by: str | None = None, owner: str | None = None) -> TokenView:
        """Revoke a token at once. With `owner`, only that user's token: another's is 'not found'
        (a user learns nothing about tokens that are not theirs)."""
        now = self._clock.now()
        with self._uow.write() as uow:
            row, username = self._token(uow.session, token_id)
            if owner is not None and owner != username:
                raise NotFoundError(f"no token {token_id}")
            if row.revoked_at is not None:
                raise ConflictError(f"token {token_id} is already revoked")
            row.revoked_at, row.revoked_by = now, by
            self._audit(uow, "token_revoked", by, row, username)
            return TokenView.of(row, username, now)

    # -- authenticating -------------------------------------------------------------------------
    def authenticate(self, token: str) -> dict[str, Any]:
        """The data of the active user a token belongs to (the shape of identity.get_user).

        Raises AuthenticationError for an unknown, expired or revoked token, or a deactivated user.
        One statement on a plain connection: this runs before every API request that brings a token."""
        if not token.startswith(PREFIX) or len(token) > _MAX_TOKEN_LENGTH:
            raise AuthenticationError("not an AlmenFlow API token")
        now = self._clock.now()
        with self._uow.db.engine.connect() as conn:
            rows = conn.execute(_LOOKUP, {"token_hash": token_hash(token)}).all()
        if not rows:
            raise AuthenticationError("unknown token")
        row = rows[0]
        if row.revoked_at is not None:
            raise AuthenticationError("the token has been revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise AuthenticationError("the token has expired")
        if not row.active:
            raise AuthenticationError("the token's user is deactivated")
        if row.last_used_at is None or row.last_used_at <= now - LAST_USED_RESOLUTION:
            self._touch(row.id, now)
        return {"username": row.username, "name": row.display_name, "role": row.role, "active": row.active,
                "forums": [r.forum for r in rows if r.forum is not None]}

    def _touch(self, token_id: int, now: datetime) -> None:
        try:
            with self._uow.write() as uow:
                uow.session.execute(update(ApiToken).where(
                    ApiToken.id == token_id,
                    or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_RESOLUTION),
                ).values(last_used_at=now))
        except OperationalError as exc:  # a busy database must not refuse a valid token
            log.warning("could not record the use of API token %s: %s", token_id, exc)

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _user(session: Session, username: str) -> User:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(f"no user '{username}'")
        return user

    @staticmethod
    def _token(session: Session, token_id: int) -> tuple[ApiToken, str]:
        found = session.execute(select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
                                .where(ApiToken.id == token_id)).first()
        if found is None:
            raise NotFoundError(f"no token {token_id}")
        return found[0], found[1]

    @staticmethod
    def _active_count(session: Session, user_id: int, now: datetime) -> int:
        return session.scalar(select(func.count()).select_from(ApiToken).where(
            ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))) or 0

    @staticmethod
    def _audit(uow: UnitOfWork, type_: str, by: str | None, row: ApiToken, owner: str) -> None:
        uow.audit(None, type_, user=by, details={"token_id": row.id, "owner": owner, "name": row.name,
                                                 "expires_at": _iso(row.expires_at)})


# The token lookup, built once: the token's row by the unique index on its hash, its user, and the
# user's forums (one row per membership).
_LOOKUP = (
    select(ApiToken.id, ApiToken.revoked_at, ApiToken.expires_at, ApiToken.last_used_at, User.username,
           User.name.label("display_name"), User.role, User.active, Forum.name.label("forum"))
    .join(User, User.id == ApiToken.user_id)
    .outerjoin(Membership, Membership.user_id == User.id)
    .outerjoin(Forum, Forum.id == Membership.forum_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
    .order_by(Membership.id)
)


def _clean_name(name: str) -> str:
    if not isinstance(name, str):
        raise InvalidInputError("a token needs a name")
    name = name.strip()
    if not name:
        raise InvalidInputError("a token needs a name")
    if len(name) > MAX_NAME:
        raise InvalidInputError(f"a token's name may be at most {MAX_NAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInputError("a token's name may not contain control characters")
    return name
