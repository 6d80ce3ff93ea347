"""Smaller engine rules: cron detection, id collisions, task labels, date-only due dates, var()."""

from __future__ import annotations

import pytest

from engine import DeploymentError
from tests.engine.bpmn_kit import chain, doc, end, field, lanes, res, script, start, timer, user_task


def _timer_process(expression: str) -> str:
    return doc("t", start("s"),
               f'<bpmn:intermediateCatchEvent id="vent">{timer("timeDate", expression)}</bpmn:intermediateCatchEvent>',
               end("e"), chain("s", "vent", "e"))


@pytest.mark.parametrize("cron", ["0/5 0/1 * 1/1 * ?", "0 0 12 * * MON-FRI", "* * * * *"])
def test_cron_timers_are_refused_with_the_element(engine, cron):
    with pytest.raises(DeploymentError) as err:
        engine.definitions.deploy([res(_timer_process(cron))])
    assert err.value.problems[0].element_id == "vent" and "cron" in err.value.problems[0].message


def test_a_spaced_python_timer_expression_is_not_taken_for_cron(engine):
    engine.definitions.deploy([res(_timer_process('(next_meeting("X") or iso(add_days(today(), 28))) + "T08:00:00Z"'))])
    view = engine.runtime.start("t")
    assert view.waits[0].due == "2027-02-01T08:00:00+00:00"


def test_form_field_id_equal_to_an_element_id_is_refused(engine):
    text = doc("p", start(), user_task("task", "Task", field("task")), end(), chain("start", "task", "end"))
    with pytest.raises(DeploymentError) as err:
        engine.definitions.deploy([res(text)])
    assert "form field id 'task'" in str(err.value)


def test_date_only_due_date_is_the_end_of_that_working_day_in_copenhagen(engine):
    text = doc("p", lanes(Sekretariat=["start", "task", "end"]), start(),
               user_task("task", "Task", attrs='camunda:dueDate="2027-01-15"'), end(), chain("start", "task", "end"))
    engine.definitions.deploy([res(text)])
    assert engine.runtime.start("p").tasks[0].due == "2027-01-15T15:00:00+00:00"  # 16:00 CET


def test_var_reads_optional_variables_with_a_default(engine):
    text = doc("p", start(), script("calc", 'svar = var("mangler", "standard") + "/" + var("givet")'),
               end(), chain("start", "calc", "end"))
    engine.definitions.deploy([res(text)])
    assert engine.runtime.start("p", data={"givet": "x"}).data["svar"] == "standard/x"


def _per_organisation_process() -> str:
    """A multi-instance sub-process over `orgs` with one user task per organisation."""
    sub = ('<bpmn:subProcess id="per_org"><bpmn:multiInstanceLoopCharacteristics camunda:collection="orgs" '
           'camunda:elementVariable="org"/>'
           '<bpmn:startEvent id="ss"/><bpmn:userTask id="indsend" name="Indsend" camunda:candidateGroups="Sekretariat"/>'
           '<bpmn:endEvent id="se"/>' + chain("ss", "indsend", "se") + '</bpmn:subProcess>')
    return doc("mi", start(), sub, end(), chain("start", "per_org", "end"))


def test_tasks_inside_a_multi_instance_subprocess_are_labelled_with_their_item(engine):
    engine.definitions.deploy([res(_per_organisation_process())])
    view = engine.runtime.start("mi", data={"orgs": ["fsb", {"navn": "AKB København"}]})
    assert sorted(t.name for t in view.tasks) == ["Indsend: AKB København", "Indsend: fsb"]


def test_case_variables_do_not_include_the_locals_of_a_running_sub_process(engine):
    engine.definitions.deploy([res(_per_organisation_process())])
    view = engine.runtime.start("mi", data={"orgs": ["fsb", "3B"], "aar": 2027})
    assert view.data["aar"] == 2027 and view.data["orgs"] == ["fsb", "3B"]
    assert "org" not in view.data
