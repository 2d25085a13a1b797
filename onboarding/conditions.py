"""Structured step conditions, validated on save and evaluated without ``eval``.

A condition is JSON::

    {"any": [
        {"field": "merchant.risk_level", "op": "eq", "value": "high"},
        {"field": "merchant.expected_monthly_volume", "op": "gt", "value": "1000000"},
        {"field": "merchant.mcc", "op": "in", "value": ["5967", "7995"]}
    ]}

``all``/``any`` nest; a bare rule is a condition too; ``None`` means "always".
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# field → (how to read it from the facts, kind of value)
FIELDS: dict[str, str] = {
    "merchant.risk_level": "text",
    "merchant.country": "text",
    "merchant.mcc": "text",
    "merchant.business_type": "text",
    "merchant.expected_monthly_volume": "number",
    "merchant.volume_currency": "text",
}
OPERATORS = {
    "eq": ("text", "number"),
    "ne": ("text", "number"),
    "in": ("text",),
    "not_in": ("text",),
    "gt": ("number",),
    "gte": ("number",),
    "lt": ("number",),
    "lte": ("number",),
}
MAX_DEPTH = 4


def merchant_facts(merchant) -> dict[str, Any]:
    """The values conditions can test, read once from a merchant."""
    return {
        "merchant.risk_level": merchant.risk_level,
        "merchant.country": str(merchant.country),
        "merchant.mcc": merchant.mcc,
        "merchant.business_type": merchant.business_type,
        "merchant.expected_monthly_volume": merchant.expected_monthly_volume,
        "merchant.volume_currency": merchant.volume_currency,
    }


def validate(condition: Any, *, depth: int = 0) -> None:
    """Raise ValidationError({"condition": …}) unless ``condition`` is well formed."""
    if condition is None:
        return
    if depth > MAX_DEPTH:
        raise _invalid(_("Conditions nest at most %(n)d levels.") % {"n": MAX_DEPTH})
    if not isinstance(condition, dict):
        raise _invalid(_("A condition is an object with all/any or field/op/value."))
    groups = [key for key in ("all", "any") if key in condition]
    if groups:
        if len(condition) != 1:
            raise _invalid(_("A group has exactly one key: all or any."))
        members = condition[groups[0]]
        if not isinstance(members, list) or not members:
            raise _invalid(_("%(key)s needs a non-empty list.") % {"key": groups[0]})
        for member in members:
            validate(member, depth=depth + 1)
        return
    if set(condition) != {"field", "op", "value"}:
        raise _invalid(_("A rule has exactly field, op and value."))
    kind = FIELDS.get(condition["field"])
    if kind is None:
        raise _invalid(_("Unknown field %(field)s.") % {"field": condition["field"]})
    op = condition["op"]
    if op not in OPERATORS or kind not in OPERATORS[op]:
        raise _invalid(
            _("Operator %(op)s does not apply to %(field)s.")
            % {"op": op, "field": condition["field"]}
        )
    value = condition["value"]
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise _invalid(_("%(op)s needs a non-empty list of texts.") % {"op": op})
    elif kind == "number":
        _number(value)
    elif not isinstance(value, str):
        raise _invalid(_("%(field)s is compared with a text.") % {"field": condition["field"]})


def evaluate(condition: Any, facts: dict[str, Any]) -> bool:
    """True when ``facts`` meet ``condition`` (None: always). Assumes ``validate`` passed."""
    if condition is None:
        return True
    if "all" in condition:
        return all(evaluate(member, facts) for member in condition["all"])
    if "any" in condition:
        return any(evaluate(member, facts) for member in condition["any"])
    actual = facts[condition["field"]]
    op, value = condition["op"], condition["value"]
    if FIELDS[condition["field"]] == "number":
        actual, value = Decimal(actual), _number(value)
    else:
        actual = str(actual)
    match op:
        case "eq":
            return actual == value
        case "ne":
            return actual != value
        case "in":
            return actual in value
        case "not_in":
            return actual not in value
        case "gt":
            return actual > value
        case "gte":
            return actual >= value
        case "lt":
            return actual < value
        case "lte":
            return actual <= value
    raise ValueError(op)


def describe(condition: Any) -> str:
    """A readable sentence for the editor and the diagram."""
    if condition is None:
        return _("always")
    for key, joiner in (("all", _(" and ")), ("any", _(" or "))):
        if key in condition:
            parts = [describe(m) for m in condition[key]]
            return "(" + joiner.join(parts) + ")" if len(parts) > 1 else parts[0]
    value = condition["value"]
    shown = ", ".join(value) if isinstance(value, list) else str(value)
    symbols = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤",
               "in": "in", "not_in": "not in"}  # fmt: skip
    return f"{condition['field'].split('.', 1)[1]} {symbols[condition['op']]} {shown}"


def _number(value: Any) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _invalid(_("%(value)s is not a number.") % {"value": value}) from None
    if not number.is_finite():
        raise _invalid(_("%(value)s is not a number.") % {"value": value})
    return number


def _invalid(message: str) -> ValidationError:
    return ValidationError({"condition": message})
