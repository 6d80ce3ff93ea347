"""DMN decision tables as Camunda 7 runs them: every hit policy, COLLECT aggregation, result mapping
with camunda:mapDecisionResult, the incidents a violated hit policy or mapping gives, and the
refusals at deploy time (docs.camunda.org/manual/7.x/reference/dmn/decision-table/hit-policy/)."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest

from engine import DeploymentError
from tests.engine.bpmn_kit import chain, doc, end, res, start, user_task

DMN_HEADER = ('<?xml version="1.0" encoding="UTF-8"?>\n'
              '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" '
              'xmlns:camunda="http://camunda.org/schema/1.0/dmn" id="defs" name="D" '
              'namespace="http://camunda.org/schema/1.0/dmn">\n')


def dmn(rules: list[tuple[list[str], list[str]]], *, hit_policy: str | None = None, aggregation: str | None = None,
        inputs: tuple[str, ...] = ("score",), outputs: tuple[str, ...] = ("level",),
        output_values: dict[str, str] | None = None, decision: str = "grade") -> str:
    """A decision table: rules are ([input entries], [output entries]) in FEEL, as Camunda Modeler writes."""
    attrs = (f' hitPolicy="{hit_policy}"' if hit_policy else "") + (f' aggregation="{aggregation}"' if aggregation else "")
    body = "".join(f'<input id="in_{n}" label="{e}"><inputExpression id="expr_{n}" typeRef="string">'
                   f'<text>{escape(e)}</text></inputExpression></input>' for n, e in enumerate(inputs, 1))
    for n, name in enumerate(outputs, 1):
        values = (output_values or {}).get(name)
        inner = f'<outputValues id="ov_{n}"><text>{escape(values)}</text></outputValues>' if values else ""
        body += f'<output id="out_{n}" name="{name}" typeRef="string">{inner}</output>'
    for r, (ins, outs) in enumerate(rules, 1):
        body += f'<rule id="r{r}">' + "".join(
            f'<inputEntry id="r{r}_in{i}"><text>{escape(t)}</text></inputEntry>' for i, t in enumerate(ins, 1)) + "".join(
            f'<outputEntry id="r{r}_out{o}"><text>{escape(t)}</text></outputEntry>' for o, t in enumerate(outs, 1)) \
            + "</rule>"
    return (DMN_HEADER + f'<decision id="{decision}" name="Grade"><decisionTable id="table"{attrs}>{body}'
            "</decisionTable></decision></definitions>")


def process(result_variable: str | None = "result", mapping: str | None = None, decision: str = "grade") -> str:
    attrs = f'camunda:decisionRef="{decision}"'
    if result_variable:
        attrs += f' camunda:resultVariable="{result_variable}"'
    if mapping:
        attrs += f' camunda:mapDecisionResult="{mapping}"'
    return doc("p", start(), f'<bpmn:businessRuleTask id="decide" name="Decide" {attrs}/>', user_task("after", "After"),
               end(), chain("start", "decide", "after", "end"))


def run(engine, table: str, data: dict, **process_kwargs):
    engine.definitions.deploy([res(table, "grade.dmn"), res(process(**process_kwargs))])
    inst = engine.runtime.start("p", data=data)
    # every assertion reads the instance as stored, after a save and reload
    return engine.runtime.get(inst.id)


def deploy_problems(engine, table: str, **process_kwargs):
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(table, "grade.dmn"), res(process(**process_kwargs))])
    return exc.value.problems


# Three overlapping rules on a score: "high" from 80, "pass" from 50, "any" always.
OVERLAP = [([">= 80"], ['"high"']), ([">= 50"], ['"pass"']), (["-"], ['"any"'])]


# --- single-result hit policies --------------------------------------------------------------

def test_unique_is_the_default_and_gives_the_one_match(engine):
    table = dmn([(["< 50"], ['"fail"']), (["[50..100]"], ['"pass"'])])
    inst = run(engine, table, {"score": 70}, mapping="singleEntry")
    assert inst.status == "active", inst.incident
    assert inst.data["result"] == "pass"


def test_unique_with_several_matches_is_an_incident_naming_task_decision_and_rules(engine):
    inst = run(engine, dmn(OVERLAP, hit_policy="UNIQUE"), {"score": 90}, mapping="singleEntry")
    assert inst.status == "incident"
    assert inst.incident["element_id"] == "decide"
    message = inst.incident["message"]
    assert "'Decide'" in message and "'grade'" in message and "UNIQUE" in message
    assert "'r1' (row 1)" in message and "'r2' (row 2)" in message and "'r3' (row 3)" in message
    assert "result" not in inst.data
    # retried unchanged, the same violation comes back: never a silent completion
    assert engine.runtime.retry(inst.id).status == "incident"


def test_unique_incident_can_be_retried_with_corrected_data(engine):
    table = dmn([(["< 50"], ['"fail"']), ([">= 40"], ['"pass"'])], hit_policy="UNIQUE")
    inst = run(engine, table, {"score": 45}, mapping="singleEntry")
    assert inst.status == "incident"
    retried = engine.runtime.retry(inst.id, data={"score": 60})
    assert retried.status == "active" and retried.data["result"] == "pass"


def test_first_gives_the_first_match_in_rule_order(engine):
    inst = run(engine, dmn(OVERLAP, hit_policy="FIRST"), {"score": 60}, mapping="singleEntry")
    assert inst.data["result"] == "pass"
    inst = run(engine, dmn(OVERLAP, hit_policy="FIRST"), {"score": 95}, mapping="singleEntry")
    assert inst.data["result"] == "high"


def test_any_accepts_several_matches_with_equal_outputs(engine):
    table = dmn([([">= 80"], ['"ok"']), ([">= 50"], ['"ok"']), (["< 50"], ['"no"'])], hit_policy="ANY")
    inst = run(engine, table, {"score": 90}, mapping="singleResult")
    assert inst.status == "active", inst.incident
    assert inst.data["result"] == {"level": "ok"}


def test_any_with_different_outputs_is_an_incident(engine):
    inst = run(engine, dmn(OVERLAP, hit_policy="ANY"), {"score": 60}, mapping="singleEntry")
    assert inst.status == "incident" and inst.incident["element_id"] == "decide"
    assert "ANY" in inst.incident["message"] and "'r2'" in inst.incident["message"]
    assert "'r3'" in inst.incident["message"]


PRIORITIES = {"level": '"any","pass","high"'}  # "any" has the highest priority, "high" the lowest


def test_priority_gives_the_match_whose_output_comes_first_in_output_values(engine):
    table = dmn(OVERLAP, hit_policy="PRIORITY", output_values=PRIORITIES)
    assert run(engine, table, {"score": 90}, mapping="singleEntry").data["result"] == "any"
    table = dmn(OVERLAP[:2], hit_policy="PRIORITY", output_values=PRIORITIES)
    assert run(engine, table, {"score": 90}, mapping="singleEntry").data["result"] == "pass"


def test_priority_with_compound_outputs_orders_by_the_prioritised_output(engine):
    rules = [([">= 80"], ['"high"', '"r1"']), ([">= 50"], ['"pass"', '"r2"'])]
    table = dmn(rules, hit_policy="PRIORITY", outputs=("level", "reason"), output_values={"level": '"pass","high"'})
    inst = run(engine, table, {"score": 90}, mapping="singleResult")
    assert inst.data["result"] == {"level": "pass", "reason": "r2"}


def test_priority_without_output_values_is_refused(engine):
    (problem,) = deploy_problems(engine, dmn(OVERLAP, hit_policy="PRIORITY"))
    assert (problem.file, problem.element_id) == ("grade.dmn", "table")
    assert "PRIORITY" in problem.message and "outputValues" in problem.message


def test_priority_output_entry_outside_output_values_is_refused(engine):
    table = dmn(OVERLAP, hit_policy="PRIORITY", output_values={"level": '"pass","high"'})
    (problem,) = deploy_problems(engine, table)
    assert (problem.file, problem.element_id) == ("grade.dmn", "r3_out1")
    assert '"any"' in problem.message


# --- multiple-result hit policies -------------------------------------------------------------

def test_rule_order_gives_every_match_in_rule_order(engine):
    inst = run(engine, dmn(OVERLAP, hit_policy="RULE ORDER"), {"score": 90})
    assert inst.data["result"] == [{"level": "high"}, {"level": "pass"}, {"level": "any"}]
    inst = run(engine, dmn(OVERLAP, hit_policy="RULE ORDER"), {"score": 60}, mapping="collectEntries")
    assert inst.data["result"] == ["pass", "any"]


def test_output_order_sorts_the_matches_by_output_priority(engine):
    table = dmn(OVERLAP, hit_policy="OUTPUT ORDER", output_values={"level": '"pass","any","high"'})
    inst = run(engine, table, {"score": 90}, mapping="collectEntries")
    assert inst.data["result"] == ["pass", "any", "high"]


def test_output_order_without_output_values_is_refused(engine):
    (problem,) = deploy_problems(engine, dmn(OVERLAP, hit_policy="OUTPUT ORDER"))
    assert problem.element_id == "table" and "OUTPUT ORDER" in problem.message


def test_collect_without_aggregation_gives_every_match(engine):
    inst = run(engine, dmn(OVERLAP, hit_policy="COLLECT"), {"score": 55}, mapping="collectEntries")
    assert inst.data["result"] == ["pass", "any"]


POINTS = [([">= 80"], ["10"]), ([">= 50"], ["5"]), (["-"], ["1"]), (["< 0"], ["100"]), (["-"], [""])]


@pytest.mark.parametrize(("aggregation", "expected"), [("SUM", 16), ("COUNT", 3), ("MIN", 1), ("MAX", 10)])
def test_collect_aggregation_gives_a_single_value(engine, aggregation, expected):
    # the last rule matches with an empty output entry: Camunda leaves it out, COUNT too
    table = dmn(POINTS, hit_policy="COLLECT", aggregation=aggregation, outputs=("points",))
    inst = run(engine, table, {"score": 85}, mapping="singleEntry")
    assert inst.status == "active", inst.incident
    assert inst.data["result"] == expected
    inst = run(engine, table, {"score": 85})  # resultList: one result with the aggregate
    assert inst.data["result"] == [{"points": expected}]


def test_collect_sum_of_decimals_and_numeric_strings(engine):
    table = dmn([(["-"], ["1.5"]), (["-"], ['"2"'])], hit_policy="COLLECT", aggregation="SUM", outputs=("points",))
    assert run(engine, table, {"score": 1}, mapping="singleEntry").data["result"] == 3.5


def test_collect_aggregation_with_no_match(engine):
    only_high = [([">= 80"], ["10"])]
    table = dmn(only_high, hit_policy="COLLECT", aggregation="SUM", outputs=("points",))
    inst = run(engine, table, {"score": 1})
    assert inst.status == "active" and inst.data["result"] == []
    table = dmn(only_high, hit_policy="COLLECT", aggregation="COUNT", outputs=("points",))
    assert run(engine, table, {"score": 1}, mapping="singleEntry").data["result"] == 0


def test_collect_sum_over_text_is_an_incident(engine):
    table = dmn([(["-"], ["1"]), (["-"], ['"many"'])], hit_policy="COLLECT", aggregation="SUM", outputs=("points",))
    inst = run(engine, table, {"score": 1}, mapping="singleEntry")
    assert inst.status == "incident" and inst.incident["element_id"] == "decide"
    assert "SUM" in inst.incident["message"] and "'r2'" in inst.incident["message"]


def test_collect_aggregation_with_several_outputs_is_refused(engine):
    table = dmn([(["-"], ["1", "2"])], hit_policy="COLLECT", aggregation="SUM", outputs=("a", "b"))
    (problem,) = deploy_problems(engine, table)
    assert problem.element_id == "table" and "one output" in problem.message


def test_aggregation_without_collect_is_refused(engine):
    (problem,) = deploy_problems(engine, dmn(OVERLAP, hit_policy="FIRST", aggregation="SUM"))
    assert problem.element_id == "table" and "COLLECT" in problem.message


@pytest.mark.parametrize(("hit_policy", "aggregation", "word"), [("SOMETIMES", None, "SOMETIMES"),
                                                                   ("COLLECT", "AVG", "AVG")])
def test_unknown_hit_policy_or_aggregation_is_refused(engine, hit_policy, aggregation, word):
    (problem,) = deploy_problems(engine, dmn(OVERLAP, hit_policy=hit_policy, aggregation=aggregation))
    assert (problem.file, problem.element_id) == ("grade.dmn", "table") and word in problem.message


# --- result mapping ---------------------------------------------------------------------------

TWO_OUTPUTS = [([">= 50"], ['"pass"', '"ok"'])]


@pytest.mark.parametrize("mapping", ["singleEntry", "collectEntries"])
def test_single_output_mappings_with_two_output_entries_are_an_incident(engine, mapping):
    inst = run(engine, dmn(TWO_OUTPUTS, outputs=("level", "note")), {"score": 60}, mapping=mapping)
    assert inst.status == "incident" and mapping in inst.incident["message"]


@pytest.mark.parametrize("mapping", ["singleEntry", "singleResult"])
def test_single_result_mappings_with_several_results_are_an_incident(engine, mapping):
    inst = run(engine, dmn(OVERLAP, hit_policy="COLLECT"), {"score": 60}, mapping=mapping)
    assert inst.status == "incident"
    assert mapping in inst.incident["message"] and "2" in inst.incident["message"]


def test_single_mappings_with_one_result_of_a_multiple_hit_policy(engine):
    inst = run(engine, dmn(OVERLAP[:2], hit_policy="COLLECT"), {"score": 60}, mapping="singleResult")
    assert inst.data["result"] == {"level": "pass"}


@pytest.mark.parametrize(("mapping", "expected"), [("singleEntry", None), ("singleResult", None),
                                                   ("collectEntries", []), ("resultList", [])])
def test_no_matching_rule_gives_an_empty_result(engine, mapping, expected):
    table = dmn([([">= 80"], ['"high"'])])
    inst = run(engine, table, {"score": 1}, mapping=mapping)
    assert inst.status == "active"
    assert "result" in inst.data and inst.data["result"] == expected


def test_without_result_variable_outputs_become_variables(engine):
    inst = run(engine, dmn(OVERLAP, hit_policy="FIRST"), {"score": 60}, result_variable=None)
    assert inst.data["level"] == "pass"
    inst = run(engine, dmn(OVERLAP, hit_policy="RULE ORDER"), {"score": 60}, result_variable=None)
    assert inst.data["level"] == ["pass", "any"]
    inst = run(engine, dmn([([">= 80"], ['"high"'])]), {"score": 1}, result_variable=None)
    assert "level" not in inst.data


def test_unknown_map_decision_result_is_refused(engine):
    (problem,) = deploy_problems(engine, dmn(OVERLAP, hit_policy="FIRST"), mapping="firstEntry")
    assert (problem.file, problem.element_id) == ("test.bpmn", "decide") and "firstEntry" in problem.message


def test_invalid_result_variable_is_refused(engine):
    (problem,) = deploy_problems(engine, dmn(OVERLAP, hit_policy="FIRST"), result_variable="my result")
    assert problem.element_id == "decide" and "my result" in problem.message


# --- deploy-time checks of the expressions ----------------------------------------------------

def test_input_expression_that_does_not_compile_is_refused(engine):
    (problem,) = deploy_problems(engine, dmn(OVERLAP, hit_policy="FIRST", inputs=("score +",)))
    assert (problem.file, problem.element_id) == ("grade.dmn", "in_1")


def test_input_expression_with_forbidden_code_is_refused(engine):
    (problem,) = deploy_problems(engine, dmn(OVERLAP, hit_policy="FIRST", inputs=("__import__('os')",)))
    assert problem.element_id == "in_1" and "not a valid expression" in problem.message


def test_input_entry_that_does_not_compile_is_refused(engine):
    rules = [([">= 80"], ['"high"']), (["> > 3"], ['"x"'])]
    (problem,) = deploy_problems(engine, dmn(rules, hit_policy="FIRST"))
    assert (problem.file, problem.element_id) == ("grade.dmn", "r2_in1")


def test_output_entry_that_does_not_compile_is_refused(engine):
    rules = [([">= 80"], ['"high"']), (["-"], ["open('x')"])]
    (problem,) = deploy_problems(engine, dmn(rules, hit_policy="FIRST"))
    assert (problem.file, problem.element_id) == ("grade.dmn", "r2_out1")


def test_every_bad_expression_is_listed(engine):
    rules = [(["> > 3"], ["1 +"]), (["-"], ['"ok"'])]
    problems = deploy_problems(engine, dmn(rules, hit_policy="FIRST", inputs=("a b",)))
    assert {p.element_id for p in problems} == {"in_1", "r1_in1", "r1_out1"}


def test_rule_with_missing_entries_is_refused(engine):
    rules = [([">= 80", "1"], ['"high"'])]
    (problem,) = deploy_problems(engine, dmn(rules, hit_policy="FIRST"))
    assert problem.element_id == "r1" and "2 input" in problem.message


def test_two_decisions_in_one_file_are_refused(engine):
    table = dmn(OVERLAP, hit_policy="FIRST").replace(
        "</definitions>", '<decision id="second"><decisionTable id="t2"><output id="o2" name="x"/></decisionTable>'
                          "</decision></definitions>")
    (problem,) = deploy_problems(engine, table)
    assert (problem.file, problem.element_id) == ("grade.dmn", "second")


def test_decision_without_a_table_is_refused(engine):
    table = (DMN_HEADER + '<decision id="grade"><literalExpression id="le"><text>1</text></literalExpression>'
             "</decision></definitions>")
    (problem,) = deploy_problems(engine, table)
    assert problem.element_id == "grade" and "decision table" in problem.message


def test_table_written_without_ids_runs(engine):
    """Flowable and older modelers leave ids off inputs and rules; they are named, not refused."""
    table = (DMN_HEADER + '<decision id="grade"><decisionTable hitPolicy="FIRST">'
             '<input label="Score"><inputExpression><text>score</text></inputExpression></input>'
             '<output name="level"/>'
             '<rule><inputEntry><text>&gt;= 50</text></inputEntry><outputEntry><text>"pass"</text></outputEntry></rule>'
             '<rule><inputEntry><text>-</text></inputEntry><outputEntry><text>"fail"</text></outputEntry></rule>'
             "</decisionTable></decision></definitions>")
    inst = run(engine, table, {"score": 10}, mapping="singleEntry")
    assert inst.status == "active", inst.incident
    assert inst.data["result"] == "fail"


def test_failing_input_is_an_incident_naming_the_input(engine):
    inst = run(engine, dmn(OVERLAP, hit_policy="FIRST", inputs=("score / divisor",)), {"score": 1, "divisor": 0},
               mapping="singleEntry")
    assert inst.status == "incident" and inst.incident["element_id"] == "decide"
    assert "ZeroDivisionError" in inst.incident["message"] and "score / divisor" in inst.incident["message"]


def test_failing_rule_is_an_incident_naming_the_rule(engine):
    rules = [(["> limit"], ['"high"']), (["-"], ['"any"'])]
    inst = run(engine, dmn(rules, hit_policy="FIRST"), {"score": 1}, mapping="singleEntry")
    assert inst.status == "incident" and "'r1' (row 1)" in inst.incident["message"]
    assert "limit" in inst.incident["message"]
