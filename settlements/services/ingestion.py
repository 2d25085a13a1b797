"""Ledger writes: transactions arriving in batches, from every door.

The API batch endpoint, the gateway webhook, the CSV import and commands all
call ``transactions_ingest``, so one set of rules decides what the ledger
accepts. Items are checked in plain Python (a serializer per item would cost
more than the database work); the rows are then written with one
``INSERT ... ON CONFLICT DO NOTHING`` and their history copied with one
``INSERT ... SELECT``, without instantiating a model per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit, trail
from core.models import User
from settlements import signals
from settlements.models import Transaction, TransactionSource
from settlements.services.ledger_rules import (
    _COLUMNS,
    _SEPARATOR,
    MAX_ITEMS,
    CheckedItems,
    ItemChecker,
    ItemError,
)

_HISTORY_OWN = ("history_date", "history_change_reason", "history_type", "history_user_id",
                "history_origin")  # fmt: skip


@dataclass
class IngestReport:
    created: int = 0
    already_present: int = 0
    rejected: int = 0
    errors: list[ItemError] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)


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
    return ItemChecker(source=source, items=items).run()


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
        trail.append_many(
            [
                trail.new_entry(
                    action=trail.Action.CREATE,
                    model=Transaction._meta.label_lower,
                    object_id=created[row[1]],
                    object_label=f"{source.code} {row[1]}",
                    merchant_id=row[2],
                    changes=trail.row_changes(Transaction, _COLUMNS[: len(row)], row),
                    reason=stamp.reason,
                    actor=actor,
                    when=stamp.date,
                )
                for _index, row in ordered
                if row[1] in created
            ]
        )
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
