"""Ledger writes: transactions arriving in batches, from every door.

The API batch endpoint, the gateway webhook, the CSV import and commands all
call ``transactions_ingest``, so one set of rules decides what the ledger
accepts. Items are checked in plain Python (a serializer per item would cost
more than the database work); the rows are then written with one
``INSERT ... ON CONFLICT DO NOTHING`` and their history copied with one
``INSERT ... SELECT``, without instantiating a model per row.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_countries import countries

from core import audit, money
from core.models import User
from merchants.models import Merchant, PaymentMethod
from settlements import signals
from settlements.models import Transaction, TransactionSource, WebhookEvent

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

# Columns written per row, in this order; id, created_at and updated_at are
# the database's or the batch's own.
_COLUMNS = (
    "source_id", "external_id", "merchant_id", "kind", "status", "amount", "fee", "cost",
    "currency", "payment_method", "card_country", "customer_ref", "payer_email", "payer_phone",
    "card_fingerprint", "occurred_at", "created_at", "updated_at",
)  # fmt: skip
_HISTORY_OWN = ("history_date", "history_change_reason", "history_type", "history_user_id",
                "history_origin")  # fmt: skip


class ItemError(NamedTuple):
    index: int  # position of the item in the batch, from 0
    field: str
    message: str


@dataclass
class IngestReport:
    created: int = 0
    already_present: int = 0
    rejected: int = 0
    errors: list[ItemError] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)


@dataclass
class CheckedItems:
    """Items that passed every rule, as column tuples, beside the refusals."""

    rows: list[tuple[int, tuple]] = field(default_factory=list)  # (index, _COLUMNS values)
    errors: list[ItemError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len({e.index for e in self.errors})


def transactions_check(*, source: TransactionSource, items: list) -> CheckedItems:
    """Apply every rule to ``items`` without writing; one query for the merchants."""
    if not source.is_active:
        raise ValidationError({"source": _("This transaction source is not active.")})
    if not isinstance(items, list):
        raise ValidationError({"items": _("Send a list of transactions.")})
    if len(items) > MAX_ITEMS:
        raise ValidationError(
            {"items": _("At most %(n)d transactions per batch.") % {"n": MAX_ITEMS}}
        )
    return _Checker(source=source, items=items).run()


def transactions_present(*, source: TransactionSource, external_ids: Iterable[str]) -> set[str]:
    """Which of ``external_ids`` the ledger already holds for ``source``."""
    wanted = list(set(external_ids))
    found: set[str] = set()
    for start in range(0, len(wanted), MAX_ITEMS):
        found.update(
            Transaction.objects.filter(
                source=source, external_id__in=wanted[start : start + MAX_ITEMS]
            ).values_list("external_id", flat=True)
        )
    return found


def transactions_ingest(
    *, actor: User | None, source: TransactionSource, items: list
) -> IngestReport:
    """Store the valid items of a batch once each; report the rest per item.

    The doors check ``add_transaction``; webhooks and commands act as the
    system user. Idempotent by the unique (source, external_id):
    an item already in the ledger, from this batch, an earlier one or a
    concurrent one, is counted as already present. After commit,
    ``transactions_ingested`` announces the newly created ids.
    """
    checked = transactions_check(source=source, items=items)
    report = IngestReport(rejected=checked.rejected, errors=checked.errors)
    # Within a batch the first valid item with an external id wins; a repeat
    # is the same event delivered twice.
    unique: dict[str, tuple[int, tuple]] = {}
    for index, row in checked.rows:
        unique.setdefault(row[1], (index, row))
    if not unique:
        report.already_present = len(checked.rows)
        return report
    ctx = audit.current()
    stamp = _HistoryStamp(
        date=timezone.now(),
        reason=(ctx.reason or f"ingest {source.code}")[:100],
        user_id=actor.pk if actor is not None else None,
        origin=ctx.origin[:255],
    )
    # Sorted by external id, so two batches sharing items take the unique
    # index's locks in the same order and wait for each other instead of
    # deadlocking.
    ordered = [unique[key] for key in sorted(unique)]
    with transaction.atomic():
        created = _store([row for _index, row in ordered], stamp)
    index_of = {row[1]: index for index, row in ordered}
    report.created_ids = [
        pk for _key, pk in sorted(created.items(), key=lambda kv: index_of[kv[0]])
    ]
    report.created = len(report.created_ids)
    report.already_present = len(checked.rows) - report.created
    if report.created_ids:
        ids = list(report.created_ids)
        transaction.on_commit(
            lambda: signals.transactions_ingested.send(sender=Transaction, transaction_ids=ids)
        )
    return report


# ---------------------------------------------------------------------------
# CSV import
# ---------------------------------------------------------------------------


class RowError(NamedTuple):
    line: int  # in the file, the header being line 1
    column: str
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    valid: int = 0
    already_present: int = 0
    created: int = 0
    written: bool = False
    errors: list[RowError] = field(default_factory=list)
    preview: list[dict] = field(default_factory=list)

    @property
    def invalid_rows(self) -> int:
        return len({e.line for e in self.errors})


def transactions_import(
    *,
    actor: User,
    source: TransactionSource,
    rows: list[tuple[int, dict]],
    commit: bool,
    only_valid: bool,
) -> ImportReport:
    """Check (dry run) or write the rows of a file, in batches of ``MAX_ITEMS``.

    Each batch goes through ``transactions_check`` or ``transactions_ingest``
    and commits on its own: a file stopped halfway can simply be imported
    again, the rows already written then count as already present. With
    errors and without ``only_valid``, nothing is written.
    """
    report = ImportReport(rows=len(rows))
    if commit and not only_valid:
        # Refuses the whole file when any row is bad, before writing any.
        dry = transactions_import(
            actor=actor, source=source, rows=rows, commit=False, only_valid=False
        )
        if dry.errors:
            dry.written = False
            return dry
    seen: set[str] = set()
    for start in range(0, len(rows), MAX_ITEMS):
        chunk = rows[start : start + MAX_ITEMS]
        lines = [line for line, _item in chunk]
        items = [item for _line, item in chunk]
        if commit:
            result = transactions_ingest(actor=actor, source=source, items=items)
            errors = result.errors
            report.created += result.created
            report.already_present += result.already_present
            report.valid += result.created + result.already_present
        else:
            checked = transactions_check(source=source, items=items)
            errors = checked.errors
            report.valid += len(checked.rows)
            external_ids = [row[1] for _index, row in checked.rows]
            present = transactions_present(source=source, external_ids=external_ids)
            for external_id in external_ids:
                if external_id in present or external_id in seen:
                    report.already_present += 1
                seen.add(external_id)
            for index, _row in checked.rows[: max(0, 20 - len(report.preview))]:
                report.preview.append(items[index])
        report.errors += [RowError(lines[e.index], e.field, e.message) for e in errors]
    report.written = commit
    return report


# ---------------------------------------------------------------------------
# Gateway webhooks
# ---------------------------------------------------------------------------


def webhook_signature_verify(*, secret: str, header: str, body: bytes) -> None:
    """Refuse a body unless ``header`` signs it with ``secret`` recently.

    ``header`` is ``t=<unix seconds>,v1=<hex>[,v1=<hex>...]``; each v1 is an
    HMAC-SHA256 of ``"<t>." + body``. Several v1 values let a gateway sign
    with an old and a new secret while it rotates them.
    """
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _sep, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = value
        elif key == "v1" and value:
            candidates.append(value.encode())
    if timestamp is None or not candidates:
        raise ValidationError({"signature": _("Missing or malformed PayCRM-Signature header.")})
    if not secret:
        raise ValidationError({"signature": _("The signature does not match.")})
    expected = (
        hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        .hexdigest()
        .encode()
    )
    # Every candidate is compared, in constant time, whatever the first gives.
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    if not any(matches):
        raise ValidationError({"signature": _("The signature does not match.")})
    tolerance = settings.SETTLEMENT_WEBHOOK_TOLERANCE_SECONDS
    if abs(timezone.now().timestamp() - int(timestamp)) > tolerance:
        # A captured request replayed later, or a sender whose clock is off.
        raise ValidationError(
            {"signature": _("The signature's timestamp is too old or in the future.")}
        )


@dataclass(frozen=True)
class WebhookOutcome:
    status: str  # "created", "already_present" or "duplicate"
    transaction_id: int | None = None


class _Replay(Exception):
    pass


def webhook_event_process(
    *, actor: User, source: TransactionSource, event_id: str, item: dict
) -> WebhookOutcome:
    """Store the transaction of one verified gateway event, once per event id.

    Called with the system user, after ``webhook_signature_verify``. An event
    whose transaction is refused raises ``ValidationError`` with its field
    errors and is not recorded, so the gateway's retry is processed afresh.
    Two deliveries of one event at once: the unique (source, event_id) makes
    the second wait for the first and then roll back as a duplicate.
    """
    try:
        with transaction.atomic():
            if WebhookEvent.objects.filter(source=source, event_id=event_id).exists():
                raise _Replay
            report = transactions_ingest(actor=actor, source=source, items=[item])
            if report.rejected:
                problems: dict[str, list[str]] = {}
                for error in report.errors:
                    problems.setdefault(error.field, []).append(error.message)
                raise ValidationError(problems)
            if report.created_ids:
                outcome = WebhookOutcome("created", report.created_ids[0])
            else:
                external_id = str(item["external_id"]).strip()
                pk = (
                    Transaction.objects.filter(source=source, external_id=external_id)
                    .values_list("pk", flat=True)
                    .first()
                )
                outcome = WebhookOutcome("already_present", pk)
            event = WebhookEvent(
                source=source,
                event_id=event_id,
                transaction_id=outcome.transaction_id,
                outcome=outcome.status,
            )
            audit.stamp(event, actor=actor, reason="webhook")
            try:
                with transaction.atomic():
                    event.save()
            except IntegrityError:
                raise _Replay from None  # rolls back this event's ingestion too
    except _Replay:
        return WebhookOutcome("duplicate")
    return outcome


# ---------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------


class _Checker:
    def __init__(self, *, source: TransactionSource, items: list) -> None:
        self.source = source
        self.items = items
        self.errors: list[ItemError] = []
        self.latest = timezone.now() + FUTURE_TOLERANCE
        self.country_codes = frozenset(countries.countries)
        self.emails: dict[str, bool] = {}

    def run(self) -> CheckedItems:
        by_id, by_mid = self._merchants()
        result = CheckedItems(errors=self.errors)
        for index, item in enumerate(self.items):
            row = self._item(index, item, by_id, by_mid)
            if row is not None:
                result.rows.append((index, row))
        return result

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
            try:
                places = money.minor_units(currency)
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
    if _CONTROL.search(value):
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


@dataclass(frozen=True)
class _HistoryStamp:
    """What every history row of one batch records besides the row itself."""

    date: datetime
    reason: str
    user_id: int | None
    origin: str

    def values(self) -> list:
        return [
            connection.ops.adapt_datetimefield_value(self.date),
            self.reason,
            "+",
            self.user_id,
            self.origin,
        ]


def _store(rows: list[tuple], stamp: _HistoryStamp) -> dict[str, int]:
    """Insert the rows the ledger lacks, each with its "created" history row.

    Returns {external_id: new id}. History is copied in SQL from the stored
    rows: the equivalent of ``bulk_history_create`` with ``default_user``, a
    change reason and the origin, minus a model instance per row on each side.
    """
    if connection.vendor == "postgresql":
        return _store_postgresql(rows, stamp)
    created = _insert_values(rows, stamp.date)
    if created:
        _copy_history(list(created.values()), stamp)
    return created


def _store_postgresql(rows: list[tuple], stamp: _HistoryStamp) -> dict[str, int]:
    quote = connection.ops.quote_name
    history = Transaction.history.model

    def db_type(model, column: str) -> str:
        field = next(f for f in model._meta.concrete_fields if f.column == column)
        return field.db_type(connection)

    # Each column travels as one text of its values joined by a separator
    # that _text keeps out of every value, and PostgreSQL splits and casts
    # it: quoting or packing a thousand parameters one by one costs the
    # client more than the database spends on the insert. The trailing
    # separator and the slice keep a lone empty value from becoming no value.
    arrays = ", ".join(
        f"((string_to_array(%s, %s))[1:%s])::{db_type(Transaction, c)}[]" for c in _COLUMNS[:-2]
    )
    now = f"%s::{db_type(Transaction, 'created_at')}"
    own = ", ".join(f"%s::{db_type(history, c)}" for c in _HISTORY_OWN)
    copied = _history_columns()
    sql = (
        f"WITH ins AS (INSERT INTO {quote(Transaction._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(c) for c in _COLUMNS)}) "
        f"SELECT u.*, {now}, {now} FROM unnest({arrays}) AS u "
        f"{_ON_CONFLICT} RETURNING *), "
        f"hist AS (INSERT INTO {quote(history._meta.db_table)} "
        f"({', '.join(quote(c) for c in (*copied, *_HISTORY_OWN))}) "
        f"SELECT {', '.join(quote(c) for c in copied)}, {own} FROM ins) "
        "SELECT id, external_id FROM ins"
    )
    packed = []
    for values in zip(*rows, strict=True):
        packed += [_SEPARATOR.join(map(str, values)) + _SEPARATOR, _SEPARATOR, len(rows)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [stamp.date, stamp.date, *packed, *stamp.values()])
        return {external_id: pk for pk, external_id in cursor.fetchall()}


_ON_CONFLICT = "ON CONFLICT (source_id, external_id) DO NOTHING"


def _insert_values(rows: list[tuple], now: datetime) -> dict[str, int]:
    """SQLite: multi-row VALUES within the driver's parameter limit."""
    quote = connection.ops.quote_name
    ops = connection.ops
    convert = {
        "amount": lambda v: ops.adapt_decimalfield_value(v, 20, 4),
        "fee": lambda v: ops.adapt_decimalfield_value(v, 20, 4),
        "cost": lambda v: ops.adapt_decimalfield_value(v, 20, 4),
        "occurred_at": ops.adapt_datetimefield_value,
        "created_at": ops.adapt_datetimefield_value,
        "updated_at": ops.adapt_datetimefield_value,
    }
    adapters = [convert.get(column) for column in _COLUMNS]
    placeholder = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    per_statement = _rows_per_statement(len(_COLUMNS))
    created: dict[str, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params: list = []
            for row in chunk:
                params.extend(
                    v if adapt is None or v is None else adapt(v)
                    for adapt, v in zip(adapters, (*row, now, now), strict=True)
                )
            cursor.execute(
                f"INSERT INTO {quote(Transaction._meta.db_table)} "  # noqa: S608
                f"({', '.join(quote(c) for c in _COLUMNS)}) VALUES "
                + ", ".join([placeholder] * len(chunk))
                + f" {_ON_CONFLICT} RETURNING id, external_id",
                params,
            )
            created.update((external_id, pk) for pk, external_id in cursor.fetchall())
    return created


def _rows_per_statement(columns: int) -> int:
    limit = connection.features.max_query_params
    return MAX_ITEMS if not limit else max(1, limit // columns)


def _history_columns() -> list[str]:
    """The historical table's copies of the transaction's columns."""
    model = Transaction.history.model
    own = set(_HISTORY_OWN) | {model._meta.pk.column}
    tracked = {f.column for f in Transaction._meta.concrete_fields}
    columns = [f.column for f in model._meta.concrete_fields if f.column not in own]
    unknown = [c for c in columns if c not in tracked]
    if unknown:
        # A history field this copy does not fill would silently stay empty.
        raise RuntimeError(f"Historical transaction columns not copied: {unknown}")
    return columns


def _copy_history(ids: list[int], stamp: _HistoryStamp) -> None:
    """SQLite: one "created" history row per new transaction, copied from the row."""
    quote = connection.ops.quote_name
    copied = _history_columns()
    own = stamp.values()
    prefix = (
        f"INSERT INTO {quote(Transaction.history.model._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(c) for c in (*copied, *_HISTORY_OWN))}) "
        f"SELECT {', '.join(quote(c) for c in copied)}, %s, %s, %s, %s, %s "
        f"FROM {quote(Transaction._meta.db_table)} WHERE id IN "
    )
    per_statement = _rows_per_statement(1) - len(own)
    with connection.cursor() as cursor:
        for start in range(0, len(ids), per_statement):
            chunk = ids[start : start + per_statement]
            cursor.execute(prefix + "(" + ", ".join(["%s"] * len(chunk)) + ")", [*own, *chunk])
