"""The administrators' dashboard charts (real data, accessible SVG + table) and a forum's recent
decisions; the start page's overdue count."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from webapp import charts

from .conftest import resource, text


def _section(html: str, chart_id: str) -> str:
    return html.split(f'<figure class="chart" id="{chart_id}">', 1)[1].split("</figure>", 1)[0]


def test_dashboard_charts_are_drawn_from_real_data(as_user, web_engine, web_clock):
    first = web_engine.runtime.start("henvendelse", business_key="H-1", user="anna")
    web_engine.runtime.start("henvendelse", business_key="H-2", user="anna")
    web_clock.advance(timedelta(weeks=1))
    web_engine.tasks.complete(first.tasks[0].id, "anna", {"emne": "Udlejning"})
    web_engine.runtime.start("testsag", business_key="K-1", user="anna")
    html = text(as_user("admin").get("/admin"))

    instances = _section(html, "chart-instances")
    assert re.search(r'<svg class="chart__svg"[^>]*role="img"\s+aria-labelledby="chart-instances-title '
                     r'chart-instances-desc"', instances)
    assert '<title id="chart-instances-title">Sager startet og afsluttet pr. uge</title>' in instances
    assert "I alt 3 sager startet og 1 afsluttet" in instances
    # the data table: 12 weeks, the last two with the figures (2027-W01: 2 started; W02: 1 started, 1 done)
    rows = re.findall(r'<tr><th scope="row">(uge \d+)</th><td>(\d+)</td><td>(\d+)</td></tr>', instances)
    assert len(rows) == 12
    assert rows[-2:] == [("uge 1", "2", "0"), ("uge 2", "1", "1")]
    assert instances.count("<rect ") == 3  # only bars above zero: W01 started, W02 started and completed
    assert "<title>uge 2 – Afsluttet: 1</title>" in instances
    assert "Startet</li>" in instances and "Afsluttet</li>" in instances  # text legend

    throughput = _section(html, "chart-throughput")
    assert re.findall(r'<tr><th scope="row">uge 2</th><td>(\d+)</td></tr>', throughput) == ["1"]

    age = _section(html, "chart-age")
    assert "Åbne opgavers alder pr. forum" in age
    sekretariat = re.search(r'<tr><th scope="row">Sekretariat</th>((?:<td>\d+</td>)+)</tr>', age).group(1)
    assert re.findall(r"\d+", sekretariat) == ["2", "0", "0", "0", "2"]  # 0-7 (H-2 is 7 days old), ..., total


def test_dashboard_charts_without_data(as_user):
    html = text(as_user("admin").get("/admin"))
    assert html.count("Ingen data i perioden.") == 3
    assert "<svg" not in html


def test_dashboard_forum_table_counts_each_candidate_forum(as_user, web_engine, web_clock):
    web_engine.runtime.start("testsag", business_key="K-1", user="anna")
    web_clock.advance(timedelta(days=4))
    html = text(as_user("admin").get("/admin"))
    row = html.split('href="/forums/Sekretariat">Sekretariat</a></th>', 1)[1].split("</tr>", 1)[0]
    assert "<td>1</td>" in row and '<strong class="overdue">1</strong>' in row and "4. jan. 2027" in row


def test_english_dashboard(as_user, web_engine):
    web_engine.runtime.start("henvendelse", user="anna")
    html = text(as_user("admin").get("/admin?lang=en"))
    assert "Cases started and completed per week" in html and "week 1" in html
    assert "Show the figures as a table" in html


def test_nice_axis_maximum():
    assert charts.nice_max(0) == (4, 1)
    assert charts.nice_max(3) == (4, 1)
    assert charts.nice_max(7) == (8, 2)
    assert charts.nice_max(37) == (40, 10)
    assert charts.nice_max(1234)[0] >= 1234


def test_grouped_columns_geometry():
    chart = charts.grouped_columns("c", "T", "D", ["a", "b"], [charts.Series("x", [2, 4]), charts.Series("y", [0, 1])])
    tallest = max(chart.bars, key=lambda b: b.height)
    left, top, right, bottom = chart.plot
    assert tallest.y == top and tallest.y + tallest.height == bottom  # 4 is the axis maximum
    assert not [b for b in chart.bars if b.title.startswith("a – y")]  # a zero is not drawn
    assert chart.rows() == [("a", [2, 0], 2), ("b", [4, 1], 5)]


# -- forum decisions -------------------------------------------------------------------------------
@pytest.fixture
def decided(web_engine, web_clock):
    web_engine.definitions.deploy([resource("startsag.bpmn")], user="olga")
    for n, decision in enumerate(("godkendt", "afvist")):
        inst = web_engine.runtime.start("startsag", business_key=f"S-{n}", user="olga",
                                        data={"titel": "x", "kategori": "tryghed"})
        web_clock.advance(timedelta(hours=1))
        web_engine.tasks.complete(inst.tasks[0].id, "carl", {"beslutning": decision, "begrundelse": f"Fordi {n}"})


def test_forum_page_shows_recent_decisions_with_their_data(as_user, decided):
    html = text(as_user("anna").get("/forums/Sekretariat"))
    section = html.split("Seneste beslutninger", 1)[1]
    assert section.index("S-1") < section.index("S-0")  # newest first
    assert "Vurder sagen" in section and "udført af carl" in section
    assert "<dt>Beslutning</dt><dd>Afvist</dd>" in section  # enum value shown as its option name
    assert "<dt>Begrundelse</dt><dd>Fordi 1</dd>" in section


def test_non_members_see_the_decisions_but_not_their_data(as_user, decided):
    html = text(as_user("bo").get("/forums/Sekretariat"))
    section = html.split("Seneste beslutninger", 1)[1]
    assert "Vurder sagen" in section and "Fordi 1" not in section
    assert "Kun forummets medlemmer kan se de indsendte data." in section
    assert "Fordi 1" in text(as_user("admin").get("/forums/Sekretariat"))


def test_forum_without_decisions(as_user):
    assert "Forummet har ikke truffet nogen beslutninger endnu." in text(as_user("anna").get("/forums/Styregruppe"))


def test_forum_page_shows_a_page_of_open_tasks_and_the_total(app, as_user, web_engine, monkeypatch):
    from webapp.views import forums

    monkeypatch.setattr(forums, "FORUM_TASKS", 2)
    for n in range(3):
        web_engine.runtime.start("testsag", business_key=f"K-{n}", user="anna")
    html = text(as_user("anna").get("/forums/Sekretariat"))
    assert "Viser de 2 mest presserende af 3 åbne opgaver." in html
    assert 'href="/tasks?forum=Sekretariat"' in html
    assert 'href="/tasks?forum=Sekretariat"' not in text(as_user("bo").get("/forums/Sekretariat"))


def test_start_page_counts_overdue_tasks(as_user, web_engine, web_clock):
    web_engine.runtime.start("testsag", business_key="K-1", user="anna")
    web_clock.advance(timedelta(days=4))
    html = text(as_user("anna").get("/"))
    assert 'href="/tasks?due=overdue" class="overdue">1 opgave er over frist</a>' in html
