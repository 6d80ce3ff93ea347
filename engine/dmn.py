"""DMN decision tables with Camunda 7 semantics: deploy-time checks, hit policies and result mapping.

SpiffWorkflow parses the tables and stores them in the process spec; it only knows UNIQUE (as
"first match") and COLLECT (without aggregation). Here:

- `preprocess_dmn` checks a DMN document before SpiffWorkflow sees it: one decision with one
  decision table, a known hit policy and aggregation, every input expression, input entry and
  output entry translated from FEEL to Python and compiled, output priorities where the hit
  policy needs them. Elements without an id get one (SpiffWorkflow requires them).
- `annotate_table` and `DecisionTableConverter` keep what SpiffWorkflow's model drops (the
  decision, the aggregation and the outputValues priorities) in the stored spec.
- `evaluate_decision` runs a table: each input expression once, the rules in one evaluation,
  then the hit policy (UNIQUE, ANY, FIRST, PRIORITY, RULE ORDER, OUTPUT ORDER, COLLECT with or
  without SUM/COUNT/MIN/MAX) as docs.camunda.org/manual/7.x/reference/dmn/decision-table/hit-policy/
  and the DMN 1.3 specification (PRIORITY, OUTPUT ORDER) describe it.
- `map_result` shapes the result for camunda:resultVariable as camunda:mapDecisionResult says
  (singleEntry, singleResult, collectEntries, resultList), with Camunda's errors.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.camunda.specs.business_rule_task import BusinessRuleTask
from SpiffWorkflow.dmn.serializer.task_spec import BaseBusinessRuleTaskConverter
from SpiffWorkflow.dmn.specs import BusinessRuleTaskMixin
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.deep_merge import DeepMerge

from .errors import Problem
from .expressions import ExpressionError, has_juel, to_python
from .feel import FeelError, split_list, translate_input_entry, translate_literal
from .scripting import ScriptCompileError, compile_restricted_source, describe_error

SINGLE_HIT = ("UNIQUE", "FIRST", "ANY", "PRIORITY")
MULTI_HIT = ("RULE ORDER", "OUTPUT ORDER", "COLLECT")
HIT_POLICIES = SINGLE_HIT + MULTI_HIT
AGGREGATIONS = ("SUM", "COUNT", "MIN", "MAX")
RESULT_MAPPINGS = ("singleEntry", "singleResult", "collectEntries", "resultList")
DEFAULT_MAPPING = "resultList"  # Camunda's default for camunda:resultVariable

# The value of the i-th input expression while the rules are tested.
_INPUT_VAR = "almen_dmn_input_{}"
# A '?' outside string literals stands for the input value (SpiffWorkflow's unary-test syntax).
_QUESTION = re.compile(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)")


class DecisionError(Exception):
    """A decision could not be evaluated or its result broke the hit policy or the result mapping."""


# --- deploy time ------------------------------------------------------------------------------

def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _children(el: Any, name: str) -> list[Any]:
    return [c for c in el if _local(c) == name]


def _text_child(el: Any) -> Any:
    """The <text> of an entry or expression, created empty when missing (SpiffWorkflow reads it)."""
    found = _children(el, "text")
    if found:
        return found[0]
    text = etree.SubElement(el, etree.QName(etree.QName(el).namespace, "text") if etree.QName(el).namespace
                            else "text")
    text.text = ""
    return text


def entry_condition(entry: str | None, variable: str) -> str | None:
    """A translated input entry as a Python condition on `variable`; None when it matches anything.

    '?' stands for the input value; a plain value or expression is compared for equality; an entry
    that only parses with something before it (` in (1, 2,)`, `> 3`) gets the value in front."""
    return _entry_condition(entry.strip() if entry else "", variable)


@functools.lru_cache(maxsize=4096)
def _entry_condition(entry: str, variable: str) -> str | None:
    if entry in ("", "-"):
        return None
    if _QUESTION.search(entry):
        return "(" + _QUESTION.sub(variable, entry) + ")"
    try:
        ast.parse(entry, mode="eval")
    except SyntaxError:
        return f"({variable} {entry})"
    return f"({variable} == ({entry}))"


def parse_output_values(text: str) -> list[Any]:
    """outputValues ('"high","medium","low"' or '1,2,3') as Python values in priority order."""
    values = []
    for item in split_list(text):
        python = translate_literal(item)
        try:
            values.append(ast.literal_eval(python))
        except (ValueError, SyntaxError):
            raise FeelError(f"'{item}' is not a literal value") from None
    if not values:
        raise FeelError("the list is empty")
    return values


def _literal(python: str) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(python)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def _expression(text: str) -> str:
    """An input expression or output entry: FEEL literals, or JUEL when written as ${...}."""
    return to_python(text) if has_juel(text) else translate_literal(text)


def preprocess_dmn(root: Any, filename: str) -> list[Problem]:
    """Check a DMN document and translate its FEEL to Python in place; every finding is a Problem."""
    problems: list[Problem] = []

    def problem(el_id: str | None, message: str) -> None:
        problems.append(Problem(filename, el_id, message))

    ns = etree.QName(root).namespace
    decisions = [el for el in root if _local(el) == "decision" and etree.QName(el).namespace == ns]
    if not decisions:
        problem(root.get("id") or "definitions", "the file contains no decision")
        return problems
    for extra in decisions[1:]:
        problem(extra.get("id"), "a DMN file may hold only one decision (decision requirements graphs are not "
                                 "supported); put this decision in a file of its own")
    decision = decisions[0]
    if not decision.get("id"):
        problem(None, "the decision has no id")
        return problems
    for req in decision.iter():
        if _local(req) in ("requiredDecision", "requiredKnowledge"):
            problem(decision.get("id"), "required decisions (decision requirements) are not supported")
            break
    tables = _children(decision, "decisionTable")
    if len(tables) != 1:
        problem(decision.get("id"), "the decision must be a decision table (literal expressions and other "
                                    "decision logic are not supported)")
        return problems
    _check_table(tables[0], decision.get("id"), problem)
    return problems


def _check_table(table: Any, decision_id: str, problem: Any) -> None:
    table_id = table.get("id") or f"{decision_id}_table"
    table.set("id", table_id)
    policy = " ".join((table.get("hitPolicy") or "UNIQUE").split()).upper()
    aggregation = (table.get("aggregation") or "").strip().upper() or None
    if policy not in HIT_POLICIES:
        problem(table_id, f"hit policy '{table.get('hitPolicy')}' is unknown; use one of {', '.join(HIT_POLICIES)}")
        return
    table.set("hitPolicy", policy)

    inputs = _children(table, "input")
    outputs = _children(table, "output")
    rules = _children(table, "rule")
    if not outputs:
        problem(table_id, "the decision table has no output")
    if aggregation is not None:
        if aggregation not in AGGREGATIONS:
            problem(table_id, f"aggregation '{table.get('aggregation')}' is unknown; use one of "
                              f"{', '.join(AGGREGATIONS)}")
        elif policy != "COLLECT":
            problem(table_id, f"aggregation {aggregation} is only allowed with hit policy COLLECT, not {policy}")
        elif len(outputs) > 1:
            problem(table_id, f"COLLECT with {aggregation} needs exactly one output; the table has {len(outputs)}")
        else:
            table.set("aggregation", aggregation)

    for n, inp in enumerate(inputs, 1):
        inp.set("id", inp.get("id") or f"{table_id}_input_{n}")
        expressions = _children(inp, "inputExpression")
        text_el = _text_child(expressions[0]) if expressions else None
        text = (text_el.text or "").strip() if text_el is not None else ""
        if not text:
            problem(inp.get("id"), f"input '{inp.get('label') or inp.get('id')}' has no input expression")
            continue
        _translate(inp, text_el, text, _expression, problem)

    names: dict[str, str] = {}
    priorities: dict[str, list[Any]] = {}
    for n, out in enumerate(outputs, 1):
        out.set("id", out.get("id") or f"{table_id}_output_{n}")
        name = out.get("name") or out.get("label")
        if not name:
            problem(out.get("id"), "the output has no name")
        elif name in names:
            problem(out.get("id"), f"two outputs are named '{name}'")
        else:
            names[name] = out.get("id")
        for values_el in _children(out, "outputValues"):
            text = (_text_child(values_el).text or "").strip()
            if not text:
                continue
            try:
                priorities[out.get("id")] = parse_output_values(text)
            except FeelError as exc:
                problem(out.get("id"), f"outputValues '{text}' cannot be read: {exc}")
    if policy in ("PRIORITY", "OUTPUT ORDER") and outputs and not any(o.get("id") in priorities for o in outputs):
        problem(table_id, f"hit policy {policy} orders results by the outputValues of the outputs, "
                          "but no output lists its values")

    for n, rule in enumerate(rules, 1):
        rule.set("id", rule.get("id") or f"{table_id}_rule_{n}")
        in_entries = _children(rule, "inputEntry")
        out_entries = _children(rule, "outputEntry")
        if len(in_entries) != len(inputs) or len(out_entries) != len(outputs):
            problem(rule.get("id"), f"rule {n} has {len(in_entries)} input and {len(out_entries)} output entries; "
                                    f"the table has {len(inputs)} inputs and {len(outputs)} outputs")
            continue
        for i, entry in enumerate(in_entries):
            entry.set("id", entry.get("id") or f"{rule.get('id')}_input_{i + 1}")
            text_el = _text_child(entry)
            _translate(entry, text_el, (text_el.text or "").strip(), translate_input_entry, problem,
                       condition=True)
        for out, entry in zip(outputs, out_entries, strict=True):
            entry.set("id", entry.get("id") or f"{rule.get('id')}_output_{outputs.index(out) + 1}")
            text_el = _text_child(entry)
            text = (text_el.text or "").strip()
            if not text:
                continue
            python = _translate(entry, text_el, text, _expression, problem)
            allowed = priorities.get(out.get("id"))
            if python is not None and allowed is not None and policy in ("PRIORITY", "OUTPUT ORDER"):
                literal, value = _literal(python)
                if literal and value not in allowed:
                    problem(entry.get("id"), f"output entry {text} is not one of the outputValues of output "
                                             f"'{out.get('name') or out.get('id')}' ({', '.join(map(repr, allowed))})")


def _translate(el: Any, text_el: Any, text: str, translate: Any, problem: Any, condition: bool = False) -> str | None:
    """Translate one expression in place and compile what will run; None (and a problem) if it cannot."""
    try:
        python = translate(text)
    except (FeelError, ExpressionError) as exc:
        problem(el.get("id"), f"cannot translate '{text}': {exc}")
        return None
    try:
        source = entry_condition(python, _INPUT_VAR.format(0)) if condition else python
        if source is not None:
            compile_restricted_source("eval", source)
    except ScriptCompileError as exc:
        problem(el.get("id"), f"'{text}' is not a valid expression: {exc}")
        return None
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        problem(el.get("id"), f"'{text}' is not a valid expression: {exc.__class__.__name__}")
        return None
    text_el.text = python
    return python


# --- the stored spec --------------------------------------------------------------------------

def annotate_table(table: Any, dmn_parser: Any) -> None:
    """Copy onto SpiffWorkflow's DecisionTable what its parser leaves out."""
    decision = dmn_parser.decision
    table.decision_id = decision.id
    table.decision_name = decision.name or decision.id
    table.aggregation = None
    table.output_values = {}
    node = next((el for el in dmn_parser.node.iter() if _local(el) == "decisionTable" and el.get("id") == table.id),
                None)
    if node is None:
        return
    table.aggregation = node.get("aggregation") or None
    for out in _children(node, "output"):
        for values_el in _children(out, "outputValues"):
            text = (_text_child(values_el).text or "").strip()
            try:
                if text:
                    table.output_values[out.get("id")] = parse_output_values(text)
            except FeelError:
                continue  # refused by preprocess_dmn already; never a crash here


