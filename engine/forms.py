"""Marshmallow schemas built from a task's camunda:formData fields.

The same schema validates CLI, web and API submissions: one set of rules, one set of messages.
Messages are Danish by default (the web layer shows them as-is); `locale="en"` gives English.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

MESSAGES = {
    "da": {
        "required": "Feltet skal udfyldes.",
        "null": "Feltet skal udfyldes.",
        "invalid_int": "Skal være et helt tal.",
        "invalid_bool": "Skal være ja eller nej.",
        "invalid_date": "Skal være en dato (ÅÅÅÅ-MM-DD).",
        "invalid_str": "Skal være tekst.",
        "invalid_list": "Skal være en liste af tekster.",
        "min": "Skal være mindst {min}.",
        "max": "Må højst være {max}.",
        "minlength": "Skal være mindst {min} tegn.",
        "maxlength": "Må højst være {max} tegn.",
        "choice": "Vælg en af mulighederne: {choices}.",
        "unknown": "Ukendt felt.",
    },
    "en": {
        "required": "This field is required.",
        "null": "This field is required.",
        "invalid_int": "Must be a whole number.",
        "invalid_bool": "Must be yes or no.",
        "invalid_date": "Must be a date (YYYY-MM-DD).",
        "invalid_str": "Must be text.",
        "invalid_list": "Must be a list of texts.",
        "min": "Must be at least {min}.",
        "max": "Must be at most {max}.",
        "minlength": "Must be at least {min} characters.",
        "maxlength": "Must be at most {max} characters.",
        "choice": "Choose one of: {choices}.",
        "unknown": "Unknown field.",
    },
}


class _IsoDate(fields.Field):
    """Accepts a date or an ISO string (read as fields.Date reads it); stores the ISO string so task
    data stays plain JSON. Not a fields.Date subclass: that one's value is a date, not a string."""

    default_error_messages = {"invalid": "Not a valid date."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._date = fields.Date(error_messages={"invalid": self.error_messages["invalid"]})

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, date):
            return value.isoformat()
        return self._date._deserialize(value, attr, data, **kwargs).isoformat()


class _LinesList(fields.List):
    """A list of strings; a multi-line text is split into its non-empty lines."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[str | None]:
        if isinstance(value, str):
            value = [line.strip() for line in value.splitlines() if line.strip()]
        return super()._deserialize(value, attr, data, **kwargs)


def _number(value: str | None) -> int | float | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        return float(value)


def field_for(spec: dict[str, Any], locale: str = "da") -> fields.Field:
    m = MESSAGES.get(locale, MESSAGES["da"])
    validation = spec.get("validation") or {}
    props = spec.get("properties") or {}
    required = "required" in validation and str(validation.get("required")).lower() not in ("false", "0")
    readonly = "readonly" in validation
    common: dict[str, Any] = {
        "required": required,
        "allow_none": not required,
        "error_messages": {"required": m["required"], "null": m["null"]},
    }
    validators: list[Any] = []
    kind = (spec.get("type") or "string").lower()
    if kind in ("long", "integer", "int"):
        lo, hi = _number(validation.get("min")), _number(validation.get("max"))
        if lo is not None:
            validators.append(validate.Range(min=lo, error=m["min"].format(min=lo)))
        if hi is not None:
            validators.append(validate.Range(max=hi, error=m["max"].format(max=hi)))
        common["error_messages"]["invalid"] = m["invalid_int"]
        field: fields.Field = fields.Integer(strict=False, validate=validators, **common)
    elif kind == "boolean":
        common["error_messages"]["invalid"] = m["invalid_bool"]
        field = fields.Boolean(truthy={True, "true", "True", "1", "on", "yes", "ja"},
                               falsy={False, "false", "False", "0", "off", "no", "nej", ""}, **common)
    elif kind == "date":
        common["error_messages"]["invalid"] = m["invalid_date"]
        field = _IsoDate(**common)
    elif kind == "enum":
        choices = [o["id"] for o in spec.get("options") or []]
        validators.append(validate.OneOf(choices, error=m["choice"].format(choices=", ".join(choices))))
        field = fields.String(validate=validators, **common)
    else:
        lo, hi = _number(validation.get("minlength")), _number(validation.get("maxlength"))
        if lo is not None:
            validators.append(validate.Length(min=int(lo), error=m["minlength"].format(min=int(lo))))
        if hi is not None:
            validators.append(validate.Length(max=int(hi), error=m["maxlength"].format(max=int(hi))))
        if props.get("widget") == "list":
            field = _LinesList(fields.String(), validate=[validate.Length(min=1, error=m["required"])]
                               if required else [], error_messages={**common["error_messages"],
                                                                    "invalid": m["invalid_list"]},
                               required=required, allow_none=not required)
        else:
            common["error_messages"]["invalid"] = m["invalid_str"]
            field = fields.String(validate=validators, **common)
    if readonly:
        field.dump_only = True
    return field


def schema_for(field_specs: list[dict[str, Any]], locale: str = "da") -> Schema:
    declared = {f["id"]: field_for(f, locale) for f in field_specs}
    schema_cls = Schema.from_dict(declared, name="TaskForm")
    return schema_cls()


def validate_form(field_specs: list[dict[str, Any]], data: dict[str, Any], locale: str = "da") -> dict[str, Any]:
    """Return the cleaned data, or raise ValidationError with {field: [messages]}.

    Empty strings from HTML forms count as "not given". Unknown fields are refused so a typo
    in a field id is not silently stored as a new variable."""
    if not field_specs:
        return dict(data)  # a task without a declared form takes any variables, as in Camunda
    known = {f["id"] for f in field_specs}
    unknown = {k: [MESSAGES.get(locale, MESSAGES["da"])["unknown"]] for k in data if k not in known}
    cleaned_in = {k: (None if v == "" else v) for k, v in data.items() if k in known}
    for spec in field_specs:
        if (spec.get("type") or "").lower() == "boolean" and spec["id"] not in cleaned_in:
            # An unchecked HTML checkbox sends nothing: a boolean field without a value is false.
            cleaned_in[spec["id"]] = False
    try:
        cleaned = schema_for(field_specs, locale).load({k: v for k, v in cleaned_in.items() if v is not None})
    except ValidationError as exc:
        errors = {k: v if isinstance(v, list) else [str(v)] for k, v in exc.normalized_messages().items()}
        errors.update(unknown)
        raise ValidationError(errors) from None
    if unknown:
        raise ValidationError(unknown)
    return cleaned
