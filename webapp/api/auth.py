"""Who is calling the API: a personal API token (Bearer), HTTP Basic with username and password, or
the browser's login session.

- Bearer: the token is checked by engine.tokens (one indexed lookup of its SHA-256, microseconds).
- Basic: the password is checked with the same rate limit as the login form; a successful check is
  remembered for a few minutes (engine.identity.verify_password(cached=True)), so a script pays
  argon2 once, not on every request. No session is created.
  Bearer and Basic requests carry no cookie a browser would send by itself, so they need no CSRF
  token; to be safe even if a browser has cached Basic credentials, an unsafe request that announces
  a foreign Origin is refused.
- Session: state-changing requests must send the CSRF token in the X-CSRFToken header.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app, g, request
from flask_login import current_user

from engine import AuthenticationError

from ..access import engine
from ..auth import User, csrf, limiter
from .problems import ApiProblem

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
REALM = 'Basic realm="AlmenFlow API", charset="UTF-8"'
BEARER_REALM = 'Bearer realm="AlmenFlow API", error="invalid_token"'


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, "unauthorized", detail, headers={"WWW-Authenticate": REALM})


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # scripts send none; browsers send one with every cross-origin POST
        return True
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" == request.host_url.rstrip("/")


def _act_as(data: dict[str, Any], kind: str) -> None:
    """The user for this request only: nothing is written to the session."""
    current_app.login_manager._update_request_context_with_user(User(data))  # type: ignore[attr-defined]
    g.api_auth = kind
    if request.method not in SAFE_METHODS and not _same_origin():
        raise ApiProblem(403, "cross-origin", f"Cross-origin requests with {kind.title()} credentials are refused.")


def authenticate(public: bool = False) -> None:
    """Run before every API view: sets the current user or raises a problem (401/403/429/400)."""
    auth = request.authorization
    if auth is not None and auth.type == "bearer":
        try:
            token_user = engine().tokens.authenticate((auth.token or "").strip())
        except AuthenticationError as exc:
            raise ApiProblem(401, "invalid-token", f"The API token was refused: {exc.message}.", "Invalid token",
                             headers={"WWW-Authenticate": BEARER_REALM}) from None
        _act_as(token_user, "bearer")
        return
    if auth is not None and auth.type == "basic":
        username = (auth.username or "").strip().lower()
        password = auth.password or ""
        ip = request.remote_addr or "?"
        wait = limiter().retry_after(username, ip)
        if wait:
            raise ApiProblem(429, "too-many-attempts", "Too many failed logins; try again later.",
                             headers={"Retry-After": str(wait)})
        data = (engine().identity.verify_password(username, password, cached=True)
                if username and password else None)
        if data is None:
            limiter().failed(username, ip)
            raise _unauthorized("Wrong username or password.")
        limiter().succeeded(username, ip)
        _act_as(data, "basic")
        return
    if auth is not None:
        raise _unauthorized(f"Unsupported authorization scheme '{auth.type}'; use Bearer (an API token), "
                            "Basic or a login session.")
    if public:
        return
    if not current_user.is_authenticated:
        raise _unauthorized("Log in, or send an API token (Authorization: Bearer) or HTTP Basic credentials.")
    if request.method not in SAFE_METHODS:
        csrf.protect()  # CSRFError (400) without a valid X-CSRFToken header


def credential_kind() -> str | None:
    """'bearer' or 'basic' when this request brought its own credentials; None for a login session."""
    return g.get("api_auth")


def role_required(*roles: str) -> None:
    if current_user.role not in roles:
        raise ApiProblem(403, "forbidden", f"This operation needs the role {' or '.join(roles)}.")


def username() -> Any:
    return current_user.username


def locale() -> str:
    """Language of validation messages: Accept-Language if the client sends one, else the session's."""
    if request.accept_languages:
        return request.accept_languages.best_match(["da", "en"], default="da") or "da"
    from flask_babel import get_locale

    return str(get_locale() or "da")