def _meta(table: Any, name: str, default: Any = None) -> Any:
    return getattr(table, name, default)


class DecisionTableConverter(BaseBusinessRuleTaskConverter):
    """SpiffWorkflow's converter, plus the decision, aggregation and output priorities."""

    def decision_table_to_dict(self, table: Any) -> dict[str, Any]:
        dct = super().decision_table_to_dict(table)
        dct["almenflow"] = {"decision_id": _meta(table, "decision_id"), "decision_name": _meta(table, "decision_name"),
                            "aggregation": _meta(table, "aggregation"),
                            "output_values": dict(_meta(table, "output_values") or {})}
        return dct

    def decision_table_from_dict(self, dct: dict[str, Any]) -> Any:
        extra = dct.pop("almenflow", None) or {}
        table = super().decision_table_from_dict(dct)
        table.decision_id = extra.get("decision_id")
        table.decision_name = extra.get("decision_name")
        table.aggregation = extra.get("aggregation")
        table.output_values = extra.get("output_values") or {}
        return table


# --- run time ---------------------------------------------------------------------------------

@dataclass
class Match:
    rule_id: str
    row: int
    outputs: dict[str, Any]  # output name -> value; empty output entries are left out (Camunda)


@dataclass
class DecisionResult:
    rows: list[dict[str, Any]]
    multiple: bool  # the hit policy may give several results (RULE ORDER, OUTPUT ORDER, plain COLLECT)


