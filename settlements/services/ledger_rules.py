"""The rules every incoming transaction meets, checked in plain Python.

A serializer per item would cost more than the database work of a batch, so
the checks are written out here once and shared by every door (batch API,
webhook, CSV import, commands) through ``ingestion.transactions_check``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_countries import countries

from core import money
from merchants.models import Merchant, PaymentMethod
from settlements.models import Transaction, TransactionSource

MAX_ITEMS = 1000
# Gateways' clocks drift; an event a little "ahead" of ours is still real.
FUTURE_TOLERANCE = timedelta(minutes=5)
# AmountField: 20 digits of which 4 are decimals.
_AMOUNT_LIMIT = Decimal(10) ** 16

ITEM_FIELDS = (
    "external_id", "merchant", "mid", "kind", "status", "amount", "fee", "cost", "currency",
    "payment_method", "card_country", "customer_ref", "payer_email", "payer_phone",
    "card_fingerprint", "occurred_at",
)  # fmt: skip
_ALLOWED = frozenset(ITEM_FIELDS)
_OPTIONAL_TEXT = (("customer_ref", 100), ("payer_phone", 30), ("card_fingerprint", 64))
_KINDS = tuple(Transaction.Kind.values)
_STATUSES = tuple(Transaction.Status.values)
_METHODS = tuple(PaymentMethod.values)
_NEGATIVE = frozenset(Transaction.NEGATIVE_KINDS)
_SETTLED = Transaction.Status.SETTLED.value
# Never in a stored text value (see _text); separates the packed columns.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEPARATOR = "\x1f"
# Plain ASCII addresses, as nearly every payer's is: a strict subset of what
# Django's validate_email accepts (a dot-atom of letters, digits, "_", "+"
# and "-"; host labels of up to 63 letters, digits and inner hyphens; a
# TLD of letters), so a match needs no further check. Anything else goes to
# validate_email, which decides.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_EMAIL = re.compile(
    rf"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,63}}",
    re.ASCII | re.IGNORECASE,
)

# Columns written per row, in this order; id, created_at and updated_at are
# the database's or the batch's own.
_COLUMNS = (
    "source_id", "external_id", "merchant_id", "kind", "status", "amount", "fee", "cost",
    "currency", "payment_method", "card_country", "customer_ref", "payer_email", "payer_phone",
    "card_fingerprint", "occurred_at", "created_at", "updated_at",
)  # fmt: skip


class ItemError(NamedTuple):
    index: int  # position of the item in the batch, from 0
    field: str
    message: str


@dataclass
class CheckedItems:
    """Items that passed every rule, as column tuples, beside the refusals."""

    rows: list[tuple[int, tuple]] = field(default_factory=list)  # (index, _COLUMNS values)
    errors: list[ItemError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len({e.index for e in self.errors})


# ---------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------


class ItemChecker:
    def __init__(self, *, source: TransactionSource, items: list) -> None:
        self.source = source
        self.items = items
        self.errors: list[ItemError] = []
        self.latest = timezone.now() + FUTURE_TOLERANCE
        self.country_codes = frozenset(countries.countries)
        self.emails: dict[str, bool] = {}
        self.places: dict[str, int] = {}  # minor units of the currencies seen

    def run(self) -> CheckedItems:
        return CheckedItems(rows=self.check(range(len(self.items))), errors=self.errors)

    def check(self, indexes: Iterable[int]) -> list[tuple[int, tuple]]:
        """(index, row) of the items at ``indexes`` that pass; the others'
        errors join ``errors``. Ingestion checks a batch a part at a time."""
        by_id, by_mid = self.known
        rows = []
        for index in indexes:
            row = self._item(index, self.items[index], by_id, by_mid)
            if row is not None:
                rows.append((index, row))
        return rows

    @cached_property
    def known(self) -> tuple[set[int], dict[str, int]]:
        return self._merchants()

    def _merchants(self) -> tuple[set[int], dict[str, int]]:
        """Every merchant the batch names, by id and by MID, in one query."""
        ids: set[int] = set()
        mids: set[str] = set()
        for item in self.items:
            if not isinstance(item, dict):
                continue
            pk = _merchant_id(item.get("merchant"))
            if pk is not None:
                ids.add(pk)
            mid = item.get("mid")
            if isinstance(mid, str) and mid.strip():
                mids.add(mid.strip())
        if not ids and not mids:
            return set(), {}
        if connection.vendor == "postgresql":
            # Two array parameters instead of a thousand: the IN list costs
            # more to render and parse than the lookup itself.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, mid FROM {Merchant._meta.db_table} "  # noqa: S608
                    "WHERE id = ANY(%s::bigint[]) OR mid = ANY(%s::text[])",
                    [list(ids), list(mids)],
                )
                found = cursor.fetchall()
        else:
            found = Merchant.objects.filter(Q(pk__in=ids) | Q(mid__in=mids)).values_list(
                "pk", "mid"
            )
        by_id, by_mid = set(), {}
        for pk, mid in found:
            if pk in ids:
                by_id.add(pk)
            if mid in mids:
                by_mid[mid] = pk
        return by_id, by_mid

    def _item(self, index: int, item: Any, by_id: set[int], by_mid: dict[str, int]) -> tuple | None:
        if not isinstance(item, dict):
            self.errors.append(
                ItemError(index, "non_field_errors", _("Each transaction must be an object."))
            )
            return None
        count = len(self.errors)

        def bad(name: str, message: str) -> None:
            self.errors.append(ItemError(index, name, message))

        if not _ALLOWED.issuperset(item):
            for name in item.keys() - _ALLOWED:
                bad(str(name), _("Unknown field."))

        external_id = _text(item, "external_id", 100, bad, required=True)
        merchant_id = self._merchant(item, bad, by_id, by_mid)

        kind = _choice(item, "kind", _KINDS, bad, required=True)
        status = _choice(item, "status", _STATUSES, bad)
        status = status or _SETTLED

        currency = item.get("currency")
        places = None
        if currency in (None, ""):
            bad("currency", _("This field is required."))
        elif not isinstance(currency, str):
            bad("currency", _("Use an ISO 4217 currency code (e.g. HKD)."))
        else:
            currency = currency.strip().upper()
            places = self.places.get(currency)
            if places is None:
                try:
                    places = self.places[currency] = money.minor_units(currency)
                except ValidationError as exc:
                    bad("currency", exc.messages[0])

        known = currency if places is not None else None
        amount = _amount(item, "amount", known, places or 0, bad, True)
        fee = _amount(item, "fee", known, places or 0, bad, False)
        cost = _amount(item, "cost", known, places or 0, bad, False)
        if amount is not None and kind:
            if kind in _NEGATIVE and amount > 0:
                bad("amount", _("Refund and chargeback amounts must be zero or negative."))
            elif kind not in _NEGATIVE and amount < 0:
                bad("amount", _("Payment and chargeback reversal amounts must not be negative."))

        occurred_at = self._moment(item, bad)

        method = _choice(item, "payment_method", _METHODS, bad)
        country = item.get("card_country")
        if country in (None, ""):
            country = ""
        elif not isinstance(country, str) or country.strip().upper() not in self.country_codes:
            bad("card_country", _("Use an ISO 3166 alpha-2 country code (e.g. HK)."))
        else:
            country = country.strip().upper()
        email = _text(item, "payer_email", 254, bad)
        if email and not self._email_ok(email):
            bad("payer_email", _("Enter a valid e-mail address."))
        extra = [_text(item, name, limit, bad) for name, limit in _OPTIONAL_TEXT]

        if len(self.errors) > count:
            return None
        return (
            self.source.pk, external_id, merchant_id, kind, status, amount,
            fee if fee is not None else Decimal(0), cost if cost is not None else Decimal(0),
            currency, method, country, extra[0], email, extra[1], extra[2], occurred_at,
        )  # fmt: skip

    def _email_ok(self, email: str) -> bool:
        if _PLAIN_EMAIL.fullmatch(email):
            return True
        # A batch often repeats its payers; the validator is the costly check.
        if email not in self.emails:
            try:
                validate_email(email)
                self.emails[email] = True
            except ValidationError:
                self.emails[email] = False
        return self.emails[email]

    @staticmethod
    def _merchant(item: dict, bad, by_id: set[int], by_mid: dict[str, int]) -> int | None:
        raw_id, raw_mid = item.get("merchant"), item.get("mid")
        has_id, has_mid = raw_id not in (None, ""), raw_mid not in (None, "")
        if not has_id and not has_mid:
            bad("merchant", _("Give the PayCRM merchant id or the merchant's MID."))
            return None
        pk = None
        if has_id:
            pk = _merchant_id(raw_id)
            if pk is None:
                bad("merchant", _("Give the PayCRM merchant id as a whole number."))
                return None
            if pk not in by_id:
                bad("merchant", _("No merchant with this id."))
                return None
        if has_mid:
            mid = raw_mid.strip() if isinstance(raw_mid, str) else None
            by_that_mid = by_mid.get(mid) if mid else None
            if by_that_mid is None:
                bad("mid", _("No merchant with this MID."))
                return None
            if pk is not None and pk != by_that_mid:
                bad("mid", _("This MID belongs to another merchant than the id given."))
                return None
            pk = by_that_mid
        return pk

    def _moment(self, item: dict, bad) -> datetime | None:
        value = item.get("occurred_at")
        if value in (None, ""):
            bad("occurred_at", _("This field is required."))
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                bad("occurred_at", _("Use ISO 8601, e.g. 2026-10-15T14:30:00+08:00."))
                return None
        elif not isinstance(value, datetime):
            bad("occurred_at", _("Use ISO 8601, e.g. 2026-10-15T14:30:00+08:00."))
            return None
        if value.utcoffset() is None:
            bad("occurred_at", _("Give the time zone offset, e.g. +08:00 or Z."))
            return None
        if value > self.latest:
            bad("occurred_at", _("This time is in the future."))
            return None
        return value


def _choice(item: dict, name: str, allowed: tuple[str, ...], bad, *, required: bool = False) -> str:
    """The value if it is one of ``allowed``; "" when absent or refused."""
    value = item.get(name)
    if value is None or value == "":
        if required:
            bad(name, _("This field is required."))
        return ""
    if isinstance(value, str):
        value = value.strip()
        if value in allowed:
            return value
    bad(name, _("Use one of: %(choices)s.") % {"choices": ", ".join(allowed)})
    return ""


def _merchant_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            return None
        value = int(value)
    if isinstance(value, int) and 0 < value < 2**63:
        return value
    return None


def _text(item: dict, name: str, limit: int, bad, *, required: bool = False) -> str:
    value = item.get(name)
    if value is None:
        value = ""
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # numeric ids sent as JSON numbers
    elif not isinstance(value, str):
        bad(name, _("Send text."))
        return ""
    else:
        value = value.strip()
    if not value:
        if required:
            bad(name, _("This field is required."))
        return ""
    if len(value) > limit:
        bad(name, _("At most %(n)d characters.") % {"n": limit})
        return ""
    if not value.isprintable() and _CONTROL.search(value):
        bad(name, _("Control characters (tabs, line breaks…) are not allowed."))
        return ""
    return value


def _amount(
    item: dict, name: str, currency: str | None, places: int, bad, required: bool
) -> Decimal | None:
    value = item.get(name)
    if value is None or value == "":
        if required:
            bad(name, _("This field is required."))
        return None
    if isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            bad(name, _("“%(value)s” is not a number.") % {"value": value[:40]})
            return None
    elif isinstance(value, int) and not isinstance(value, bool):
        amount = Decimal(value)
    elif isinstance(value, float):
        # A binary float cannot hold most decimal amounts exactly.
        bad(name, _('Send amounts with decimals as strings, e.g. "12.50".'))
        return None
    else:
        bad(name, _('Send a number as a string, e.g. "12.50".'))
        return None
    if not amount.is_finite():
        bad(name, _("“%(value)s” is not a number.") % {"value": str(value)[:40]})
        return None
    if abs(amount) >= _AMOUNT_LIMIT:
        bad(name, _("This amount is too large."))
        return None
    exponent = amount.as_tuple().exponent
    if currency is not None:
        if exponent >= -places:
            return amount  # no more decimals written than the currency has
        try:
            money.validate_scale(amount, currency)
        except ValidationError as exc:
            bad(name, exc.messages[0])
            return None
    elif -exponent > 4:
        bad(name, _("At most 4 decimal places."))
        return None
    return amount


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------
