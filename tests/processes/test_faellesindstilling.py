"""Process A, fællesindstilling: co-signing, orientation and hearings, committees, ØU and BR."""

from __future__ import annotations

from datetime import UTC, datetime

DRAFT = {
    "titel": "Ny organisering af samarbejdet med de almene boligorganisationer",
    "sagsnummer": "2027-0004711",
    "at_punkter": "at Borgerrepræsentationen godkender den nye organisering",
    "problem": "Flere indgange og parallelle dialogorganer.",
    "loesning": "Én samlet struktur på tre niveauer.",
    "oekonomi": "Ingen merudgifter.",
    "udvalg": ["TMU", "SOU"],
    "lokaludvalg": ["Nørrebro", "Lokaludvalg Valby"],
    "medunderskrivere": ["SOF", "SUF"],
    "kraever_oeu": True,
    "to_behandlinger": True,
}


def _draft(c, **changes):
    c.do("udarbejd_indstilling", "TMF", **dict(DRAFT, **changes))


def _cosign(c, *forvaltninger):
    for f in forvaltninger:
        c.do("godkend_medunderskrift", f, medunderskrift_svar="godkendt")


def _orient(c, *udvalg):
    for u in udvalg:
        c.do("orienter_udvalg", u)


def _due(c, element_id):
    return [w.due for w in c.view.waits if w.element_id == element_id]