def _output_name(output: Any) -> str:
    return output.name or output.label or output.id


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ if isinstance(exc, WorkflowTaskException) and exc.__cause__ is not None else exc
    if isinstance(inner, SpiffWorkflowException):
        return str(inner.args[0]) if inner.args else str(inner)
    return describe_error(inner)


def _evaluate(task: Any, expression: str, context: dict[str, Any]) -> Any:
    return task.workflow.script_engine.evaluate(task, expression, external_context=context)


def _evaluate_each(task: Any, items: list[tuple[str, str]], context: dict[str, Any]) -> list[Any]:
    """[(label, expression)] evaluated in one go; on failure each alone, to name the one that fails."""
    if not items:
        return []
    try:
        values = _evaluate(task, "[" + ", ".join(expr for _, expr in items) + "]", context)
        if isinstance(values, list) and len(values) == len(items):
            return values
    except Exception:  # noqa: S110 - evaluated again one by one below, to report the failing one
        pass
    values = []
    for label, expr in items:
        try:
            values.append(_evaluate(task, expr, context))
        except Exception as exc:
            raise DecisionError(f"{label} failed: {_cause(exc)}") from exc
    return values


def evaluate_decision(task: Any, table: Any) -> DecisionResult:
    """The table's result for the task's data under its hit policy. Raises DecisionError."""
    policy = str(table.hit_policy or "UNIQUE").upper()
    aggregation = _meta(table, "aggregation")
    inputs = _evaluate_each(task, [(f"input '{i.label or i.id}' ({i.expression})", i.expression)
                                   for i in table.inputs], {})
    context = {_INPUT_VAR.format(n): value for n, value in enumerate(inputs)}
    position = {i.id: n for n, i in enumerate(table.inputs)}

    tests = []
    for row, rule in enumerate(table.rules, 1):
        conditions = [c for n, entry in enumerate(rule.inputEntries)
                      if (c := entry_condition(entry.lhs[0] if entry.lhs else None,
                                               _INPUT_VAR.format(position.get(entry.input.id, n)))) is not None]
        tests.append((f"rule '{rule.id}' (row {row})", "bool(" + " and ".join(conditions) + ")" if conditions
                      else "True"))
    flags = _evaluate_each(task, tests, context)
    matched = [(row, rule) for row, (rule, hit) in enumerate(zip(table.rules, flags, strict=True), 1) if hit]

    if policy == "UNIQUE" and len(matched) > 1:
        raise DecisionError("hit policy UNIQUE allows one matching rule, but " + _rules(matched) + " match")
    if policy == "FIRST":
        matched = matched[:1]
    matches = _outputs(task, table, matched, context)

    if policy == "ANY" and any(m.outputs != matches[0].outputs for m in matches[1:]):
        raise DecisionError("hit policy ANY allows several matching rules only with equal outputs, but "
                            + ", ".join(f"'{m.rule_id}' (row {m.row}) gives {m.outputs}" for m in matches))
    if policy in ("PRIORITY", "OUTPUT ORDER"):
        matches = sorted(matches, key=lambda m: _priority(table, m))
    if policy in ("UNIQUE", "FIRST", "ANY", "PRIORITY"):
        return DecisionResult([m.outputs for m in matches[:1]], multiple=False)
    if policy == "COLLECT" and aggregation:
        return DecisionResult(_aggregate(table, aggregation, matches), multiple=False)
    return DecisionResult([m.outputs for m in matches], multiple=True)


