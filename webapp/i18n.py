"""Languages: Danish by default, English selectable with ?lang=en (kept in the session).

The English catalogue (translations/en/LC_MESSAGES/messages.po) is the source; the compiled .mo
is a build output, made here at start-up when it is missing or older than the .po.
Extract new strings with: pybabel extract -F webapp/babel.cfg -o messages.pot webapp
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from flask import Flask, request, session
from flask_babel import Babel

LANGUAGES = {"da": "Dansk", "en": "English"}
DEFAULT_LOCALE = "da"
TRANSLATIONS = Path(__file__).parent / "translations"

log = logging.getLogger(__name__)


def compile_translations(folder: Path = TRANSLATIONS) -> list[Path]:
    """Compile every messages.po below `folder` whose .mo is missing or stale. Returns the .mo written."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written: list[Path] = []
    for po in sorted(folder.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        try:
            with po.open("rb") as fh:
                catalog = read_po(fh, locale=po.parent.parent.name)
            # A private temporary file, then an atomic rename: processes starting at the same time
            # never see (or leave) a half-written catalogue.
            fd, tmp_name = tempfile.mkstemp(prefix=".messages-", suffix=".mo", dir=mo.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    write_mo(fh, catalog)
                os.chmod(tmp_name, 0o644)
                os.replace(tmp_name, mo)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
            written.append(mo)
        except OSError as exc:  # a read-only install: run the compile step at build time instead
            log.warning("cannot compile %s: %s", po, exc)
    return written


def select_locale() -> str:
    lang = session.get("lang")
    return lang if lang in LANGUAGES else DEFAULT_LOCALE


def init_app(app: Flask) -> None:
    compile_translations()
    Babel(app, locale_selector=select_locale)

    @app.before_request
    def remember_language() -> None:
        lang = request.args.get("lang")
        if lang in LANGUAGES:
            session["lang"] = lang
