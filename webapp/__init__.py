"""AlmenFlow's web application: an app factory, one blueprint per area, engine services only.

    app = create_app(engine)          # the CLI's `serve`
    app = create_app()                # Engine.create() from ALMENFLOW_DATABASE_URL, schema upgraded
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from engine import Engine

from .json_provider import StrictJSONProvider

SECRET_KEY_FILE = "secret_key"


def create_app(engine: Engine | None = None, config: dict[str, Any] | None = None) -> Flask:
    config = dict(config or {})
    instance_path = config.pop("ALMENFLOW_INSTANCE_PATH", None) or os.environ.get("ALMENFLOW_INSTANCE_PATH")
    app = Flask(__name__, instance_path=str(Path(instance_path).resolve()) if instance_path else None)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=os.environ.get("ALMENFLOW_SECURE_COOKIES", "") == "1",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=5 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        BABEL_DEFAULT_LOCALE="da",
        BABEL_DEFAULT_TIMEZONE="Europe/Copenhagen",
        ALMENFLOW_SCHEDULER=False,
        # Processes any logged-in user may start ("én indgang"); owners and admins may start any.
        ALMENFLOW_OPEN_PROCESSES=["henvendelse"],
        ALMENFLOW_PAGE_SIZE=25,
        ALMENFLOW_LOGIN_ATTEMPTS=5,
        ALMENFLOW_LOGIN_WINDOW_SECONDS=300,
    )
    app.config.update(config)
    app.config["SECRET_KEY"] = _secret_key(app)
    app.json = StrictJSONProvider(app)

    if engine is None:
        engine = Engine.create()
        engine.init_db()
    app.extensions["almenflow"] = engine

    from . import auth, errors, i18n, templating

    i18n.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    templating.init_app(app)
    _register_blueprints(app)
    _security_headers(app)

    if app.config["ALMENFLOW_SCHEDULER"]:
        from engine.worker import start_background

        app.extensions["almenflow_scheduler"] = start_background(engine)
    return app


def _register_blueprints(app: Flask) -> None:
    from .api import init_app as init_api
    from .views import account, admin, forums, home, instances, processes, start, tasks

    for module in (home, tasks, instances, processes, admin, forums, start, account):
        app.register_blueprint(module.bp)
    init_api(app)


def _secret_key(app: Flask) -> str:
    """ALMENFLOW_SECRET_KEY, a configured key, or one generated once and kept in the instance folder
    (mode 0600) so sessions survive a restart."""
    from_env = os.environ.get("ALMENFLOW_SECRET_KEY")
    if from_env:
        return from_env
    if app.config.get("SECRET_KEY"):
        return str(app.config["SECRET_KEY"])
    folder = Path(app.instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SECRET_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if key:
            return key
        path.unlink()
        return _secret_key(app)
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key


def _security_headers(app: Flask) -> None:
    @app.after_request
    def headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'")
        return response