def test_main_path_with_objection_hearing_deadline_postponement_and_two_readings(case):
    c = case("faellesindstilling", business_key="2027-0004711")
    assert c.open() == [("udarbejd_indstilling", "TMF")]
    assert c.data["hoeringsfrist"] == "P6W" and c.data["udfald"] == "under_behandling"
    _draft(c)
    assert c.open() == [("godkend_medunderskrift", "SOF"), ("godkend_medunderskrift", "SUF")]

    # an objection sends the draft back to the lead administration
    c.do("godkend_medunderskrift", "SOF", medunderskrift_svar="godkendt")
    c.do("godkend_medunderskrift", "SUF", medunderskrift_svar="indsigelse",
         medunderskrift_begrundelse="Økonomiafsnittet mangler")
    assert c.open() == [("udarbejd_indstilling", "TMF")]
    assert [i["forvaltning"] for i in c.data["indsigelser"]] == ["SUF"]
    assert c.data["medunderskrivere"] == ["SOF", "SUF"]          # names restored after the loop
    _draft(c, oekonomi="Udgiften afholdes inden for rammen.")
    _cosign(c, "SOF", "SUF")

    # committees are oriented while the lokaludvalg are heard, in parallel
    assert c.open() == [("afgiv_hoeringssvar", "Lokaludvalg Nørrebro"), ("afgiv_hoeringssvar", "Lokaludvalg Valby"),
                        ("orienter_udvalg", "SOU"), ("orienter_udvalg", "TMU")]
    assert {t.name for t in c.tasks("orienter_udvalg")} == {
        "Tag orientering om sagen til efterretning: TMU", "Tag orientering om sagen til efterretning: SOU"}
    assert all(t.due.startswith("2027-02-15") for t in c.tasks("afgiv_hoeringssvar"))   # P6W
    c.do("afgiv_hoeringssvar", "Lokaludvalg Nørrebro", hoeringssvar="Lokaludvalget bakker op.")
    _orient(c, "TMU", "SOU")

    # a week before the deadline the reminder fires; the hearing stays open
    c.wait(weeks=5, days=1)
    assert "h_paamindelse" in c.fired()
    assert c.open() == [("afgiv_hoeringssvar", "Lokaludvalg Valby")]
    # the deadline passes: "no answer" is recorded and the case moves on
    c.wait(weeks=1)
    assert "h_frist" in c.fired()
    assert c.open() == [("udarbejd_hoeringsnotat", "TMF")]
    hoeringer = {h["lokaludvalg"]: h for h in c.data["hoeringer"]}
    assert hoeringer["Lokaludvalg Nørrebro"]["status"] == "besvaret"
    assert hoeringer["Lokaludvalg Valby"]["status"] == "intet svar"
    c.do("udarbejd_hoeringsnotat", hoeringsnotat="Et lokaludvalg har svaret, et har ikke.")

    # each committee decides at its next meeting; TMU postpones to its following meeting
    assert c.open() == [("behandl_i_udvalg", "SOU"), ("behandl_i_udvalg", "TMU")]
    assert c.task("behandl_i_udvalg", "TMU").due.startswith("2027-03-01")
    assert c.task("behandl_i_udvalg", "SOU").due.startswith("2027-03-10")
    c.do("behandl_i_udvalg", "TMU", udvalg_beslutning="udsat")
    c.do("behandl_i_udvalg", "SOU", udvalg_beslutning="anbefalet")
    assert c.open() == []
    assert _due(c, "vent_udvalgsmoede") == ["2027-03-01T08:00:00+00:00"]
    c.wait_until(datetime(2027, 3, 1, 7, 59, tzinfo=UTC))
    assert c.open() == []
    c.wait(minutes=2)
    assert c.open() == [("behandl_i_udvalg", "TMU")]
    c.do("behandl_i_udvalg", "TMU", udvalg_beslutning="anbefalet_med_aendringer",
         udvalg_bemaerkning="Med tilføjelse om evaluering")
    assert {u["udvalg"]: u["beslutning"] for u in c.data["udvalgsbeslutninger"]} == {
        "TMU": "anbefalet_med_aendringer", "SOU": "anbefalet"}
    assert c.data["udvalg"] == ["TMU", "SOU"]

    # ØU's erklæring, then BR postpones to its next meeting
    assert c.open() == [("afgiv_oeu_erklaering", "ØU")]
    c.do("afgiv_oeu_erklaering", oeu_erklaering="Ingen bemærkninger.")
    assert c.open() == [("br_behandling", "Borgerrepræsentationen")]
    assert c.task("br_behandling").due.startswith("2027-03-11")
    c.do("br_behandling", br_beslutning="udsat")
    assert _due(c, "vent_br_moede") == ["2027-03-11T16:30:00+00:00"]
    c.wait_until(datetime(2027, 3, 11, 16, 31, tzinfo=UTC))
    # first reading adopted: the second reading comes at least 6 days later
    c.do("br_behandling", br_beslutning="vedtaget_ved_afstemning", br_protokol="For 40, imod 15")
    assert c.open() == []
    c.wait(days=5, hours=23)
    assert c.open() == []
    c.wait(hours=2)
    assert "vent_anden_behandling" in c.fired()
    c.do("br_behandling", br_beslutning="vedtaget_uden_afstemning")
    assert c.open() == [("offentliggoer", "TMF")]
    c.do("offentliggoer", offentliggjort_dato="2027-03-22", offentliggoerelse_link="https://www.kk.dk/")

    assert c.status == "completed"
    d = c.data
    assert d["udfald"] == "vedtaget"
    assert [(b["behandling"], b["beslutning"]) for b in d["br_behandlinger"]] == [
        (1, "udsat"), (1, "vedtaget_ved_afstemning"), (2, "vedtaget_uden_afstemning")]
    assert d["lokaludvalg"] == ["Lokaludvalg Nørrebro", "Lokaludvalg Valby"]


def test_returned_by_a_committee_goes_back_to_the_draft_then_not_recommended_ends_the_case(case):
    c = case("faellesindstilling")
    _draft(c, medunderskrivere=[], lokaludvalg=[], udvalg=["TMU", "SUD"])
    _orient(c, "TMU", "SUD")
    c.do("udarbejd_hoeringsnotat", hoeringsnotat="Ingen høring")
    c.do("behandl_i_udvalg", "TMU", udvalg_beslutning="anbefalet")
    c.do("behandl_i_udvalg", "SUD", udvalg_beslutning="returneret", udvalg_bemaerkning="Mere om ældreboliger")
    assert c.open() == [("udarbejd_indstilling", "TMF")]
    assert c.data["udvalg_resultat"] == "returneret"
    assert c.data["udvalg"] == ["TMU", "SUD"]

    _draft(c, medunderskrivere=[], lokaludvalg=[], udvalg=["TMU", "SUD"])
    _orient(c, "TMU", "SUD")
    c.do("udarbejd_hoeringsnotat", hoeringsnotat="Ingen høring")
    c.do("behandl_i_udvalg", "TMU", udvalg_beslutning="anbefalet")
    c.do("behandl_i_udvalg", "SUD", udvalg_beslutning="ikke_anbefalet")
    assert c.status == "completed"
    assert c.data["udfald"] == "ikke_anbefalet"


