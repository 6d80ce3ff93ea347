"""Process B, the yearly styringsdialog: one sub-process per housing organisation."""

from __future__ import annotations

from datetime import UTC, datetime

ALL = ["fsb", "AKB København", "SAB", "3B", "AAB", "DFB", "Sporvejsfunktionærernes Boligforening", "Lejerbo", "VIBO"]
DOCS = {"styringsrapport_modtaget": True, "regnskab_modtaget": True, "aarsberetning_modtaget": True,
        "revisionsprotokol_modtaget": True}


def test_the_yearly_timer_starts_a_round_for_every_housing_organisation(kk):
    info = {d.key: d for d in kk.definitions.list(latest_only=True)}["styringsdialog"]
    assert info.start_trigger["kind"] == "timer"
    assert info.start_trigger["next"] == "2027-01-15T08:00:00+00:00"
    kk.clock.set(datetime(2027, 1, 15, 8, 1, tzinfo=UTC))
    assert kk.scheduler.run_due()["started"] == 1
    insts, total = kk.runtime.list(key="styringsdialog")
    assert total == 1
    view = kk.runtime.get(insts[0]["id"])
    assert view.data["aar"] == 2027 and view.data["regnskabsaar"] == 2026
    assert view.data["frist_dokumentation"] == "2027-03-12"           # 40 working days later
    assert len(view.tasks) == len(ALL)
    assert {t.forum for t in view.tasks} == {"Boligorganisation"}
    # the next round is planned for next year
    info = {d.key: d for d in kk.definitions.list(latest_only=True)}["styringsdialog"]
    assert info.start_trigger["next"] == "2028-01-15T08:00:00+00:00"


def test_a_round_with_a_red_organisation_and_one_that_misses_its_deadline_twice(case):
    c = case("styringsdialog", {"boligorganisationer": ["fsb", "3B"], "frist_dokumentation": "2027-03-01",
                                "sidste_aars_maal": {"fsb": ["Tomgang under 1 %"]}})
    assert c.open() == [("indsend_dokumentation", "Boligorganisation")] * 2
    assert all(t.due.startswith("2027-03-01") for t in c.tasks())
    # One task per organisation, created in list order. (The task does not name its organisation:
    # the engine labels tasks of multi-instance user tasks only, not tasks inside an MI sub-process.)
    first, second = c.tasks("indsend_dokumentation")
    c.eng.tasks.complete(first.id, user=c.member_of("Boligorganisation"), data=DOCS)   # fsb submits

    # 14 days before the deadline the other organisation is reminded; its task stays open
    c.wait_until(datetime(2027, 2, 15, 8, 1, tzinfo=UTC))
    assert c.fired().count("b_paamindelse") == 1
    assert c.tasks("indsend_dokumentation")[0].id == second.id
    # the deadline passes: TMF chases the organisation and sets a new deadline
    c.wait_until(datetime(2027, 3, 1, 23, 0, tzinfo=UTC))
    assert "b_frist" in c.fired()
    assert ("eskaler", "TMF") in c.open()
    c.do("eskaler", ny_frist="2027-03-22", rykker_bemaerkning="Sidste frist")
    assert c.tasks("indsend_dokumentation")[0].due.startswith("2027-03-22")

    # meanwhile TMF reviews fsb: red, so the other administrations give input
    c.do("tmf_gennemgang", risiko="roed", regnskab_ok=False, problemafdelinger="Afd. 12\nAfd. 31",
         helhedsplan_behov=True, revisor_bemaerkninger="Væsentlige bemærkninger")
    t = c.task("input_forvaltninger")
    assert t.candidate_groups == ["SOF", "SUF", "BIF", "BUF", "KFF"]
    c.do("input_forvaltninger", forvaltningsinput="SOF kender afdelingerne godt")
    c.do("dialogmoede", moededato="2027-03-10", deltagere=["TMF", "fsb"])
    c.do("referat_aftale", referat="Referat", maal="Tomgang under 1 %\nFlere unge i job")
    # the organisation asks for changes, then does not answer the new version within 3 weeks
    c.do("godkend_referat", referat_svar="aendringer", referat_kommentarer="Mål 2 er for ambitiøst")
    c.do("referat_aftale", referat="Referat, rettet", maal="Tomgang under 1 %")
    c.wait(weeks=3, minutes=1)
    assert "b_referat_frist" in c.fired()
    # the second deadline passed as well: a supervision case for 3B
    assert sorted(c.open()) == [("offentliggoer_redegoerelse", "TMF"), ("opret_tilsynssag", "TMF")]
    c.do("offentliggoer_redegoerelse", offentliggjort_dato="2027-04-06")
    c.do("opret_tilsynssag", tilsynssag_nr="2027-TS-3", tilsyn_begrundelse="Dokumentation ikke modtaget")

    assert c.open() == [("skriv_sammenfatning", "TMF")]
    d = c.data
    results = {r["organisation"]: r for r in d["styringsdialoger"]}
    assert results["fsb"]["status"] == "gennemfoert"
    assert results["fsb"]["risiko"] == "roed"
    assert results["fsb"]["maal"] == ["Tomgang under 1 %"]
    assert results["fsb"]["referat_godkendelse"] == "stiltiende_godkendt"
    assert results["fsb"]["problemafdelinger"] == ["Afd. 12", "Afd. 31"]
    assert results["3B"]["status"] == "tilsynssag" and results["3B"]["rykket"] is True
    assert d["boligorganisationer"] == ["fsb", "3B"]
    assert d["roede_organisationer"] == ["fsb"] and d["tilsynssager"] == ["3B"]
    assert d["naeste_aars_opfoelgning"] == {"fsb": ["Tomgang under 1 %"], "3B": []}
    c.do("skriv_sammenfatning", sammenfatning="Én rød organisation, én tilsynssag.")
    assert c.status == "completed"


def test_green_organisation_approves_the_minutes(case):
    c = case("styringsdialog", {"boligorganisationer": ["Lejerbo"]})
    assert c.data["frist_dokumentation"] == "2027-03-01"                 # 40 working days from 2027-01-04
    c.do("indsend_dokumentation", **DOCS)
    c.do("tmf_gennemgang", risiko="groen", regnskab_ok=True)
    assert c.open() == [("dialogmoede", "TMF")]                         # no input needed for green
    c.do("dialogmoede", moededato="2027-02-01")
    c.do("referat_aftale", referat="Referat", maal=["Energirenovering af afd. 4"])
    c.do("godkend_referat", "Boligorganisation", referat_svar="godkendt")
    c.do("offentliggoer_redegoerelse", offentliggjort_dato="2027-02-20")
    c.do("skriv_sammenfatning", sammenfatning="Alt i orden.")
    assert c.status == "completed"
    assert c.data["styringsdialoger"][0]["referat_godkendelse"] == "godkendt"
    assert c.data["styringsdialoger"][0]["rykket"] is False
