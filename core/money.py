"""Money: Decimal amounts beside an ISO 4217 currency.

Minor units come from the pinned ``iso4217`` package (the ISO table itself),
never from display data. Round once, at the edge, with ``quantize``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext as _
from iso4217 import Currency

ROUNDING = ROUND_HALF_UP

# Funds and metals (no minor unit in ISO terms) are not settlement currencies.
_CURRENCIES: dict[str, Currency] = {
    c.code: c for c in Currency if c.exponent is not None and not c.code.startswith("X")
}
CURRENCY_CHOICES = sorted((code, f"{code} - {c.currency_name}") for code, c in _CURRENCIES.items())


def minor_units(currency: str) -> int:
    try:
        return _CURRENCIES[currency].exponent
    except KeyError:
        raise ValidationError(
            _("%(code)s is not an ISO 4217 currency code."), params={"code": currency}
        ) from None


def quantize(amount: Decimal, currency: str, rounding: str = ROUNDING) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=rounding)


def validate_scale(amount: Decimal, currency: str) -> None:
    """Refuse an amount with more decimals than its currency allows."""
    places = minor_units(currency)
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise ValidationError(
            _("%(code)s amounts have at most %(places)d decimal places."),
            params={"code": currency, "places": places},
        )


def validate_currency(value: str) -> None:
    minor_units(value)


class AmountField(models.DecimalField):
    """20 digits, 4 places: any ISO 4217 minor unit with room for rates."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("max_digits", 20)
        kwargs.setdefault("decimal_places", 4)
        super().__init__(*args, **kwargs)


class CurrencyField(models.CharField):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("choices", CURRENCY_CHOICES)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        # The ISO list changes over time; keep migrations free of it.
        kwargs.pop("choices", None)
        return name, path, args, kwargs