def test_withdrawn_in_br_ends_without_publication(case):
    c = case("faellesindstilling")
    _draft(c, medunderskrivere=["BIF"], lokaludvalg=[], udvalg=["BIU"], kraever_oeu=False, to_behandlinger=False)
    _cosign(c, "BIF")
    _orient(c, "BIU")
    c.do("udarbejd_hoeringsnotat", hoeringsnotat="-")
    c.do("behandl_i_udvalg", "BIU", udvalg_beslutning="anbefalet")
    assert c.open() == [("br_behandling", "Borgerrepræsentationen")]    # no ØU erklæring needed
    c.do("br_behandling", br_beslutning="trukket_tilbage")
    assert c.status == "completed"
    assert c.data["udfald"] == "trukket_tilbage"
    assert "offentliggoer" not in [e.element_id for e in c.history("task_created")]


def test_rejected_in_br_is_published(case):
    c = case("faellesindstilling")
    _draft(c, medunderskrivere=[], lokaludvalg=[], udvalg=["KFU"], kraever_oeu=False)
    _orient(c, "KFU")                                              # no hearing: only the orientation
    c.do("udarbejd_hoeringsnotat", hoeringsnotat="-")
    c.do("behandl_i_udvalg", "KFU", udvalg_beslutning="anbefalet")
    c.do("br_behandling", br_beslutning="forkastet")               # two readings end at a rejection
    c.do("offentliggoer", offentliggjort_dato="2027-01-15")
    assert c.status == "completed"
    assert c.data["udfald"] == "forkastet"


def test_hearing_waits_in_a_second_round_even_when_the_branches_finish_in_another_order(case):
    # SpiffWorkflow's parallel join, looped, counts a cancelled join task of the previous round as an
    # arrived token; the diagram keeps the split/join in a sub-process so every round starts afresh.
    c = case("faellesindstilling")
    _draft(c, medunderskrivere=[], lokaludvalg=["Valby"], udvalg=["TMU"])
    c.do("afgiv_hoeringssvar", "Lokaludvalg Valby", hoeringssvar="Første svar")     # hearing first
    _orient(c, "TMU")                                                               # orientation last
    c.do("udarbejd_hoeringsnotat", hoeringsnotat="-")
    c.do("behandl_i_udvalg", "TMU", udvalg_beslutning="returneret")
    _draft(c, medunderskrivere=[], lokaludvalg=["Valby"], udvalg=["TMU"])
    _orient(c, "TMU")                                                               # orientation first
    assert c.open() == [("afgiv_hoeringssvar", "Lokaludvalg Valby")]
    c.do("afgiv_hoeringssvar", "Lokaludvalg Valby", hoeringssvar="Andet svar")
    assert c.open() == [("udarbejd_hoeringsnotat", "TMF")]
    assert [h["svar"] for h in c.data["hoeringer"]] == ["Andet svar"]


def test_lead_administration_and_hearing_period_are_parameters(case):
    c = case("faellesindstilling", {"ansvarlig_forvaltning": "SOF", "hoeringsfrist": "P4W"})
    assert c.open() == [("udarbejd_indstilling", "SOF")]
    c.do("udarbejd_indstilling", "SOF", **dict(DRAFT, medunderskrivere=[], lokaludvalg=["Vesterbro"],
                                                   udvalg=["SOU"], hoeringsfrist="P4W"))
    assert c.task("afgiv_hoeringssvar").due.startswith("2027-02-01")
    c.wait(weeks=4, minutes=1)
    assert "h_frist" in c.fired()
    _orient(c, "SOU")
    assert c.open() == [("udarbejd_hoeringsnotat", "SOF")]
    assert c.data["hoeringer"] == [
        {"lokaludvalg": "Lokaludvalg Vesterbro", "svar": "", "status": "intet svar", "dato": "2027-02-01"}]
