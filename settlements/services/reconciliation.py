"""Reconciliation: a gateway's settlement report compared with the ledger.

A report is a CSV with the columns ``external_id, amount, fee, currency,
date`` (others are ignored: gateways add their own). It is read whole and
refused whole: one malformed row and nothing is written, with a report naming
every bad cell by line and column, as the merchant import does.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from core import audit, trail
from core.dates import day_start
from core.exceptions import DomainError
from core.models import User
from core.money import minor_units, validate_currency, validate_scale
from settlements.models import (
    Reconciliation,
    ReconciliationItem,
    Transaction,
    TransactionSource,
)

COLUMNS = ("external_id", "amount", "fee", "currency", "date")
MAX_ROWS = 50_000
MAX_BYTES = 10 * 1024 * 1024
# AmountField: 20 digits, 4 of them decimals.
AMOUNT_LIMIT = Decimal(10) ** 16
# Ledger lookups by external id go in chunks that stay under the smallest
# bound-parameter limit of the supported databases (SQLite's 999).
ID_BATCH = 900

Outcome = ReconciliationItem.Outcome


@dataclass(frozen=True)
class RowError:
    line: int  # as an editor shows it: the header is line 1
    column: str
    message: str


class ReportRejected(DomainError):
    """The report cannot be used; ``errors`` names each bad cell."""

    def __init__(self, message: str, errors: list[RowError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


@dataclass(frozen=True)
class _Row:
    line: int
    external_id: str
    amount: Decimal
    fee: Decimal
    currency: str
    day: date


# ---------------------------------------------------------------------------
# Reading the report
# ---------------------------------------------------------------------------


def decode(raw: bytes) -> str:
    """UTF-8 text of an uploaded report (a spreadsheet's BOM is dropped)."""
    if len(raw) > MAX_BYTES:
        raise ReportRejected(_("The file is larger than 10 MB; split it into smaller files."))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReportRejected(_("The file is not UTF-8 text; save it as CSV UTF-8.")) from exc


def parse_report(text: str) -> list[_Row]:
    """Every row of the report, or ``ReportRejected`` listing every bad cell."""
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise ReportRejected(_("The file is larger than 10 MB; split it into smaller files."))
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise ReportRejected(_("The file is empty; the first line must name the columns."))
    names = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise ReportRejected(
            _("The file lacks the column(s): %(cols)s. Expected: %(all)s.")
            % {"cols": ", ".join(missing), "all": ", ".join(COLUMNS)}
        )
    position = {c: names.index(c) for c in COLUMNS}

    rows: list[_Row] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    count = 0
    for record in reader:
        if not any(cell.strip() for cell in record):
            continue  # blank lines are not rows
        count += 1
        if count > MAX_ROWS:
            raise ReportRejected(_("At most %(n)d rows per file.") % {"n": MAX_ROWS})
        line = reader.line_num
        cells = {c: (record[i].strip() if i < len(record) else "") for c, i in position.items()}
        row, row_errors = _parse_row(line, cells, seen)
        if row_errors:
            errors += row_errors
        else:
            rows.append(row)
            seen[row.external_id] = line
    if errors:
        raise ReportRejected(
            _("%(n)d row(s) of the report are not valid; nothing was written.")
            % {"n": len({e.line for e in errors})},
            errors,
        )
    if not rows:
        raise ReportRejected(_("The file has a header but no rows."))
    return rows


def _parse_row(
    line: int, cells: dict[str, str], seen: dict[str, int]
) -> tuple[_Row | None, list[RowError]]:
    errors: list[RowError] = []

    def fail(column: str, message: str) -> None:
        errors.append(RowError(line, column, message))

    external_id = cells["external_id"]
    if not external_id:
        fail("external_id", _("This field is required."))
    elif len(external_id) > 100:
        fail("external_id", _("At most 100 characters."))
    elif external_id in seen:
        fail("external_id", _("Same external id as line %(line)d.") % {"line": seen[external_id]})

    currency = cells["currency"].upper()
    if not currency:
        fail("currency", _("This field is required."))
    else:
        try:
            validate_currency(currency)
        except ValidationError as exc:
            fail("currency", " ".join(exc.messages))
            currency = ""

    amounts: dict[str, Decimal] = {}
    for column in ("amount", "fee"):
        value = cells[column].replace(",", "")
        if not value:
            fail(column, _("This field is required."))
            continue
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            fail(column, _("“%(value)s” is not a number.") % {"value": cells[column]})
            continue
        if abs(number) >= AMOUNT_LIMIT:
            fail(column, _("The amount is too large."))
            continue
        if currency:
            try:
                validate_scale(number, currency)
            except ValidationError as exc:
                fail(column, " ".join(exc.messages))
                continue
        amounts[column] = number

    day = None
    if not cells["date"]:
        fail("date", _("This field is required."))
    else:
        try:
            day = parse_date(cells["date"])
        except ValueError:
            day = None
        if day is None:
            fail(
                "date",
                _("“%(value)s” is not a date; use YYYY-MM-DD.") % {"value": cells["date"]},
            )
    if errors:
        return None, errors
    return _Row(line, external_id, amounts["amount"], amounts["fee"], currency, day), []


# ---------------------------------------------------------------------------
# Comparing with the ledger
# ---------------------------------------------------------------------------


def _day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """From the start of ``first`` to the start of the day after ``last``, local time."""
    return day_start(first), day_start(last + timedelta(days=1))


def _ledger(
    source: TransactionSource, ids: list[str], start: datetime, end: datetime
) -> tuple[dict[str, Transaction], list[Transaction]]:
    """The source's transactions named by the report, and those of its days.

    One query for the report's days (nearly always every transaction the
    report names too), then lookups in batches for the ids it did not hold:
    never one query per row.
    """
    fields = ("id", "external_id", "amount", "fee", "currency", "status", "occurred_at")
    in_window = list(
        Transaction.objects.filter(source=source, occurred_at__gte=start, occurred_at__lt=end).only(
            *fields
        )
    )
    by_id = {t.external_id: t for t in in_window}
    rest = [i for i in ids if i not in by_id]
    for at in range(0, len(rest), ID_BATCH):
        batch = rest[at : at + ID_BATCH]
        for t in Transaction.objects.filter(source=source, external_id__in=batch).only(*fields):
            by_id[t.external_id] = t
    return by_id, in_window


def _differences(row: _Row, ledger: Transaction) -> list[str]:
    parts = []
    if row.amount != ledger.amount:
        parts.append(
            _("amount: report %(report)s, ledger %(ledger)s")
            % {"report": row.amount, "ledger": _shown(ledger.amount, ledger.currency)}
        )
    if row.fee != ledger.fee:
        parts.append(
            _("fee: report %(report)s, ledger %(ledger)s")
            % {"report": row.fee, "ledger": _shown(ledger.fee, ledger.currency)}
        )
    if row.currency != ledger.currency:
        parts.append(
            _("currency: report %(report)s, ledger %(ledger)s")
            % {"report": row.currency, "ledger": ledger.currency}
        )
    return parts


def _shown(amount: Decimal, currency: str) -> str:
    """A ledger amount with its currency's minor digits, and any further ones it has."""
    exponent = amount.normalize().as_tuple().exponent
    places = max(minor_units(currency), -exponent if isinstance(exponent, int) else 0)
    return f"{amount:.{places}f}"


@transaction.atomic
def reconciliation_upload(
    *, actor: User, source: TransactionSource, filename: str, text: str
) -> Reconciliation:
    """Compare a gateway settlement report with the ledger of ``source``.

    Needs ``add_reconciliation``. Each report row is matched, an amount
    mismatch (amount, fee or currency differ), or missing from the ledger.
    Settled ledger transactions whose local date lies within the report's
    first and last dates but that the report lacks are missing from the
    report; pending and failed ones are left out, since a settlement report
    lists only money that moved. Refused whole (``ReportRejected``) when any
    row is malformed.
    """
    if not actor.has_perm("settlements.add_reconciliation"):
        raise PermissionDenied
    rows = parse_report(text)
    first, last = min(r.day for r in rows), max(r.day for r in rows)
    start, end = _day_bounds(first, last)
    by_id, in_window = _ledger(source, [r.external_id for r in rows], start, end)

    reconciliation = Reconciliation(
        source=source,
        filename=filename[:200],
        date_from=first,
        date_to=last,
        row_count=len(rows),
        uploaded_by=actor,
    )
    items: list[ReconciliationItem] = []
    for row in rows:
        ledger = by_id.get(row.external_id)
        item = ReconciliationItem(
            external_id=row.external_id,
            transaction=ledger,
            report_amount=row.amount,
            report_fee=row.fee,
            report_currency=row.currency,
            report_date=row.day,
        )
        if ledger is None:
            item.outcome = Outcome.MISSING_IN_LEDGER
            reconciliation.missing_in_ledger += 1
        elif differences := _differences(row, ledger):
            item.outcome = Outcome.AMOUNT_MISMATCH
            item.detail = "; ".join(differences)[:300]
            reconciliation.mismatched += 1
        else:
            item.outcome = Outcome.MATCHED
            reconciliation.matched += 1
        items.append(item)
    reported = {r.external_id for r in rows}
    for ledger in in_window:
        if ledger.external_id in reported or ledger.status not in Transaction.COUNTED_STATUSES:
            continue
        items.append(
            ReconciliationItem(
                outcome=Outcome.MISSING_IN_REPORT,
                external_id=ledger.external_id,
                transaction=ledger,
                detail=_("ledger: %(amount)s %(currency)s, fee %(fee)s, on %(day)s")
                % {
                    "amount": _shown(ledger.amount, ledger.currency),
                    "currency": ledger.currency,
                    "fee": _shown(ledger.fee, ledger.currency),
                    "day": timezone.localtime(ledger.occurred_at, start.tzinfo).date(),
                },
            )
        )
        reconciliation.missing_in_report += 1

    audit.stamp(reconciliation, actor=actor, reason="uploaded")
    reconciliation.save()
    for item in items:
        item.reconciliation = reconciliation
    trail.bulk_create_with_history(
        items, ReconciliationItem, batch_size=500, actor=actor, reason="uploaded"
    )
    return reconciliation


# ---------------------------------------------------------------------------
# Resolving an item
# ---------------------------------------------------------------------------


@transaction.atomic
def reconciliation_item_resolve(
    *, actor: User, item: ReconciliationItem, note: str
) -> ReconciliationItem:
    """Close a difference with a note saying why. Locks the item: resolved once."""
    if not actor.has_perm("settlements.change_reconciliationitem"):
        raise PermissionDenied
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": _("Say how this difference was settled.")})
    item = ReconciliationItem.objects.select_for_update().get(pk=item.pk)
    if item.outcome == Outcome.MATCHED:
        raise DomainError(_("A matched item needs no resolution."))
    if item.resolved_at is not None:
        raise DomainError(_("This item is already resolved."))
    item.resolved_by, item.resolved_at, item.resolution_note = actor, timezone.now(), note
    audit.stamp(item, actor=actor, reason="resolved")
    item.save(update_fields=["resolved_by", "resolved_at", "resolution_note", "updated_at"])
    return item
