"""Danish by default, English selectable; the English catalogue covers every string; .mo compiled at start."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from webapp.i18n import TRANSLATIONS, compile_translations

from .conftest import text

WEBAPP = Path(__file__).resolve().parents[2] / "webapp"


def test_danish_is_the_default(as_user):
    html = text(as_user("anna").get("/"))
    assert '<html lang="da">' in html
    assert "Opgaver, der venter på dig" in html and "Gå til indhold" in html


def test_english_is_selected_with_lang_and_kept_in_the_session(as_user, case):
    anna = as_user("anna")
    html = text(anna.get("/?lang=en"))
    assert '<html lang="en">' in html
    assert "Tasks waiting for you" in html and "Skip to content" in html and "Log out" in html
    inbox = text(anna.get("/tasks"))  # no parameter: the choice is remembered
    assert '<html lang="en">' in inbox and "in 3 days" in inbox
    assert "Registrer sagen" in inbox  # the model's own texts are not translated
    assert '<html lang="da">' in text(anna.get("/tasks?lang=da"))
    assert '<html lang="da">' in text(anna.get("/tasks?lang=xx"))


def test_language_switch_links_keep_the_page_and_its_filters(as_user):
    html = text(as_user("anna").get("/tasks?process=testsag"))
    assert 'href="/tasks?process=testsag&amp;lang=en"' in html


def test_language_choice_survives_login(web):
    web.get("/login?lang=en")
    assert "Username" in text(web.get("/login"))
    web.login("anna")
    assert "Tasks waiting for you" in text(web.get("/"))


def test_error_pages_are_translated(as_user):
    anna = as_user("anna")
    assert "Adgang nægtet" in text(anna.get("/admin"))
    anna.get("/?lang=en")
    assert "Access denied" in text(anna.get("/admin"))


def test_every_message_has_an_english_translation():
    with open(WEBAPP / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
    extracted = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(WEBAPP), method_map, options_map,
                                                                       keywords=keywords):
        extracted.add(message[0] if isinstance(message, tuple) else message)
    with open(TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po", "rb") as fh:
        catalog = read_po(fh, locale="en")
    translated = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog
                  if m.id and (all(m.string) if isinstance(m.string, tuple) else m.string)}
    assert len(extracted) > 200
    assert sorted(extracted - translated) == []


def test_compile_translations_writes_a_missing_or_stale_mo_only(tmp_path):
    folder = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, folder, ignore=shutil.ignore_patterns("*.mo"))
    mo = folder / "en" / "LC_MESSAGES" / "messages.mo"
    assert compile_translations(folder) == [mo]
    assert mo.stat().st_size > 1000
    assert compile_translations(folder) == []  # fresh: nothing to do
    po = mo.with_suffix(".po")
    os.utime(po, (mo.stat().st_mtime + 10, mo.stat().st_mtime + 10))
    assert compile_translations(folder) == [mo]


def test_the_compiled_catalogue_is_not_tracked():
    ignore = (WEBAPP.parent / ".gitignore").read_text()
    assert "*.mo" in ignore.split()
