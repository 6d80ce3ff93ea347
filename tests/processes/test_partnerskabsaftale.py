"""Process C, partnerskabsaftale: evaluation, negotiation, approvals, process A for BR, agreements."""

from __future__ import annotations

START = {"periode_start": "2028-01-01", "periode_aar": 4, "boligorganisationer": ["fsb", "AAB"]}


def _negotiate(c, udkast="Udkast"):
    c.do("forhandl_udkast", aftaleudkast=udkast, succeskriterier=["Tryghed; 70 %; 80 %; TMF"])


def _through_br(c, br_beslutning="vedtaget_uden_afstemning"):
    """Process A, called with the agreement as a fællesindstilling, run to BR's decision."""
    draft = c.task("udarbejd_indstilling")
    assert draft.forum == "TMF"
    d = c.data
    assert d["titel"].startswith("Partnerskabsaftale 2028-2031")
    assert d["udvalg"] == ["TMU", "SOU", "SUD"] and d["medunderskrivere"] == ["SOF", "SUF"]
    c.do("udarbejd_indstilling", titel=d["titel"], sagsnummer=d["sagsnummer"], at_punkter=d["at_punkter"],
         udvalg=d["udvalg"], medunderskrivere=d["medunderskrivere"], kraever_oeu=True)
    for f in ("SOF", "SUF"):
        c.do("godkend_medunderskrift", f, medunderskrift_svar="godkendt")
    for u in ("TMU", "SOU", "SUD"):
        c.do("orienter_udvalg", u)
    c.do("udarbejd_hoeringsnotat", hoeringsnotat="Ingen lokaludvalg høres om hovedaftalen.")
    for u in ("TMU", "SOU", "SUD"):
        c.do("behandl_i_udvalg", u, udvalg_beslutning="anbefalet")
    c.do("afgiv_oeu_erklaering", oeu_erklaering="Ingen bemærkninger.")
    c.do("br_behandling", br_beslutning=br_beslutning)
    if br_beslutning != "trukket_tilbage":
        c.do("offentliggoer", offentliggjort_dato="2027-05-01")


def test_full_cycle_with_a_rejection_and_yearly_status_reports(case):
    c = case("partnerskabsaftale", START, business_key="PA-2028")
    assert c.data["periode"] == "2028-2031" and c.data["periode_slut"] == "2031-12-31"
    t = c.task("evaluer_succeskriterier")
    assert t.forum == "TMF" and t.candidate_groups == ["TMF", "Samarbejdsforum"]
    c.do("evaluer_succeskriterier", evaluering="Tryghedsmålet er nået, ventelisten ikke.")
    assert c.open() == [("forhandl_udkast", "Samarbejdsforum")]
    _negotiate(c, "Udkast 1")
    assert c.open() == [("bl_godkendelse", "BL 1. kreds"), ("pf_godkendelse", "Partnerskabsforum")]

    # BL's 1. kreds rejects: back to Samarbejdsforum, the rejection is recorded
    c.do("bl_godkendelse", bl_beslutning="afvist", bl_bemaerkninger="For lidt om udlejning")
    c.do("pf_godkendelse", pf_beslutning="godkendt")
    assert c.open() == [("forhandl_udkast", "Samarbejdsforum")]
    assert c.data["afvisninger"] == [{"runde": 1, "dato": "2027-01-04", "bl_1_kreds": "afvist",
                                      "partnerskabsforum": "godkendt"}]
    assert "bl_beslutning" not in c.data and "pf_beslutning" not in c.data
    # second round, answered in the other order: both approve
    _negotiate(c, "Udkast 2")
    c.do("pf_godkendelse", pf_beslutning="godkendt")
    assert c.open() == [("bl_godkendelse", "BL 1. kreds")]
    c.do("bl_godkendelse", bl_beslutning="godkendt")

    # the draft goes through process A inside this case, and BR adopts it
    _through_br(c)
    assert c.data["udfald"] == "vedtaget"
    assert c.open() == [("indgaa_delaftaler", "Samarbejdsforum")]
    c.do("indgaa_delaftaler", delaftaler=["Udlejning", "Boligsocial indsats"])
    tasks = c.tasks("indgaa_enkeltaftale")
    assert len(tasks) == 2 and all(t.candidate_groups == ["TMF", "SOF"] for t in tasks)
    c.do("indgaa_enkeltaftale", enkeltaftale_indgaaet=True, enkeltaftale_indhold="Aftale om anvisning")
    c.do("indgaa_enkeltaftale", enkeltaftale_indgaaet=False, enkeltaftale_indhold="Udskudt til 2029")
    assert [(e["boligorganisation"], e["indgaaet"]) for e in c.data["enkeltaftaler"]] == [
        ("fsb", True), ("AAB", False)]

    # a status report every year until the last one of the period
    t = c.task("statusrapport")
    assert t.forum == "TMF" and t.due.startswith("2027-05-20")      # before the Partnerskabsforum meeting
    c.do("statusrapport", statusrapport_tekst="År 1", status_aar=2028)
    assert c.open() == []
    c.wait(days=364)
    assert c.open() == []
    c.wait(days=2)
    assert "vent_aar" in c.fired()
    c.do("statusrapport", statusrapport_tekst="År 2", status_aar=2029, sidste_rapport=True)
    assert c.status == "completed"


def test_rejected_by_br_goes_back_to_negotiation_and_a_withdrawal_ends_the_cycle(case):
    c = case("partnerskabsaftale", START)
    c.do("evaluer_succeskriterier", evaluering="-")
    _negotiate(c)
    c.do("bl_godkendelse", bl_beslutning="godkendt")
    c.do("pf_godkendelse", pf_beslutning="godkendt")
    _through_br(c, "forkastet")
    assert c.open() == [("forhandl_udkast", "Samarbejdsforum")]
    assert c.data["afvisninger"][-1]["borgerrepraesentationen"] == "forkastet"
    assert "udfald" not in c.data

    # a new round needs both approvals again (the previous ones were cleared)
    _negotiate(c, "Udkast 2")
    c.do("bl_godkendelse", bl_beslutning="godkendt")
    assert c.open() == [("pf_godkendelse", "Partnerskabsforum")]
    c.do("pf_godkendelse", pf_beslutning="godkendt")
    _through_br(c, "trukket_tilbage")
    assert c.status == "completed"
    assert c.data["udfald"] == "trukket_tilbage"
    assert "end_opgivet" in c.view.completed_elements


def test_defaults_for_the_period_and_the_organisations(case):
    c = case("partnerskabsaftale")
    d = c.data
    assert d["periode_aar"] == 4 and d["periode"] == "2028-2031"
    assert len(d["enkeltaftaler"]) == 9 and d["enkeltaftaler"][0] == {"boligorganisation": "fsb"}
