"""Process D, henvendelse ("én indgang"): routing by DMN, visitation, temagruppe, Samarbejdsforum."""

from __future__ import annotations

import pytest

ITEM = {"titel": "Lange ventelister til familieboliger", "beskrivelse": "Ventelisterne vokser i Nordvest.",
        "rejst_af": "lokaludvalg"}


@pytest.mark.parametrize("emne, temagruppe", [
    ("udlejning", "Temagruppe Udlejning"),
    ("boligsocial", "Temagruppe Boligsocial"),
    ("byfornyelse", "Temagruppe Byfornyelse"),
    ("tryghed", "Temagruppe Tryghed"),
    ("oekonomi", "Temagruppe Økonomi"),
    ("aeldreboliger", "Temagruppe Ældreboliger"),
    ("andet", "Temagruppe Tværgående"),
])
def test_routing_table_suggests_the_temagruppe_that_then_prepares_the_item(case, emne, temagruppe):
    c = case("henvendelse", dict(ITEM, emne=emne), business_key="H-1")
    visit = c.task("visiter")
    assert visit.forum == "TMF sekretariat"
    assert c.data["temagruppe"] == temagruppe
    c.do("visiter", temagruppe=c.data["temagruppe"])
    prep = c.task("forbered_sag")
    assert prep.forum == temagruppe
    assert prep.candidate_groups == [temagruppe]


def test_secretariat_overrides_the_suggested_temagruppe(case):
    c = case("henvendelse", dict(ITEM, emne="udlejning"))
    assert c.data["temagruppe"] == "Temagruppe Udlejning"
    c.do("visiter", temagruppe="Temagruppe Boligsocial", visitering_note="Handler om anvisning")
    assert c.open() == [("forbered_sag", "Temagruppe Boligsocial")]


def test_without_emne_the_item_goes_to_the_cross_cutting_group(case):
    c = case("henvendelse", {"titel": "Uden emne"})
    assert c.data["emne"] == "andet"
    assert c.data["temagruppe"] == "Temagruppe Tværgående"


def test_tasks_are_due_by_the_next_samarbejdsforum_meeting(case):
    c = case("henvendelse", dict(ITEM, emne="tryghed"))
    assert c.task("visiter").due.startswith("2027-01-09")          # P5D from Monday 2027-01-04
    c.do("visiter", temagruppe="Temagruppe Tryghed")
    assert c.task("forbered_sag").due.startswith("2027-01-21")     # Samarbejdsforum's first meeting
    c.do("forbered_sag", sagsfremstilling="Sagen kort", anbefaling="luk")
    assert c.task("sf_beslutning").forum == "Samarbejdsforum"
    assert c.task("sf_beslutning").due.startswith("2027-01-21")


def _to_samarbejdsforum(c):
    c.do("visiter", temagruppe=c.data["temagruppe"])
    c.do("forbered_sag", sagsfremstilling="Sagsfremstilling")


def test_samarbejdsforum_closes_the_item_and_the_secretariat_answers(case):
    c = case("henvendelse", dict(ITEM, emne="udlejning"))
    _to_samarbejdsforum(c)
    c.do("sf_beslutning", beslutning="luk", begrundelse="Løses i den eksisterende udlejningsaftale")
    assert c.open() == [("svar_og_luk", "TMF sekretariat")]
    c.do("svar_og_luk", svar="Tak for henvendelsen.")
    assert c.status == "completed"
    assert c.data["udfald"] == "lukket"
    assert "videre_til" not in c.data


def test_samarbejdsforum_sends_the_item_to_partnerskabsforum(case):
    c = case("henvendelse", dict(ITEM, emne="tryghed"))
    _to_samarbejdsforum(c)
    c.do("sf_beslutning", beslutning="partnerskabsforum")
    assert c.open() == [("pf_behandling", "Partnerskabsforum")]
    c.do("pf_behandling", pf_konklusion="Tages op i næste partnerskabsaftale")
    c.do("svar_og_luk", svar="Partnerskabsforum har behandlet sagen.")
    assert c.status == "completed"
    assert c.data["udfald"] == "behandlet_i_partnerskabsforum"


@pytest.mark.parametrize("beslutning, process", [
    ("indstilling", "faellesindstilling"),
    ("ny_delaftale", "partnerskabsaftale"),
    ("styringsdialog", "styringsdialog"),
])
def test_follow_up_decisions_end_with_the_process_to_start(case, beslutning, process):
    c = case("henvendelse", dict(ITEM, emne="boligsocial"))
    _to_samarbejdsforum(c)
    c.do("sf_beslutning", beslutning=beslutning)
    assert c.status == "completed"
    assert c.data["udfald"] == "videresendt"
    assert c.data["videre_til"] == process
    assert c.data["videre_data"]["titel"] == ITEM["titel"]
    assert c.data["videre_data"]["henvendelse_temagruppe"] == "Temagruppe Boligsocial"


def _follow_up(c):
    sent = c.history("message_sent")
    assert len(sent) == 1, [h.type for h in c.view.history]
    return c.eng.runtime.get(sent[0].details["to_instances"][0])


def test_an_indstilling_decision_starts_process_a_with_the_item(case):
    c = case("henvendelse", dict(ITEM, emne="boligsocial"), business_key="H-2027-017")
    _to_samarbejdsforum(c)
    c.do("sf_beslutning", beslutning="indstilling")
    follow = _follow_up(c)
    assert follow.definition["key"] == "faellesindstilling" and follow.business_key == "H-2027-017"
    assert [(t.element_id, t.forum) for t in follow.tasks] == [("udarbejd_indstilling", "TMF")]
    assert follow.data["titel"] == ITEM["titel"]
    assert follow.data["problem"] == ITEM["beskrivelse"]
    assert "beslutning" not in follow.data  # only videre_data travels, not the whole henvendelse


def test_a_new_delaftale_decision_starts_process_c(case):
    c = case("henvendelse", dict(ITEM, emne="udlejning"), business_key="H-2027-018")
    _to_samarbejdsforum(c)
    c.do("sf_beslutning", beslutning="ny_delaftale")
    follow = _follow_up(c)
    assert follow.definition["key"] == "partnerskabsaftale" and follow.status == "active"
    assert follow.data["henvendelse_temagruppe"] == "Temagruppe Udlejning"


def test_a_styringsdialog_decision_starts_nothing_and_is_recorded(case):
    c = case("henvendelse", dict(ITEM, emne="udlejning"))
    _to_samarbejdsforum(c)
    c.do("sf_beslutning", beslutning="styringsdialog")
    assert c.status == "completed" and c.history("message_sent") == []
    assert c.data["videre_til"] == "styringsdialog"


def test_samarbejdsforum_must_choose_one_of_the_decisions(case, kk):
    from engine import FormValidationError

    c = case("henvendelse", dict(ITEM, emne="andet"))
    _to_samarbejdsforum(c)
    t = c.task("sf_beslutning")
    with pytest.raises(FormValidationError) as exc:
        kk.tasks.complete(t.id, user=c.member_of("Samarbejdsforum"), data={"begrundelse": "?"})
    assert "beslutning" in exc.value.errors
    with pytest.raises(FormValidationError):
        kk.tasks.complete(t.id, user=c.member_of("Samarbejdsforum"), data={"beslutning": "udsat"})