def _rules(matched: list[tuple[int, Any]]) -> str:
    return ", ".join(f"'{rule.id}' (row {row})" for row, rule in matched)


def _outputs(task: Any, table: Any, matched: list[tuple[int, Any]], context: dict[str, Any]) -> list[Match]:
    items, where = [], []
    for row, rule in matched:
        for entry in rule.outputEntries:
            if entry.text and entry.text.strip():
                items.append((f"output entry '{entry.id}' of rule '{rule.id}' (row {row})", entry.text))
                where.append((row, _output_name(entry.output)))
    values = _evaluate_each(task, items, context)
    matches = {row: Match(rule.id, row, {}) for row, rule in matched}
    for (row, name), value in zip(where, values, strict=True):
        matches[row].outputs[name] = value
    return list(matches.values())


def _priority(table: Any, match: Match) -> tuple[int, ...]:
    """Position of each output value in its outputValues (first is highest), output by output."""
    key = []
    for output in table.outputs:
        allowed = (_meta(table, "output_values") or {}).get(output.id)
        if allowed is None:
            continue
        name = _output_name(output)
        if name not in match.outputs:
            key.append(len(allowed))  # no value: after every listed one
            continue
        value = match.outputs[name]
        if value not in allowed:
            raise DecisionError(f"rule '{match.rule_id}' (row {match.row}) gives {value!r} for output '{name}', "
                                f"which is not one of its outputValues {allowed}")
        key.append(allowed.index(value))
    return tuple(key)


