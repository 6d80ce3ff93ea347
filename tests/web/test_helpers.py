"""Small web helpers: relative due dates, the login limiter, the form generator, forum grouping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from werkzeug.datastructures import MultiDict

from webapp import formgen
from webapp.ratelimit import LoginRateLimiter
from webapp.timefmt import is_overdue, relative_due
from webapp.views.forums import group_forums

NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # 10:00 in Copenhagen


@pytest.mark.parametrize(("due", "expected"), [
    (None, ""),
    (NOW + timedelta(hours=2), "i dag"),
    (NOW + timedelta(days=1), "i morgen"),
    (NOW + timedelta(days=3), "om 3 dage"),
    (NOW + timedelta(days=2, hours=14), "om 3 dage"),  # 3 calendar days away in Copenhagen time
    (NOW - timedelta(hours=1), "over frist i dag"),
    (NOW - timedelta(days=1), "1 dag over frist"),
    (NOW - timedelta(days=2), "2 dage over frist"),
    (NOW - timedelta(days=30), "30 dage over frist"),
])
def test_relative_due(due, expected):
    assert relative_due(due, NOW) == expected


def test_relative_due_reads_iso_strings_and_counts_local_days():
    assert relative_due((NOW + timedelta(days=3)).isoformat(), NOW) == "om 3 dage"
    # 23:30 UTC on the 4th is 00:30 on the 5th in Copenhagen: tomorrow
    assert relative_due(datetime(2027, 1, 4, 23, 30, tzinfo=UTC), NOW) == "i morgen"
    assert relative_due("not a date", NOW) == ""


def test_is_overdue():
    assert is_overdue((NOW - timedelta(minutes=1)).isoformat(), NOW)
    assert not is_overdue((NOW + timedelta(minutes=1)).isoformat(), NOW)
    assert not is_overdue(None, NOW)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_blocks_after_the_limit_and_forgets_after_the_window():
    t = FakeTime()
    limiter = LoginRateLimiter(attempts=3, window_seconds=60, clock=t)
    for _ in range(3):
        assert limiter.retry_after("anna", "1.2.3.4") == 0
        limiter.failed("Anna", "1.2.3.4")
    assert 0 < limiter.retry_after("anna", "1.2.3.4") <= 61
    assert limiter.retry_after("anna", "5.6.7.8") == 0  # another address
    assert limiter.retry_after("bo", "1.2.3.4") == 0  # another user
    t.now += 61
    assert limiter.retry_after("anna", "1.2.3.4") == 0


def test_limiter_caps_failures_per_address_across_usernames():
    t = FakeTime()
    limiter = LoginRateLimiter(attempts=5, window_seconds=60, per_ip_attempts=10, clock=t)
    for n in range(10):
        limiter.failed(f"user{n}", "1.2.3.4")
    assert limiter.retry_after("someone-new", "1.2.3.4") > 0
    assert limiter.retry_after("someone-new", "9.9.9.9") == 0


def test_limiter_success_clears_the_user_and_memory_stays_bounded():
    t = FakeTime()
    limiter = LoginRateLimiter(attempts=2, window_seconds=60, per_ip_attempts=10_000, clock=t, max_keys=50)
    limiter.failed("anna", "ip")
    limiter.succeeded("anna", "ip")
    limiter.failed("anna", "ip")
    assert limiter.retry_after("anna", "ip") == 0
    for n in range(500):
        limiter.failed(f"u{n}", f"ip{n}")
    assert len(limiter._failures) <= 52


FIELDS = [
    {"id": "titel", "label": "Titel", "type": "string", "validation": {"required": None, "minlength": "3"},
     "properties": {"help": "Kort"}},
    {"id": "tekst", "label": "Tekst", "type": "string", "validation": {}, "properties": {"widget": "textarea"}},
    {"id": "navne", "label": "Navne", "type": "string", "validation": {}, "properties": {"widget": "list"}},
    {"id": "liste", "label": "Liste", "type": "list", "validation": {}, "properties": {}},
    {"id": "antal", "label": "Antal", "type": "long", "validation": {"min": "1", "max": "9"}, "properties": {}},
    {"id": "ok", "label": "OK", "type": "boolean", "validation": {}, "properties": {}},
    {"id": "dato", "label": "Dato", "type": "date", "validation": {}, "properties": {}},
    {"id": "valg", "label": "Valg", "type": "enum", "validation": {}, "properties": {},
     "options": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]},
    {"id": "fast", "label": "Fast", "type": "string", "validation": {"readonly": None}, "properties": {}},
    {"id": "udtryk", "label": "Udtryk", "type": "string", "default": "${x}", "validation": {}, "properties": {}},
]


def test_controls_by_type():
    controls = {c.name: c for c in formgen.build_controls(FIELDS)}
    assert {n: c.widget for n, c in controls.items()} == {
        "titel": "text", "tekst": "textarea", "navne": "lines", "liste": "lines", "antal": "number",
        "ok": "checkbox", "dato": "date", "valg": "select", "fast": "text", "udtryk": "text"}
    assert controls["titel"].required and controls["titel"].help == "Kort"
    assert controls["titel"].attrs == {"minlength": "3"}
    assert controls["antal"].attrs == {"min": "1", "max": "9"}
    assert controls["valg"].options == [("a", "A"), ("b", "B")]
    assert controls["fast"].readonly
    assert controls["udtryk"].value == ""  # an expression default is not shown as a value


def test_controls_take_case_data_then_posted_values():
    data = {"titel": "Sag", "navne": ["Anna", "Bo"], "ok": True, "antal": 3}
    controls = {c.name: c for c in formgen.build_controls(FIELDS, data)}
    assert controls["titel"].value == "Sag" and controls["navne"].value == "Anna\nBo"
    assert controls["ok"].checked and controls["antal"].value == "3"
    posted = MultiDict({"titel": "x", "antal": "99"})
    errors = {"titel": ["Skal være mindst 3 tegn."]}
    controls = {c.name: c for c in formgen.build_controls(FIELDS, data, posted, errors)}
    assert controls["titel"].value == "x" and not controls["ok"].checked
    assert controls["titel"].errors == ["Skal være mindst 3 tegn."]
    assert controls["titel"].described_by == "field-titel-help field-titel-error"


def test_posted_data_takes_declared_editable_fields_only():
    form = MultiDict({"titel": "Sag", "ok": "true", "fast": "hacked", "csrf_token": "t", "other": "x",
                      "navne": "A\nB"})
    assert formgen.posted_data(FIELDS, form) == {"titel": "Sag", "ok": "true", "navne": "A\nB"}
    assert "ok" not in formgen.posted_data(FIELDS, MultiDict({"ok": ""}))


def test_error_summary_lists_errors_in_form_order_and_unknown_fields_too():
    errors = {"zzz": ["Ukendt felt."], "antal": ["Skal være mindst 1."], "titel": ["Feltet skal udfyldes."]}
    controls = formgen.build_controls(FIELDS, errors=errors)
    assert formgen.error_summary(controls, errors) == [
        ("field-titel", "Titel", "Feltet skal udfyldes."), ("field-antal", "Antal", "Skal være mindst 1."),
        ("", "zzz", "Ukendt felt.")]


def test_group_forums():
    forums = [{"name": "A", "level": 1, "kind": "internal"}, {"name": "B", "level": 1, "kind": "sector"},
              {"name": "C", "level": None, "kind": "committee"}, {"name": "D", "level": None, "kind": "other"},
              {"name": "E", "level": 3, "kind": "role"}]
    levels, others = group_forums(forums)
    assert [(lv["level"], [f["name"] for f in lv["internal"]], [f["name"] for f in lv["sector"]]) for lv in levels] == [
        (1, ["A"], ["B"]), (2, [], []), (3, ["E"], [])]
    assert [(k, [f["name"] for f in fs]) for k, fs in others] == [("committee", ["C"]), ("other", ["D"])]


def test_pages_declare_an_icon_that_is_served(web):
    html = web.get("/login").get_data(as_text=True)
    assert 'rel="icon"' in html and "/static/favicon.svg" in html
    response = web.get("/static/favicon.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
