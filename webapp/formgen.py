"""HTML form controls generated from a task's form fields (camunda:formData as the engine gives them).

The engine validates (engine.tasks.complete); this module only decides which control shows a
field, what it holds (the case data, or what the user typed on a failed submit), and turns the
posted form back into the data dict the engine expects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict


@dataclass
class Control:
    name: str
    label: str
    widget: str  # text | textarea | lines | number | checkbox | date | select
    required: bool = False
    readonly: bool = False
    help: str | None = None
    value: str = ""
    checked: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def html_id(self) -> str:
        return f"field-{self.name}"

    @property
    def described_by(self) -> str:
        ids = []
        if self.help:
            ids.append(f"{self.html_id}-help")
        if self.errors:
            ids.append(f"{self.html_id}-error")
        return " ".join(ids)


def widget_for(spec: dict[str, Any]) -> str:
    kind = (spec.get("type") or "string").lower()
    widget = ((spec.get("properties") or {}).get("widget") or "").lower()
    if kind == "list" or widget == "list":
        return "lines"
    if kind in ("long", "integer", "int"):
        return "number"
    if kind == "boolean":
        return "checkbox"
    if kind == "date":
        return "date"
    if kind == "enum":
        return "select"
    if widget == "textarea":
        return "textarea"
    return "text"


def _is_required(validation: dict[str, Any]) -> bool:
    return "required" in validation and str(validation.get("required")).lower() not in ("false", "0")


def _as_text(value: Any, widget: str) -> str:
    if value is None:
        return ""
    if widget == "lines" and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "on", "yes", "ja")
    return bool(value)


def _default(spec: dict[str, Any]) -> Any:
    default = spec.get("default")
    if isinstance(default, str) and ("${" in default or "#{" in default):
        return None  # an expression, not a value to show
    return default


def build_controls(specs: list[dict[str, Any]], case_data: dict[str, Any] | None = None,
                   posted: MultiDict[str, str] | None = None,
                   errors: dict[str, list[str]] | None = None) -> list[Control]:
    """Controls for `specs`; values come from `posted` (a failed submit) or else the case data/default."""
    case_data = case_data or {}
    errors = errors or {}
    controls = []
    for spec in specs:
        name = spec["id"]
        widget = widget_for(spec)
        validation = spec.get("validation") or {}
        props = spec.get("properties") or {}
        if posted is not None:
            raw: Any = posted.get(name, "")
        else:
            raw = case_data.get(name, _default(spec))
        c = Control(name=name, label=spec.get("label") or name, widget=widget,
                    required=_is_required(validation), readonly="readonly" in validation,
                    help=props.get("help") or props.get("description") or None,
                    errors=[str(m) for m in errors.get(name, [])])
        if widget == "checkbox":
            c.checked = _truthy(raw)
        else:
            c.value = _as_text(raw, widget)
        if widget == "select":
            c.options = [(str(o["id"]), str(o.get("name") or o["id"])) for o in spec.get("options") or []]
        for constraint, attr in (("min", "min"), ("max", "max"), ("minlength", "minlength"),
                                 ("maxlength", "maxlength")):
            if validation.get(constraint) not in (None, "") and widget in ("number", "text", "textarea"):
                if (constraint in ("min", "max")) == (widget == "number"):
                    c.attrs[attr] = str(validation[constraint])
        controls.append(c)
    return controls


def posted_data(specs: list[dict[str, Any]], form: MultiDict[str, str]) -> dict[str, Any]:
    """The engine's input from a posted form: declared, editable fields only; a checked box is "true"."""
    data: dict[str, Any] = {}
    for spec in specs:
        name = spec["id"]
        if "readonly" in (spec.get("validation") or {}):
            continue
        if widget_for(spec) == "checkbox":
            if _truthy(form.get(name, "")):
                data[name] = "true"
            continue
        if name in form:
            data[name] = form.get(name, "")
    return data


def error_summary(controls: list[Control], errors: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(html id, label, message) for the summary at the top of a failed form, in form order;
    errors for names the form does not show are listed too."""
    out = [(c.html_id, c.label, " ".join(c.errors)) for c in controls if c.errors]
    shown = {c.name for c in controls}
    out += [("", name, " ".join(str(m) for m in msgs)) for name, msgs in errors.items() if name not in shown]
    return out
