"""Business rule tasks with DMN tables written as Camunda Modeler writes them (DMN 1.3, FEEL)."""

from __future__ import annotations

import pytest

from engine import DeploymentError
from tests.engine.bpmn_kit import chain, doc, end, res, start

DMN_HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" '
    'xmlns:dmndi="https://www.omg.org/spec/DMN/20191111/DMNDI/" xmlns:dc="http://www.omg.org/spec/DMN/20180521/DC/" '
    'xmlns:modeler="http://camunda.org/schema/modeler/1.0" xmlns:camunda="http://camunda.org/schema/1.0/dmn" '
    'id="Definitions_route" name="Routing" namespace="http://camunda.org/schema/1.0/dmn" '
    'exporter="Camunda Modeler" exporterVersion="5.17.0" modeler:executionPlatform="Camunda Platform" '
    'modeler:executionPlatformVersion="7.20.0">\n'
)


def rule(n: int, category: str, amount: str, size: str) -> str:
    return (f'<rule id="Rule_{n}"><inputEntry id="UnaryTests_{n}a"><text>{category}</text></inputEntry>'
            f'<inputEntry id="UnaryTests_{n}b"><text>{amount}</text></inputEntry>'
            f'<outputEntry id="LiteralExpression_{n}"><text>{size}</text></outputEntry></rule>')


def route_dmn(hit_policy: str = "FIRST", rules: list[str] | None = None, extra_output: bool = False) -> str:
    rules = rules or [
        rule(1, '"invoice","travel"', "[1..5]", '"small"'),
        rule(2, '"invoice"', "&lt; 10", '"medium"'),
        rule(3, 'not("invoice")', "-", '"other"'),
        rule(4, "", "", '"large"'),
    ]
    second = '<output id="Output_2" label="Note" name="note" typeRef="string" />' if extra_output else ""
    return DMN_HEADER + f'''  <decision id="route" name="Route">
    <decisionTable id="DecisionTable_1" hitPolicy="{hit_policy}">
      <input id="Input_1" label="Category">
        <inputExpression id="InputExpression_1" typeRef="string"><text>category</text></inputExpression>
      </input>
      <input id="Input_2" label="Amount">
        <inputExpression id="InputExpression_2" typeRef="integer"><text>amount</text></inputExpression>
      </input>
      <output id="Output_1" label="Size" name="size" typeRef="string" />{second}
      {"".join(rules)}
    </decisionTable>
  </decision>
  <dmndi:DMNDI><dmndi:DMNDiagram id="DMNDiagram_1"><dmndi:DMNShape id="DMNShape_1" dmnElementRef="route">
    <dc:Bounds height="80" width="180" x="160" y="100" /></dmndi:DMNShape></dmndi:DMNDiagram></dmndi:DMNDI>
</definitions>
'''


def rule_process(attrs: str = "") -> str:
    return doc("p", start(), f'<bpmn:businessRuleTask id="decide" name="Route" camunda:decisionRef="route" {attrs}/>',
               end(), chain("start", "decide", "end"))


@pytest.mark.parametrize(("category", "amount", "size"), [
    ("invoice", 1, "small"),
    ("travel", 5, "small"),       # "a","b" list and the closed range [1..5]
    ("invoice", 6, "medium"),     # < 10
    ("invoice", 0, "medium"),
    ("invoice", 10, "large"),     # falls through to the catch-all rule (empty entries)
    ("travel", 6, "other"),       # not("invoice") with "-" for any amount
    ("misc", 1000, "other"),
])
def test_feel_unary_tests_decide(engine, category, amount, size):
    engine.definitions.deploy([res(route_dmn(), "route.dmn"), res(rule_process())])
    inst = engine.runtime.start("p", data={"category": category, "amount": amount})
    assert inst.status == "completed", inst.incident
    assert inst.data["size"] == size


