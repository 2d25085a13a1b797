"""Money and rates as finance reads them: the currency's own minor digits, grouped."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template
from django.core.exceptions import ValidationError

from core.money import minor_units, quantize

register = template.Library()


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


@register.filter
def amount(value, currency: str) -> str:
    """``1234.5`` HKD → ``1,234.50``; JPY → ``1,235``. Rounded for display only."""
    number = _decimal(value)
    if number is None:
        return ""
    try:
        places = minor_units(currency)
        number = quantize(number, currency)
        if number == 0:
            number = abs(number)  # no "-0.00" from a tiny negative
    except ValidationError:
        # An unknown code shows the stored value as it is rather than a guess.
        return f"{number:,}"
    return f"{number:,.{places}f}"


@register.filter
def money(value, currency: str) -> str:
    """``1,234.50 HKD``: the amount with its currency."""
    shown = amount(value, currency)
    return f"{shown} {currency}" if shown else ""


@register.filter
def bps(value) -> str:
    """A rate in basis points without trailing zeros, at most 4 decimals: ``3,248.1203``."""
    number = _decimal(value)
    if number is None:
        return ""
    number = number.quantize(Decimal("0.0001"))
    text = f"{number:,.4f}".rstrip("0").rstrip(".")
    return text


@register.filter
def percent_of_bps(value) -> str:
    """Basis points as a percentage: ``4000`` → ``40.00 %``."""
    number = _decimal(value)
    if number is None:
        return ""
    return f"{number / 100:,.2f} %"


@register.filter
def inverse_rate(value) -> str:
    """``1 / rate`` to 10 decimals, as a run uses a rate entered the other way round."""
    number = _decimal(value)
    if not number:
        return ""
    return f"{(Decimal(1) / number).quantize(Decimal('1E-10')).normalize():f}"
