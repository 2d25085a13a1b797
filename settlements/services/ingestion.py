"""Ledger writes: transactions arriving in batches, from every door.

The API batch endpoint, the gateway webhook, the CSV import and commands all
call ``transactions_ingest``, so one set of rules decides what the ledger
accepts. Items are checked in plain Python (a serializer per item would cost
more than the database work); the rows are written with
``INSERT ... ON CONFLICT DO NOTHING``, a part of the batch per statement,
without instantiating a model per row, and one audit entry per batch names
the new rows with a keyed digest over their content (the ledger keeps no
per-row history copy: see ``Transaction``). On PostgreSQL the parts go
through psycopg's pipeline mode: the server inserts one part while Python
checks the next and digests the one before, so the batch costs about the
larger of the two instead of their sum.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit, auditkeys, trail
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


@dataclass
class IngestReport:
    created: int = 0
    already_present: int = 0
    rejected: int = 0
    errors: list[ItemError] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)


def transactions_check(*, source: TransactionSource, items: list) -> CheckedItems:
    """Apply every rule to ``items`` without writing; one query for the merchants."""
    return _checker(source, items).run()


def _checker(source: TransactionSource, items: list) -> ItemChecker:
    if not source.is_active:
        raise ValidationError({"source": _("This transaction source is not active.")})
    if not isinstance(items, list):
        raise ValidationError({"items": _("Send a list of transactions.")})
    if len(items) > MAX_ITEMS:
        raise ValidationError(
            {"items": _("At most %(n)d transactions per batch.") % {"n": MAX_ITEMS}}
        )
    return ItemChecker(source=source, items=items)


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
    checker = _checker(source, items)
    checker.known  # the merchants' query, before the transaction  # noqa: B018
    ctx = audit.current()
    now = timezone.now()
    reason = (ctx.reason or f"ingest {source.code}")[:300]
    # Sorted by external id, so two batches sharing items take the unique
    # index's locks in the same order and wait for each other instead of
    # deadlocking. The key is the external id as checking cleans it.
    order = sorted(range(len(items)), key=lambda index: _order_key(items[index]))
    valid = 0
    seen: set[str] = set()
    encoding = trail.rows_encoding(_FIELDS)
    with transaction.atomic():
        with _Writer(now) as writer:
            for start in range(0, len(order), _PART):
                rows = []
                for _index, row in checker.check(order[start : start + _PART]):
                    valid += 1
                    # Within a batch the first valid item with an external id
                    # wins; a repeat is the same event delivered twice.
                    if row[1] not in seen:
                        seen.add(row[1])
                        rows.append(row)
                encoding.add(writer.send(rows))
            encoding.add(writer.finish())
        if writer.created:
            entry = _batch_entry(source, writer.stored, encoding, now, actor, reason)
            trail.append_many([entry])
    errors = sorted(checker.errors, key=lambda e: e.index)
    report = IngestReport(rejected=len({e.index for e in errors}), errors=errors)
    created = writer.created
    report.created_ids = [created[key] for key in sorted(created, key=_first_index(items))]
    report.created = len(report.created_ids)
    report.already_present = valid - report.created
    if report.created_ids:
        ids = list(report.created_ids)
        transaction.on_commit(
            lambda: signals.transactions_ingested.send(sender=Transaction, transaction_ids=ids)
        )
    return report


# Items checked and sent to the database at a time: PostgreSQL inserts one
# part while Python checks the next (see _Writer).
_PART = 200


def _order_key(item) -> str:
    """An item's external id as ``_text`` cleans it; "" when it has none."""
    value = item.get("external_id") if isinstance(item, dict) else None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _first_index(items: list):
    """Sort key putting external ids in the order of their first item."""
    first: dict[str, int] = {}
    for index in range(len(items) - 1, -1, -1):
        first[_order_key(items[index])] = index
    return first.__getitem__


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


# The digest's fields in the order of a stored row: its id, then _COLUMNS.
_FIELDS = [Transaction._meta.pk] + [
    next(f for f in Transaction._meta.concrete_fields if f.column == column) for column in _COLUMNS
]
assert {f.attname for f in _FIELDS} == {f.attname for f in trail.digest_fields(Transaction)}  # noqa: S101