# singleEntry and collectEntries need one output entry per result (Camunda refuses more, see
# test_conformance_dmn.py): an empty output entry is left out of the result, as in Camunda.
@pytest.mark.parametrize(("attrs", "note", "expected"), [
    ('camunda:resultVariable="result" camunda:mapDecisionResult="singleEntry"', "", "small"),
    ('camunda:resultVariable="result" camunda:mapDecisionResult="singleResult"', '"n"', {"size": "small", "note": "n"}),
    ('camunda:resultVariable="result" camunda:mapDecisionResult="collectEntries"', "", ["small"]),
    ('camunda:resultVariable="result"', '"n"', [{"size": "small", "note": "n"}]),  # resultList is Camunda's default
])
def test_result_variable_follows_map_decision_result(engine, attrs, note, expected):
    rules = [rule(1, '"invoice"', "[1..5]", '"small"').replace(
        "</outputEntry></rule>", f'</outputEntry><outputEntry id="Note_1"><text>{note}</text></outputEntry></rule>')]
    engine.definitions.deploy([res(route_dmn(rules=rules, extra_output=True), "route.dmn"), res(rule_process(attrs))])
    inst = engine.runtime.start("p", data={"category": "invoice", "amount": 2})
    assert inst.status == "completed", inst.incident
    assert inst.data["result"] == expected
    # the singleEntry/singleResult variable survives persisting and reloading
    assert engine.runtime.get(inst.id).data["result"] == expected


def test_collect_hit_policy(engine):
    rules = [rule(1, '"invoice","travel"', "-", '"a"'), rule(2, "-", "&gt;= 100", '"b"'), rule(3, '"x"', "-", '"c"')]
    engine.definitions.deploy([res(route_dmn("COLLECT", rules), "route.dmn"),
                               res(rule_process('camunda:resultVariable="sizes" '
                                                'camunda:mapDecisionResult="collectEntries"'))])
    inst = engine.runtime.start("p", data={"category": "invoice", "amount": 150})
    assert inst.status == "completed", inst.incident
    assert inst.data["sizes"] == ["a", "b"]


def test_no_rule_matching_gives_no_result(engine):
    rules = [rule(1, '"invoice"', "-", '"a"')]
    engine.definitions.deploy([res(route_dmn(rules=rules), "route.dmn"),
                               res(rule_process('camunda:resultVariable="r" camunda:mapDecisionResult="singleEntry"'))])
    inst = engine.runtime.start("p", data={"category": "other", "amount": 1})
    assert inst.status == "completed"
    assert inst.data["r"] is None and "size" not in inst.data


def test_decision_deployed_earlier_is_found(engine):
    engine.definitions.deploy([res(route_dmn(), "route.dmn")])
    engine.definitions.deploy([res(rule_process())])
    assert engine.runtime.start("p", data={"category": "travel", "amount": 2}).data["size"] == "small"


def test_changed_decision_table_gives_a_new_process_version(engine):
    engine.definitions.deploy([res(route_dmn(), "route.dmn"), res(rule_process())])
    changed = route_dmn(rules=[rule(1, "-", "-", '"changed"')])
    result = engine.definitions.deploy([res(changed, "route.dmn"), res(rule_process())])
    assert [(d.key, d.version) for d in result["deployed"]] == [("p", 2)]
    assert engine.runtime.start("p", data={"category": "travel", "amount": 2}).data["size"] == "changed"


def test_missing_decision_is_refused(engine):
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(rule_process(), "rules.bpmn")])
    assert exc.value.problems[0].file == "rules.bpmn"
    assert "route" in exc.value.problems[0].message


def test_untranslatable_feel_is_refused_with_the_entry(engine):
    bad = route_dmn(rules=[rule(1, "date(\"2027-01-01\")", "-", '"x"')])
    with pytest.raises(DeploymentError) as exc:
        engine.definitions.deploy([res(bad, "route.dmn"), res(rule_process())])
    (problem,) = exc.value.problems
    assert (problem.file, problem.element_id) == ("route.dmn", "UnaryTests_1a")
    assert "not supported" in problem.message
