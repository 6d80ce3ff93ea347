"""Start forms, and messages one instance throws to another (or to a message-start process)."""

from __future__ import annotations

import pytest

from engine import FormValidationError
from tests.engine.bpmn_kit import chain, definitions, doc, end, field, message, process, res, start, user_task


def _with_start_form() -> str:
    form = ('<bpmn:extensionElements><camunda:formData>' + field("titel", required=True)
            + field("antal", "long", min=1) + '</camunda:formData></bpmn:extensionElements>')
    return doc("sag", start("s", form), user_task("t", "T", attrs='camunda:candidateGroups="Sekretariat"'), end("e"),
               chain("s", "t", "e"))


def test_start_form_fields_are_exposed_and_validated(engine):
    engine.definitions.deploy([res(_with_start_form())])
    info = engine.definitions.get("sag")
    assert [f["id"] for f in info.start_form] == ["titel", "antal"]
    with pytest.raises(FormValidationError) as err:
        engine.runtime.start_with_form("sag", {"antal": "0"}, "anna")
    assert set(err.value.errors) == {"titel", "antal"}
    assert engine.runtime.list()[1] == 0  # nothing was started
    view = engine.runtime.start_with_form("sag", {"titel": "Ny sag", "antal": "3"}, "anna", business_key="S-1")
    assert view.data["titel"] == "Ny sag" and view.data["antal"] == 3 and view.business_key == "S-1"


def _sender(end_with_message: bool = True) -> str:
    throw = ('<bpmn:intermediateThrowEvent id="send"><bpmn:messageEventDefinition messageRef="m"/>'
             '</bpmn:intermediateThrowEvent>')
    return definitions(process("afsender", start("s"), user_task("t", "T", attrs='camunda:candidateGroups="Sekretariat"'),
                               throw, end("e"), chain("s", "t", "send", "e")), message("m", "ny_sag"))


def _receiver_by_start() -> str:
    start_msg = '<bpmn:messageEventDefinition messageRef="m2"/>'
    return definitions(process("modtager", start("ms", start_msg),
                               user_task("behandl", "Behandl", attrs='camunda:candidateGroups="Styregruppe"'),
                               end("e"), chain("ms", "behandl", "e")), message("m2", "ny_sag"))


def test_a_thrown_message_starts_the_process_whose_start_event_is_that_message(engine):
    engine.definitions.deploy([res(_sender(), "afsender.bpmn"), res(_receiver_by_start(), "modtager.bpmn")])
    assert engine.definitions.get("modtager").start_trigger == {"kind": "message", "name": "ny_sag"}
    sender = engine.runtime.start("afsender", business_key="H-7", data={"titel": "Venteliste"})
    engine.tasks.complete(sender.tasks[0].id, "anna", {"note": "videre"})
    after = engine.runtime.get(sender.id)
    assert after.status == "completed"
    sent = [h for h in after.history if h.type == "message_sent"]
    assert len(sent) == 1 and sent[0].details["message"] == "ny_sag"
    started = engine.runtime.get(sent[0].details["to_instances"][0])
    assert started.definition["key"] == "modtager" and started.business_key == "H-7"
    assert started.data["titel"] == "Venteliste" and started.data["note"] == "videre"
    assert [t.forum for t in started.tasks] == ["Styregruppe"]


def test_a_thrown_message_reaches_an_instance_waiting_with_the_same_business_key(engine):
    waiting = doc("venter", start("s"), '<bpmn:intermediateCatchEvent id="c"><bpmn:messageEventDefinition '
                  'messageRef="m"/></bpmn:intermediateCatchEvent>', end("e"), chain("s", "c", "e"),
                  extra=message("m", "ny_sag"))
    engine.definitions.deploy([res(_sender(), "afsender.bpmn"), res(waiting, "venter.bpmn")])
    other = engine.runtime.start("venter", business_key="X")
    mine = engine.runtime.start("venter", business_key="H-8")
    sender = engine.runtime.start("afsender", business_key="H-8", data={"svar": 42})
    engine.tasks.complete(sender.tasks[0].id, "anna", {})
    assert engine.runtime.get(mine.id).status == "completed"
    assert engine.runtime.get(mine.id).data["svar"] == 42
    assert engine.runtime.get(other.id).status == "active"


def test_a_message_nobody_receives_is_an_incident_on_the_sender_not_lost(engine):
    engine.definitions.deploy([res(_sender(), "afsender.bpmn")])
    sender = engine.runtime.start("afsender", business_key="H-9")
    engine.tasks.complete(sender.tasks[0].id, "anna", {})
    after = engine.runtime.get(sender.id)
    assert after.status == "incident" and "ny_sag" in after.incident["message"]
