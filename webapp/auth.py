"""Log in and out. Users, roles and password checks come from engine.identity; every page but the
login page needs a logged-in user; every POST form carries a CSRF token."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect

from engine import NotFoundError

from .access import engine
from .ratelimit import LoginRateLimiter

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()

# Endpoints a visitor who is not logged in may reach.
PUBLIC_ENDPOINTS = {"auth.login", "static"}
# Blueprints that authenticate by themselves: the JSON API (session or HTTP Basic; 401 as JSON).
SELF_AUTHENTICATING = {"api"}


class User(UserMixin):
    def __init__(self, data: dict[str, Any]) -> None:
        self.username: str = data["username"]
        self.name: str = data.get("name") or self.username
        self.role: str = data.get("role", "member")
        self.forums: list[str] = list(data.get("forums") or [])
        self._active = bool(data.get("active", True))

    @property
    def is_active(self) -> bool:
        return self._active

    def get_id(self) -> str:
        return self.username


@login_manager.user_loader
def load_user(username: str) -> User | None:
    try:
        data = engine().identity.get_user(username)
    except NotFoundError:
        return None
    return User(data) if data.get("active", True) else None


def limiter() -> LoginRateLimiter:
    return current_app.extensions["almenflow_login_limiter"]


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Log ind for at se siden.")
    login_manager.login_message_category = "info"
    app.extensions["almenflow_login_limiter"] = LoginRateLimiter(
        attempts=app.config["ALMENFLOW_LOGIN_ATTEMPTS"], window_seconds=app.config["ALMENFLOW_LOGIN_WINDOW_SECONDS"])
    app.register_blueprint(bp)

    @app.before_request
    def require_login() -> Any:
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        if request.blueprint in SELF_AUTHENTICATING:
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return None


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute URL or a scheme-relative '//host'."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("home.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))
    error = None
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "").strip().lower()
        password = request.form.get("password", "")
        ip = request.remote_addr or "?"
        wait = limiter().retry_after(username, ip)
        if wait:
            error = ngettext("For mange mislykkede loginforsøg. Vent %(num)d minut, og prøv igen.",
                             "For mange mislykkede loginforsøg. Vent %(num)d minutter, og prøv igen.",
                             max(1, (wait + 59) // 60))
            response = current_app.make_response(
                (render_template("login.html", error=error, username=username), 429))
            response.headers["Retry-After"] = str(wait)
            return response
        data = engine().identity.verify_password(username, password) if username and password else None
        if data is None:
            limiter().failed(username, ip)
            error = _("Forkert brugernavn eller adgangskode.")
        else:
            limiter().succeeded(username, ip)
            lang = session.get("lang")
            session.clear()  # a fresh session on login: no fixation
            if lang:
                session["lang"] = lang
            login_user(User(data))
            flash(_("Du er logget ind som %(name)s.", name=data.get("name") or username), "success")
            return redirect(_safe_next(request.form.get("next") or request.args.get("next")))
    return render_template("login.html", error=error, username=username,
                           next=request.form.get("next") or request.args.get("next", ""))


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    lang = session.get("lang")
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("Du er logget ud."), "info")
    return redirect(url_for("auth.login"))