def _number(value: Any, aggregation: str, match: Match) -> int | float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value.strip())
            except ValueError:
                continue
    raise DecisionError(f"COLLECT {aggregation} needs numbers, but rule '{match.rule_id}' (row {match.row}) "
                        f"gives {value!r}")


def _aggregate(table: Any, aggregation: str, matches: list[Match]) -> list[dict[str, Any]]:
    """Camunda: empty output entries are skipped; COUNT of nothing is 0, SUM/MIN/MAX of nothing no result."""
    name = _output_name(table.outputs[0])
    found = [(m, m.outputs[name]) for m in matches if name in m.outputs]
    if aggregation == "COUNT":
        return [{name: len(found)}]
    if not found:
        return []
    numbers = [_number(value, aggregation, m) for m, value in found]
    functions: dict[str, Callable[[list[int | float]], int | float]] = {"SUM": sum, "MIN": min, "MAX": max}
    return [{name: functions[aggregation](numbers)}]


def map_result(result: DecisionResult, mapping: str) -> Any:
    """The value of camunda:resultVariable under camunda:mapDecisionResult, as Camunda's mappers give it."""
    rows = result.rows
    if mapping == "singleEntry":
        if len(rows) > 1:
            raise DecisionError(f"mapDecisionResult singleEntry needs at most one result, but the decision gave "
                                f"{len(rows)}")
        if not rows or not rows[0]:
            return None
        if len(rows[0]) > 1:
            raise DecisionError(f"mapDecisionResult singleEntry needs one output entry, but the result has "
                                f"{len(rows[0])} ({', '.join(rows[0])}); use singleResult")
        return next(iter(rows[0].values()))
    if mapping == "singleResult":
        if len(rows) > 1:
            raise DecisionError(f"mapDecisionResult singleResult needs at most one result, but the decision gave "
                                f"{len(rows)}; use resultList or collectEntries")
        return dict(rows[0]) if rows else None
    if mapping == "collectEntries":
        names = list(dict.fromkeys(name for row in rows for name in row))
        if len(names) > 1:
            raise DecisionError(f"mapDecisionResult collectEntries needs one output, but the results have "
                                f"{', '.join(names)}; use resultList")
        return [row[names[0]] for row in rows if names and names[0] in row]
    return [dict(row) for row in rows]


def merged_outputs(result: DecisionResult) -> dict[str, Any]:
    """Without camunda:resultVariable the outputs become variables (SpiffWorkflow's behaviour): one
    result's outputs as they are, several results' outputs as a list per output."""
    if not result.multiple:
        return dict(result.rows[0]) if result.rows else {}
    merged: dict[str, list[Any]] = {}
    for row in result.rows:
        for name, value in row.items():
            merged.setdefault(name, []).append(value)
    return dict(merged)


def _set_variables(data: dict[str, Any], values: dict[str, Any]) -> None:
    for name, value in values.items():
        if "." not in name:
            data[name] = value
            continue
        # Dotted output names build nested variables ("a.b" -> {"a": {"b": ...}}), as SpiffWorkflow does.
        head, *rest = name.split(".")
        nested: Any = value
        for part in reversed(rest):
            nested = {part: nested}
        data[head] = DeepMerge.merge(data[head], nested) if isinstance(data.get(head), dict) and \
            isinstance(nested, dict) else nested


class AlmenBusinessRuleTask(BusinessRuleTask):
    """A business rule task evaluated with Camunda 7 semantics. With camunda:resultVariable the
    result goes into that variable, shaped by camunda:mapDecisionResult (resultList by default),
    and nothing else is set; without it the outputs become variables (see merged_outputs)."""

    def _run_hook(self, my_task: Any) -> bool:
        ext = getattr(self, "extensions", None) or {}
        table = self.dmnEngine.decision_table
        try:
            result = evaluate_decision(my_task, table)
            variable = ext.get("camunda:resultVariable")
            if variable:
                my_task.data[variable] = map_result(result, ext.get("camunda:mapDecisionResult") or DEFAULT_MAPPING)
            else:
                _set_variables(my_task.data, merged_outputs(result))
        except DecisionError as exc:
            decision = _meta(table, "decision_id") or table.id
            name = _meta(table, "decision_name")
            label = f"'{decision}'" + (f" ({name})" if name and name != decision else "")
            task = self.bpmn_name or self.bpmn_id
            raise WorkflowTaskException(f"business rule task '{task}', decision {label}: {exc}",
                                        task=my_task, exception=exc) from exc
        return super(BusinessRuleTaskMixin, self)._run_hook(my_task)