def _batch_entry(source, rows: list[tuple], encoding, now, actor, reason: str):
    """The batch's one audit entry: its new rows by id, with their digest
    computed from the values just written (no query, no object per row)."""
    merchants = {row[3] for row in rows}
    entry = trail.new_entry(
        action=trail.Action.CREATE,
        model=Transaction._meta.label_lower,
        object_label=f"{len(rows)} transactions from {source.code}",
        merchant_id=next(iter(merchants)) if len(merchants) == 1 else None,
        changes={
            "rows": [None, len(rows)],
            "source": [None, source.code],
            "merchants": [None, len(merchants)],
        },
        reason=reason,
        actor=actor,
        when=now,
    )
    digest = trail.encoding_digest(encoding, auditkeys.current_id())
    return trail.prove_rows(entry, Transaction, [r[0] for r in rows], digest)


class _Writer:
    """Inserts a batch's rows a part at a time, skipping those the ledger holds.

    ``send(rows)`` hands over a part and returns the previous part's stored
    rows, ``finish()`` the last part's: each as ``(id, *row, now, now)`` in
    id order, the values the digest covers. On PostgreSQL the parts go
    through psycopg's pipeline mode, so the server inserts one part while
    Python checks the next and digests the one before; elsewhere each part
    is written when sent.
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.created: dict[str, int] = {}  # external_id: new id
        self.stored: list[tuple] = []  # every stored row, in the order returned
        self.pending: tuple[list[tuple], dict[str, int] | None] | None = None
        self.cursor = None  # PostgreSQL: a server-side binding cursor in pipeline mode
        self.stack = ExitStack()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc) -> None:
        with connection.wrap_database_errors:
            self.stack.__exit__(*exc)

    def send(self, rows: list[tuple]) -> list[tuple]:
        done = self._collect()
        if rows:
            if connection.vendor == "postgresql":
                self._send_postgresql(rows)
                self.pending = (rows, None)
            else:
                self.pending = (rows, _insert_values(rows, self.now))
        return done

    def finish(self) -> list[tuple]:
        return self._collect()

    def _collect(self) -> list[tuple]:
        if self.pending is None:
            return []
        rows, result = self.pending
        self.pending = None
        if result is None:
            with connection.wrap_database_errors:
                result = {external_id: pk for pk, external_id in self.cursor.fetchall()}
        stored = sorted(
            ((result[row[1]], *row, self.now, self.now) for row in rows if row[1] in result),
            key=_first,
        )
        self.created.update(result)
        self.stored += stored
        return stored

    def _send_postgresql(self, rows: list[tuple]) -> None:
        with connection.wrap_database_errors:
            if self.cursor is None:
                import psycopg  # the PostgreSQL driver; not needed elsewhere

                connection.ensure_connection()
                raw = connection.connection
                # Server-side binding: the packed columns travel as
                # parameters, not quoted into the statement's text. Left
                # after the pipeline, which ends by collecting every result.
                self.cursor = self.stack.enter_context(psycopg.Cursor(raw))
                self.stack.enter_context(raw.pipeline())
            packed = []
            for values in zip(*rows, strict=True):
                packed += [_SEPARATOR.join(map(str, values)) + _SEPARATOR, _SEPARATOR, len(rows)]
            self.cursor.execute(_insert_sql(), [self.now, self.now, *packed])


def _first(row: tuple):
    return row[0]


@functools.cache
def _insert_sql() -> str:
    quote = connection.ops.quote_name

    def db_type(column: str) -> str:
        field = next(f for f in Transaction._meta.concrete_fields if f.column == column)
        return field.db_type(connection)

    # Each column travels as one text of its values joined by a separator
    # that _text keeps out of every value, and PostgreSQL splits and casts
    # it: quoting or packing a thousand parameters one by one costs the
    # client more than the database spends on the insert. The trailing
    # separator and the slice keep a lone empty value from becoming no value.
    arrays = ", ".join(f"((string_to_array(%s, %s))[1:%s])::{db_type(c)}[]" for c in _COLUMNS[:-2])
    stamp = f"%s::{db_type('created_at')}"
    return (
        f"INSERT INTO {quote(Transaction._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(c) for c in _COLUMNS)}) "
        f"SELECT u.*, {stamp}, {stamp} FROM unnest({arrays}) AS u "
        f"{_ON_CONFLICT} RETURNING id, external_id"
    )


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
    limit = connection.features.max_query_params
    per_statement = MAX_ITEMS if not limit else max(1, limit // len(_COLUMNS))
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
