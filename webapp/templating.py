"""Template filters and globals: dates, labels for statuses, roles and audit events, language links."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from flask import Flask, request
from flask_babel import format_date, format_number, format_time, get_locale
from flask_babel import gettext as _

from . import timefmt
from .access import engine, is_admin, is_owner
from .i18n import LANGUAGES


def status_labels() -> dict[str, str]:
    return {
        "active": _("Aktiv"), "suspended": _("Sat på pause"), "incident": _("Fejl"),
        "completed": _("Afsluttet"), "terminated": _("Afbrudt"),
    }


def task_status_labels() -> dict[str, str]:
    return {"open": _("Åben"), "completed": _("Udført"), "cancelled": _("Annulleret")}


def role_labels() -> dict[str, str]:
    return {"member": _("Forummedlem"), "owner": _("Procesejer"), "admin": _("Administrator")}


def event_labels() -> dict[str, str]:
    return {
        "started": _("Sagen er startet"), "completed": _("Sagen er afsluttet"),
        "task_created": _("Opgave oprettet"), "task_completed": _("Opgave udført"),
        "task_cancelled": _("Opgave annulleret"), "claimed": _("Opgave taget"),
        "unclaimed": _("Opgave frigivet"), "assigned": _("Opgave tildelt"),
        "comment_added": _("Kommentar tilføjet"), "timer_fired": _("Tidsfrist udløst"),
        "message_received": _("Besked modtaget"), "incident": _("Fejl i sagen"),
        "signal_received": _("Signal modtaget"), "signal_sent": _("Signal sendt"),
        "retried": _("Forsøgt igen"), "suspended": _("Sat på pause"), "resumed": _("Genoptaget"),
        "terminated": _("Afbrudt"), "token_created": _("API-nøgle oprettet"),
        "token_revoked": _("API-nøgle tilbagekaldt"),
    }


def wait_labels() -> dict[str, str]:
    return {"timer": _("Tidsfrist"), "message": _("Besked"), "signal": _("Signal")}


def forum_kind_labels() -> dict[str, str]:
    return {
        "internal": _("Internt i kommunen"), "sector": _("Med sektoren"),
        "administration": _("Forvaltninger"), "committee": _("Udvalg"), "council": _("Politiske organer"),
        "lokaludvalg": _("Lokaludvalg"), "role": _("Roller og grupper"),
    }


def format_dt(value: Any) -> str:
    dt = timefmt.parse(value)
    if dt is None:
        return ""
    return f"{format_date(dt, 'medium')} {format_time(dt, 'short')}"


def format_day(value: Any) -> str:
    dt = timefmt.parse(value)
    return format_date(dt, "medium") if dt else ""


def format_value(value: Any) -> str:
    """A case variable shown read-only."""
    if value is True:
        return _("Ja")
    if value is False:
        return _("Nej")
    if value is None:
        return "–"
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, indent=1)
    return str(value)


def lang_url(code: str) -> str:
    args = request.args.to_dict(flat=True)
    args["lang"] = code
    return f"{request.path}?{urlencode(args)}"


def page_url(page: int, after: str | None = None, before: str | None = None) -> str:
    """This list's URL with its filters, for page number `page` reached through a cursor (the first
    page needs none)."""
    args = request.args.to_dict(flat=True)
    for key in ("page", "after", "before"):
        args.pop(key, None)
    if page > 1:
        args["page"] = str(page)
        if after:
            args["after"] = after
        elif before:
            args["before"] = before
    return f"{request.path}?{urlencode(args)}"


def init_app(app: Flask) -> None:
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    def now() -> Any:
        return engine().clock.now()

    app.jinja_env.filters.update(
        dt=format_dt,
        day=format_day,
        value=format_value,
        relative_due=lambda due: timefmt.relative_due(due, now()),
        overdue=lambda due: timefmt.is_overdue(due, now()),
        status_label=lambda s: status_labels().get(s, s),
        task_status_label=lambda s: task_status_labels().get(s, s),
        role_label=lambda r: role_labels().get(r, r),
        event_label=lambda t: event_labels().get(t, t),
        wait_label=lambda k: wait_labels().get(k, k),
        forum_kind_label=lambda k: forum_kind_labels().get(k, k or ""),
        number=lambda n: format_number(n),  # 10.000 in Danish, 10,000 in English
    )

    app.jinja_env.globals.update(lang_url=lang_url, page_url=page_url)  # globals reach imported macros

    @app.context_processor
    def globals_() -> dict[str, Any]:
        return {
            "languages": LANGUAGES,
            "current_locale": str(get_locale() or "da"),
            "is_admin": is_admin(),
            "is_owner": is_owner(),
        }
