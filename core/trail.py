"""The compliance audit trail: one authenticated line per change, sign-in, grant…

Writing: every simple-history row appends an :class:`AuditEntry` from the
``post_create_historical_record`` signal (:func:`append_from_history`) that
names the history row and carries its keyed digest; bulk paths (ledger
ingestion, settlement calculation, reconciliation) write **one entry per
batch** naming its rows by id with a keyed digest over their content
(:func:`rows_entry`). Every entry is complete when inserted: the application
allocates its id and computes its MAC (HMAC-SHA256 under a key derived from
``AUDIT_SIGNING_KEY``, see :mod:`core.auditkeys`), so someone with the
database but not the key can neither forge an entry nor edit one.

Sealing: after a writing transaction commits, :func:`seal` takes a lock (a
PostgreSQL advisory lock held for the assignment only; SQLite has one writer)
and inserts one :class:`AuditSeal` covering every entry of the transactions
that have ended since the previous seal, in (transaction, id) order, with a
keyed link to the previous seal. Entries are never rewritten; writers never
wait for each other. Beat's sweep seals whatever a dead writer left.

Checking is in :mod:`core.trailcheck`; checkpoints outside the database in
:mod:`core.checkpoints`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import operator
import re
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from guardian.models.models import BaseObjectPermission, GroupObjectPermissionBase

from core import audit, auditkeys
from core.crypto import EncryptedTextField
from core.models import AuditEntry, AuditSeal, AuthEvent, SensitiveAccess

Action = AuditEntry.Action
logger = logging.getLogger(__name__)
GENESIS = "0" * 64
MASK = "••••"
# Held while sealing; any 64-bit number no other part of the system uses.
_SEAL_LOCK = 0x5041_5943_524D_0A01
# Names that are secrets whatever their field type: shown as changed, never in clear.
_SECRET_NAME = re.compile(
    r"(secret|password|token|otp|fingerprint|_hash$|^key$|_key$)", re.IGNORECASE
)
# Bookkeeping columns that every save touches: not news to an auditor.
_NOISE = {"updated_at"}
# What an entry's MAC covers: every column but the MAC itself, the order key
# the database stamps and the columns of the earlier chain.
_MACED = (
    "id", "created_at", "actor_id", "actor_label", "actor_kind", "origin", "ip_address",
    "user_agent", "action", "success", "model", "object_id", "object_label", "merchant_id",
    "changes", "reason", "row_model", "row_ids", "row_first", "row_last", "row_digest",
    "key_id",
)  # fmt: skip
# The earlier, unkeyed chain's content (entries written before the keyed format).
_LEGACY_HASHED = (
    "id", "seq", "created_at", "actor_id", "actor_label", "actor_kind", "origin",
    "ip_address", "user_agent", "action", "success", "model", "object_id", "object_label",
    "merchant_id", "changes", "reason",
)  # fmt: skip
_FAILURES = {
    AuthEvent.Kind.SIGN_IN_FAILED,
    AuthEvent.Kind.SECOND_FACTOR_FAILED,
    AuthEvent.Kind.LOCKED_OUT,
}


# ---------------------------------------------------------------------------
# Canonical form and hash
# ---------------------------------------------------------------------------


def timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _getter(entry: AuditEntry | dict):
    return entry.get if isinstance(entry, dict) else lambda name: getattr(entry, name)


def content(entry: AuditEntry | dict) -> dict[str, Any]:
    """What an entry's MAC covers, as JSON-stable values."""
    get = _getter(entry)
    out = {name: get(name) for name in _MACED}
    if isinstance(out["created_at"], dt.datetime):
        out["created_at"] = timestamp(out["created_at"])
    return out


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_mac(entry: AuditEntry | dict) -> str | None:
    """The entry's MAC under its own key id; None when that key is unknown here."""
    return auditkeys.mac(
        "entry", _getter(entry)("key_id"), b"entry/2\n" + canonical(content(entry))
    )


def is_legacy(entry: AuditEntry | dict) -> bool:
    return _getter(entry)("seq") is not None


def legacy_hash(prev_hash: str, entry: AuditEntry | dict) -> str:
    """The earlier format's unkeyed link: SHA-256(prev_hash + content)."""
    get = _getter(entry)
    data = {name: get(name) for name in _LEGACY_HASHED}
    if isinstance(data["created_at"], dt.datetime):
        data["created_at"] = timestamp(data["created_at"])
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(data)).hexdigest()


# ---------------------------------------------------------------------------
# Digests of the records an entry proves
# ---------------------------------------------------------------------------
#
# An entry proves its rows with one keyed digest over their content:
# HMAC-SHA256 (the ``record`` key of the entry's key id) of ``record/3``,
# then, for each column in name order, its name, the length of every row's
# value (``n`` for NULL) and the values themselves, rows in primary key
# order. The lengths make the encoding unambiguous whatever the values hold.
# A column NULL in every row is left out, so a nullable column added later
# does not change the digests of rows written before it. The encoding is
# built column by column, mostly by C-level ``map`` and ``join``: ingestion
# digests every ledger row it writes.

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


@functools.cache
def _coder(field: models.Field):
    """The text a column's value is digested as, the same whether it comes
    from an object in memory or from the database."""
    target = field.target_field if field.is_relation and field.many_to_one else field
    if isinstance(target, models.DecimalField):
        exponent = Decimal(1).scaleb(-target.decimal_places)

        def decimal(value):
            if not isinstance(value, Decimal):
                value = target.to_python(value)
            # Rounded as PostgreSQL rounds a value with too many places. With
            # a negative exponent, str() writes plain digits, as format "f".
            return str(value.quantize(exponent, ROUND_HALF_UP))

        return decimal
    if isinstance(target, models.DateTimeField):
        # The last value and its code, as one tuple: read and replaced whole,
        # so threads sharing the coder never pair a value with another's code.
        last: list[tuple] = [(None, "")]

        def moment(value):
            seen, code = last[0]
            if value is seen:  # a batch's rows share their created_at
                return code
            when = value if isinstance(value, dt.datetime) else target.to_python(value)
            if timezone.is_naive(when):
                when = timezone.make_aware(when)
            code = str((when - _EPOCH) // _MICROSECOND)
            last[0] = (value, code)
            return code

        return moment
    if isinstance(target, models.DateField):
        return lambda v: target.to_python(v).isoformat()
    if isinstance(target, models.BooleanField):
        return lambda v: "1" if target.to_python(v) else "0"
    if isinstance(target, models.IntegerField | models.AutoField):
        return _integer
    if isinstance(target, models.JSONField):
        return lambda v: canonical(v).decode()
    if isinstance(target, models.BinaryField):
        return lambda v: bytes(v).hex()
    return str


def _integer(value) -> str:
    return str(int(value))


_is_none = functools.partial(operator.is_, None)


def _coded(code, values: Sequence[Any]) -> tuple[list[str], list[str]]:
    """A column's values as digested and their lengths (``n`` for NULL)."""
    if any(map(_is_none, values)):  # not ``None in``: it compares every value
        coded = ["" if v is None else code(v) for v in values]
        lengths = ["n" if v is None else str(len(c)) for v, c in zip(values, coded, strict=True)]
    else:
        # Integers without a Python call per value.
        coded = list(map(str, map(int, values)) if code is _integer else map(code, values))
        lengths = list(map(_LENGTHS.__getitem__, map(len, coded)))
    return coded, lengths


class _Numbers(dict):
    """Lengths as text, the usual ones made once."""

    def __missing__(self, length: int) -> str:
        return str(length)


_LENGTHS = _Numbers((n, str(n)) for n in range(4096))


class _Digester:
    """How rows given as values in ``fields`` order are digested."""

    def __init__(self, fields: Sequence[models.Field]) -> None:
        self.pk_at = [f.primary_key for f in fields].index(True)
        self.plan = sorted(
            ((i, f.attname, _coder(f)) for i, f in enumerate(fields)), key=lambda p: p[1]
        )

    def encode(self, rows: Sequence[Sequence[Any]]) -> bytes:
        encoding = RowsEncoding(self)
        encoding.add(sorted(rows, key=lambda row: row[self.pk_at]))
        return encoding.finish()


class RowsEncoding:
    """A digest's encoding built from rows given a part at a time, each part
    after the last in primary key order: ingestion encodes one part while
    the database inserts the next. The same bytes as one ``encode``."""

    def __init__(self, digester: _Digester) -> None:
        self.digester = digester
        self.coded: list[list[str]] = [[] for _ in digester.plan]
        self.lengths: list[list[str]] = [[] for _ in digester.plan]
        self.present = [False] * len(digester.plan)  # a non-NULL value seen
        self.parts: list[Sequence[Sequence[Any]]] = []
        self.ordered = True
        self.last_pk: Any = None

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        """Rows in primary key order, after every row added before."""
        if not rows:
            return
        pk_at = self.digester.pk_at
        if self.last_pk is not None and rows[0][pk_at] <= self.last_pk:
            self.ordered = False
        self.last_pk = rows[-1][pk_at]
        self.parts.append(rows)
        if not self.ordered:
            return  # finish() encodes them all at once, sorted
        columns = list(zip(*rows, strict=True))
        for at, (index, _name, code) in enumerate(self.digester.plan):
            values = columns[index]
            coded, lengths = _coded(code, values)
            self.coded[at] += coded
            self.lengths[at] += lengths
            if not self.present[at] and any(v is not None for v in values):
                self.present[at] = True

    def finish(self) -> bytes:
        if not self.ordered:
            rows = [row for part in self.parts for row in part]
            return self.digester.encode(rows)
        parts = ["record/3\n"]
        for at, (_index, name, _code) in enumerate(self.digester.plan):
            if self.present[at]:
                parts.append(
                    f"{name}\x00{','.join(self.lengths[at])}\x00{''.join(self.coded[at])}\x00"
                )
        return "".join(parts).encode()


_DIGESTERS: dict[tuple, _Digester] = {}


def _digester(fields: Sequence[models.Field]) -> _Digester:
    key = tuple(fields)
    found = _DIGESTERS.get(key)
    if found is None:
        found = _DIGESTERS[key] = _Digester(fields)
    return found


def digest_fields(model) -> list[models.Field]:
    return list(model._meta.concrete_fields)


def values_digest(fields: Sequence[models.Field], rows: Sequence[Sequence], key_id: str) -> str:
    """Keyed digest of rows given as values in ``fields`` order (the primary
    key among them); "" for no rows or an unknown key. Keyed, so that a
    digest beside an encrypted value cannot be brute-forced."""
    if not rows:
        return ""
    return auditkeys.mac("record", key_id, _digester(fields).encode(rows)) or ""


def rows_encoding(fields: Sequence[models.Field]) -> RowsEncoding:
    """An encoding to give rows a part at a time; see :func:`encoding_digest`."""
    return RowsEncoding(_digester(fields))


def encoding_digest(encoding: RowsEncoding, key_id: str) -> str:
    """``values_digest`` of every row given to ``encoding``."""
    if not encoding.parts:
        return ""
    return auditkeys.mac("record", key_id, encoding.finish()) or ""


def objects_digest(objs: Sequence[models.Model], key_id: str) -> str:
    """The same over stored objects, from the objects in memory."""
    if not objs:
        return ""
    fields = digest_fields(type(objs[0]))
    names = [f.attname for f in fields]
    return values_digest(fields, [[getattr(o, n) for n in names] for o in objs], key_id)


def shown_value(field: models.Field, value: Any) -> Any:
    """A column's value as ``--records`` compares and reports it: the same
    from an object in memory or from the database."""
    if value is None:
        return None
    target = field.target_field if field.is_relation and field.many_to_one else field
    if isinstance(target, models.DateTimeField):
        value = target.to_python(value)
        return timestamp(timezone.make_aware(value) if timezone.is_naive(value) else value)
    if isinstance(target, models.BooleanField):
        return bool(target.to_python(value))
    if isinstance(target, models.IntegerField | models.AutoField):
        return int(value)
    return _coder(field)(value)


def id_ranges(ids: Iterable[int]) -> list[list[int]]:
    """Sorted ids as ``[[first, last], ...]`` runs."""
    out: list[list[int]] = []
    for pk in sorted(ids):
        if out and pk == out[-1][1] + 1:
            out[-1][1] = pk
        else:
            out.append([pk, pk])
    return out


def ids_of(ranges: Iterable[Sequence[int]]) -> Iterable[int]:
    for first, last in ranges:
        yield from range(first, last + 1)


# ---------------------------------------------------------------------------
# Building entries
# ---------------------------------------------------------------------------


def is_masked(field: models.Field | None, name: str) -> bool:
    return isinstance(field, EncryptedTextField) or bool(_SECRET_NAME.search(name))


def render(value: Any) -> Any:
    """A value as the trail stores it: JSON-stable, no floats, no objects."""
    if value is None or isinstance(value, bool | int | str):
        return value.replace("\x00", "") if isinstance(value, str) else value
    if isinstance(value, dt.datetime):
        return timestamp(value) if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, dt.date | Decimal | float):
        return str(value)
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, list | tuple):
        return json.dumps([render(v) for v in value], sort_keys=True, default=str)
    return str(value)


def _shown(field: models.Field | None, name: str, value: Any) -> Any:
    if value in (None, ""):
        return None
    return MASK if is_masked(field, name) else render(value)


def _is_fk(field: models.Field | None) -> bool:
    return field is not None and (field.many_to_one or field.one_to_one)


def _related_label(obj, pk) -> str:
    return f"{_label(obj)} (#{pk})" if obj is not None else f"#{pk}"


def snapshot_changes(
    instance, fields: Iterable[models.Field], *, deleted: bool = False, resolve: bool = True
) -> dict:
    """Every non-empty tracked value as ``[None, value]`` (or ``[value, None]``).

    A foreign key reads as the related record's label and id, fetched when
    the instance does not hold it; bulk paths pass ``resolve=False`` and get
    the id alone.
    """
    out = {}
    for field in fields:
        if field.name in _NOISE or field.primary_key:
            continue
        raw = getattr(instance, field.attname, None)
        if _is_fk(field) and raw is not None and not is_masked(field, field.name):
            if not resolve:
                # Bulk paths: even a related object in memory may be a partial
                # one whose label would load the rest, a query per row.
                value = f"#{raw}"
            elif field.is_cached(instance):
                value = _related_label(getattr(instance, field.name), raw)
            else:
                related = field.related_model._base_manager.filter(pk=raw).first()
                value = _related_label(related, raw)
        else:
            value = _shown(field, field.name, raw)
        if value is not None:
            out[field.name] = [value, None] if deleted else [None, value]
    return out


def row_changes(model, columns: Iterable[str], values: Iterable[Any]) -> dict:
    """``snapshot_changes`` for a row held as column values (raw SQL paths)."""
    by_column = {f.column: f for f in model._meta.concrete_fields}
    out = {}
    for column, value in zip(columns, values, strict=True):
        field = by_column[column]
        if field.name in _NOISE or field.name == "created_at":
            continue
        shown = (
            f"#{value}" if _is_fk(field) and value is not None else _shown(field, field.name, value)
        )
        if shown is not None:
            out[field.name] = [None, shown]
    return out


def _diff(history_instance) -> dict:
    previous = history_instance.prev_record
    if previous is None:
        return snapshot_changes(history_instance, history_instance.tracked_fields)
    fields = {f.name: f for f in history_instance.tracked_fields}
    out = {}
    for change in history_instance.diff_against(previous, foreign_keys_are_objs=False).changes:
        if change.field in _NOISE:
            continue
        field = fields.get(change.field)
        if field is None and isinstance(change.new, list):  # many-to-many
            out[change.field] = _m2m_names(history_instance, change)
            continue
        if _is_fk(field) and not is_masked(field, change.field):
            found = field.related_model._base_manager.in_bulk(
                [pk for pk in (change.old, change.new) if pk is not None]
            )
            out[change.field] = [
                None if pk is None else _related_label(found.get(pk), pk)
                for pk in (change.old, change.new)
            ]
            continue
        out[change.field] = [
            _shown(field, change.field, change.old),
            _shown(field, change.field, change.new),
        ]
        if out[change.field][0] == out[change.field][1] == MASK:
            out[change.field] = [MASK, MASK + " (changed)"]
    return out


def _m2m_names(history_instance, change) -> list[str]:
    """A many-to-many change (a user's groups…) as the related objects' names,
    not simple-history's rows of ids."""
    model = history_instance.instance_type
    related = model._meta.get_field(change.field).related_model
    own = model._meta.model_name

    def ids(rows: list[dict]) -> list:
        return [v for row in rows for k, v in row.items() if k != own]

    wanted = set(ids(change.old)) | set(ids(change.new))
    names = {obj.pk: str(obj) for obj in related._default_manager.filter(pk__in=wanted)}

    def shown(rows: list[dict]) -> str:
        return ", ".join(sorted(names.get(pk, f"#{pk}") for pk in ids(rows)))

    return [shown(change.old), shown(change.new)]


def merchant_of(instance) -> int | None:
    """The merchant a record belongs to: ``audit_merchant_id`` if the model
    defines one (the merchant itself, records reached through a parent),
    else its ``merchant_id`` column."""
    if hasattr(type(instance), "audit_merchant_id"):
        return instance.audit_merchant_id
    value = getattr(instance, "merchant_id", None)
    return value if isinstance(value, int) else None


def _label(instance) -> str:
    try:
        return str(instance)[:200]
    except Exception:  # a __str__ reaching a deleted parent must not lose the entry
        return f"{instance._meta.verbose_name} #{instance.pk}"


def _actor(actor, origin: str) -> dict[str, Any]:
    if origin.startswith("webhook"):
        kind = AuditEntry.ActorKind.API_KEY
    elif actor is None or actor.username == settings.SYSTEM_USERNAME:
        kind = AuditEntry.ActorKind.SYSTEM
    else:
        kind = AuditEntry.ActorKind.USER
    label = actor.username if actor is not None else ""
    if kind == AuditEntry.ActorKind.API_KEY:
        label = origin.removeprefix("webhook").strip() or label
    return {"actor": actor, "actor_label": label[:150], "actor_kind": kind}


def new_entry(
    *,
    action: str,
    model: str,
    object_id: Any = "",
    object_label: str = "",
    merchant_id: int | None = None,
    changes: dict | None = None,
    reason: str = "",
    success: bool = True,
    actor: Any = "context",
    when: dt.datetime | None = None,
) -> AuditEntry:
    """An unsaved entry with the current actor, origin, address and browser."""
    ctx = audit.current()
    who = audit.current_actor() if actor == "context" else actor
    return AuditEntry(
        created_at=when or timezone.now(),
        **_actor(who, ctx.origin),
        origin=ctx.origin[:255],
        ip_address=ctx.ip or None,
        user_agent=ctx.user_agent[:300],
        action=action,
        success=success,
        model=model,
        object_id=str(object_id or "")[:64],
        object_label=object_label[:200],
        merchant_id=merchant_id,
        changes=changes or {},
        reason=(reason or ctx.reason)[:300],
    )


# ---------------------------------------------------------------------------
# Appending
# ---------------------------------------------------------------------------


def _allocate_ids(count: int) -> list[int]:
    """Ids for entries about to be written, so that their MACs can cover them.

    PostgreSQL: from the table's sequence. SQLite: after the highest id ever
    given, inside the caller's transaction, which holds SQLite's one write
    lock (``transaction_mode`` IMMEDIATE), so no one else can take them.
    """
    table = AuditEntry._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, count],
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")  # noqa: S608
        top = cursor.fetchone()[0]
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        top = max(top, row[0] if row else 0)
    return list(range(top + 1, top + 1 + count))


def _authenticate(entries: list[AuditEntry]) -> None:
    key_id = auditkeys.current_id()
    for entry, pk in zip(entries, _allocate_ids(len(entries)), strict=True):
        entry.pk = pk
        entry.key_id = key_id
        entry.mac = entry_mac(entry)


def append(**fields: Any) -> AuditEntry:
    """Write one entry now (exports, reveals, verifications…); see :func:`new_entry`."""
    entry = new_entry(**fields)
    _write([entry])
    return entry


def append_many(entries: list[AuditEntry], *, batch_size: int = 2000) -> None:
    """Write entries with one statement per batch (COPY on PostgreSQL)."""
    if entries:
        _write(entries, batch_size=batch_size)


def _write(entries: list[AuditEntry], *, batch_size: int = 2000) -> None:
    with transaction.atomic():
        _authenticate(entries)
        if connection.vendor == "postgresql":
            _copy(entries)
        else:
            AuditEntry.objects.bulk_create(entries, batch_size=batch_size)
    schedule_seal()


# Columns an entry is written with; txid is the database's to stamp, seq
# stays empty (the earlier chain's), prev_hash and hash blank.
_WRITTEN = [f for f in AuditEntry._meta.concrete_fields if f.name not in ("txid", "seq")]


def _copy(entries: list[AuditEntry]) -> None:
    """PostgreSQL: COPY, in the writer's transaction: binding a batch's
    parameters one by one costs the client more than the insert itself."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _WRITTEN)
    json_fields = {f.attname for f in _WRITTEN if isinstance(f, models.JSONField)}
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            f"COPY {quote(AuditEntry._meta.db_table)} ({columns}) FROM STDIN"
        ) as copy,
    ):
        for entry in entries:
            copy.write_row(
                [
                    json.dumps(getattr(entry, f.attname), ensure_ascii=False)
                    if f.attname in json_fields
                    else getattr(entry, f.attname)
                    for f in _WRITTEN
                ]
            )


def prove_rows(entry: AuditEntry, model, ids: Sequence[int], digest: str) -> AuditEntry:
    """Name the rows ``entry`` proves and their digest (see :func:`objects_digest`)."""
    ranges = id_ranges(ids)
    entry.row_model = model._meta.label_lower
    entry.row_ids = ranges
    entry.row_first = ranges[0][0] if ranges else None
    entry.row_last = ranges[-1][1] if ranges else None
    entry.row_digest = digest
    return entry


def _target(instance) -> models.Model | None:
    try:
        return instance.content_object
    except models.ObjectDoesNotExist:  # revoked along with the record itself
        return None


def _entry_for_special(instance, history_instance, reason: str) -> AuditEntry | None:
    history_type = history_instance.history_type
    if isinstance(instance, AuthEvent) and history_type == "+":
        entry = new_entry(
            action=instance.kind,
            model="core.user",
            object_id=instance.user_id or "",
            object_label=instance.username or (instance.user.username if instance.user else ""),
            changes={"detail": [None, instance.detail]} if instance.detail else {},
            reason=reason,
            success=instance.kind not in _FAILURES,
            actor=instance.user,
        )
        entry.ip_address = instance.ip_address
        entry.user_agent = instance.user_agent or entry.user_agent
        return entry
    if isinstance(instance, SensitiveAccess) and history_type == "+":
        merchant_id = None
        try:
            target_model = instance._meta.apps.get_model(instance.object_label)
            target = target_model._default_manager.filter(pk=instance.object_id).first()
            merchant_id = merchant_of(target) if target is not None else None
        except (LookupError, ValueError):
            target_model = None
        return new_entry(
            action=Action.REVEAL,
            model=instance.object_label,
            object_id=instance.object_id,
            object_label=f"{instance.object_label} #{instance.object_id}",
            merchant_id=merchant_id,
            changes={"field": [None, instance.field]},
            reason=instance.reason or reason,
            actor=instance.user,
        )
    if isinstance(instance, BaseObjectPermission) and history_type in ("+", "-"):
        target = _target(instance)
        holder = instance.group if isinstance(instance, GroupObjectPermissionBase) else None
        holder = holder or getattr(instance, "user", None)
        detail = {
            "permission": instance.permission.codename,
            "group" if isinstance(instance, GroupObjectPermissionBase) else "user": str(holder),
        }
        granted = history_type == "+"
        return new_entry(
            action=Action.PERMISSION_GRANTED if granted else Action.PERMISSION_REVOKED,
            model=target._meta.label_lower if target is not None else "",
            object_id=getattr(target, "pk", "") or "",
            object_label=_label(target) if target is not None else "",
            merchant_id=merchant_of(target) if target is not None else None,
            changes={k: [None, v] if granted else [v, None] for k, v in detail.items()},
            reason=reason,
            actor=history_instance.history_user,
        )
    return None


def append_from_history(sender, instance, history_instance, **kwargs) -> None:
    """``post_create_historical_record`` receiver: one entry per history row
    (except an update row that changed no tracked field, which the records
    check accepts as a copy of its predecessor), naming the row and its digest."""
    actor = history_instance.history_user
    reason = history_instance.history_change_reason or ""
    entry = _entry_for_special(instance, history_instance, reason)
    if entry is None:
        history_type = history_instance.history_type
        if history_type == "+":
            action, changes = (
                Action.CREATE,
                snapshot_changes(instance, history_instance.tracked_fields),
            )
        elif history_type == "-":
            action, changes = (
                Action.DELETE,
                snapshot_changes(instance, history_instance.tracked_fields, deleted=True),
            )
        else:
            action, changes = Action.UPDATE, _diff(history_instance)
            if not changes:
                # A save that changed no tracked field (a sign-in touching only
                # last_login, a repeated save) tells an auditor nothing.
                return
        entry = new_entry(
            action=action,
            model=instance._meta.label_lower,
            object_id=instance.pk,
            object_label=_label(instance),
            merchant_id=merchant_of(instance),
            changes=changes,
            reason=reason,
            actor=actor,
        )
    entry.created_at = history_instance.history_date or entry.created_at
    prove_rows(
        entry,
        type(history_instance),
        [history_instance.pk],
        objects_digest([history_instance], auditkeys.current_id()),
    )
    _write([entry])


def rows_entry(
    *,
    objs: Sequence[models.Model],
    model,
    action: str = Action.CREATE,
    label: str,
    actor: Any,
    reason: str,
    merchant_id: int | None = None,
    changes: dict | None = None,
    when: dt.datetime | None = None,
) -> AuditEntry:
    """One entry for a batch of stored rows (in memory): their ids and a keyed
    digest over their content, no label or query per row."""
    entry = new_entry(
        action=action,
        model=model._meta.label_lower,
        object_label=label,
        merchant_id=merchant_id,
        changes={"rows": [None, len(objs)], **(changes or {})},
        reason=reason,
        actor=actor,
        when=when,
    )
    return prove_rows(
        entry, type(objs[0]), [o.pk for o in objs], objects_digest(objs, auditkeys.current_id())
    )


def bulk_create_with_history(objs: list, model, *, batch_size: int, actor, reason: str) -> list:
    """Insert ``objs`` and their "created" history rows in batches, with one
    audit entry per batch that proves the history rows."""
    history = model.history
    origin = audit.current().origin[:255]
    now = timezone.now()
    with transaction.atomic():
        stored = model.objects.bulk_create(objs, batch_size=batch_size)
        entries = []
        for start in range(0, len(stored), batch_size):
            chunk = stored[start : start + batch_size]
            rows = history.bulk_history_create(
                chunk,
                batch_size=batch_size,
                default_user=actor,
                default_change_reason=reason,
                default_date=now,
                custom_historical_attrs={"history_origin": origin},
            )
            entries.append(
                rows_entry(
                    objs=rows,
                    model=model,
                    label=f"{len(rows)} {model._meta.verbose_name_plural}",
                    actor=actor,
                    reason=reason,
                    when=now,
                )
            )
        append_many(entries)
    return stored


def bulk_delete_with_history(queryset, *, actor, reason: str, batch_size: int = 1000) -> int:
    """Delete the rows of ``queryset`` with one "deleted" history row each and
    one audit entry per batch proving those history rows; returns how many.

    A queryset's own ``delete()`` sends signals for every row, and with them
    a history row, an audit entry and their queries one by one. Here each
    batch is one history insert, one entry and one DELETE. Only the rows
    themselves go: a row another table still references makes the database
    refuse the delete (the foreign keys are checked at commit), as PROTECT
    would.
    """
    model = queryset.model
    history = model.history.model
    names = [f.attname for f in history.tracked_fields]
    origin = audit.current().origin[:255]
    now = timezone.now()
    deleted = 0
    with transaction.atomic():
        objs = list(queryset.order_by("pk"))
        entries = []
        for start in range(0, len(objs), batch_size):
            chunk = objs[start : start + batch_size]
            rows = history.objects.bulk_create(
                [
                    history(
                        history_date=now,
                        history_user=actor,
                        history_change_reason=reason,
                        history_type="-",
                        history_origin=origin,
                        **{name: getattr(obj, name) for name in names},
                    )
                    for obj in chunk
                ],
                batch_size=batch_size,
            )
            entries.append(
                rows_entry(
                    objs=rows,
                    model=model,
                    action=Action.DELETE,
                    label=f"{len(rows)} {model._meta.verbose_name_plural}",
                    actor=actor,
                    reason=reason,
                    when=now,
                )
            )
            # Django's own delete without its per-row collector and signals.
            deleted += model._base_manager.filter(pk__in=[o.pk for o in chunk])._raw_delete(
                queryset.db
            )
        append_many(entries)
    return deleted


# ---------------------------------------------------------------------------
# Sealing
# ---------------------------------------------------------------------------


def schedule_seal() -> None:
    """Seal once the current transaction commits (one callback per transaction)."""
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        _seal_after_commit()
        return
    # Django drops callbacks of a rolled-back savepoint with it, so looking
    # for ours in the queue never leaves a transaction without one.
    if not any(item[1] is _seal_after_commit for item in conn.run_on_commit):
        transaction.on_commit(_seal_after_commit)


def _seal_after_commit() -> None:
    # The change is committed by now: a failure to seal must not turn it into
    # an error for the user. The entry waits for the next sealer (the next
    # write, or beat's audit_trail_seal within a minute).
    try:
        seal()
    except Exception:
        logger.exception("audit trail: sealing failed; left for the next sealer")


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEAL_LOCK])


def covered(low: int, high: int):
    """Entries of the keyed format whose order key lies in ``[low, high)``."""
    entries = AuditEntry.objects.filter(seq__isnull=True)
    if connection.vendor == "postgresql":
        return entries.filter(txid__gte=low, txid__lt=high).order_by("txid", "id")
    return entries.filter(id__gte=low, id__lt=high).order_by("id")


def _high_mark() -> int:
    """The order key below which no entry can still appear."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The oldest transaction still running: every one before it ended.
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            return cursor.fetchone()[0]
        # SQLite: this transaction holds the one write lock; no entry is in flight.
        cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {AuditEntry._meta.db_table}")  # noqa: S608
        return cursor.fetchone()[0]


def entries_digest(pairs: Iterable[tuple[int, str]]) -> str:
    digest = hashlib.sha256()
    for pk, mac in pairs:
        digest.update(f"{pk}:{mac}\n".encode())
    return digest.hexdigest()


_SEAL_FIELDS = ("seq", "created_at", "key_id", "low", "high", "entries", "total", "entry_ids",
                "digest", "prev_mac")  # fmt: skip


def seal_content(seal_row: AuditSeal | dict) -> dict[str, Any]:
    get = _getter(seal_row)
    out = {name: get(name) for name in _SEAL_FIELDS}
    if isinstance(out["created_at"], dt.datetime):
        out["created_at"] = timestamp(out["created_at"])
    return out


def seal_mac(seal_row: AuditSeal | dict) -> str | None:
    return auditkeys.mac(
        "entry", _getter(seal_row)("key_id"), b"seal/2\n" + canonical(seal_content(seal_row))
    )


def chain_start() -> tuple[int, int, str, int]:
    """(seq, high, mac, total) the chain continues from: the last archived
    seal an authentic archive entry names, or the beginning."""
    from core import trailcheck

    anchor = trailcheck.archive_anchor()
    if anchor is None:
        return 0, 0, "", 0
    return anchor["through_seal"], anchor["through_high"], anchor["through_mac"], anchor["total"]


def seal() -> int:
    """Chain the entries of every transaction that has ended; returns how
    many were sealed. The lock is held for the assignment only."""
    with transaction.atomic():
        _lock()
        last = AuditSeal.objects.order_by("-seq").first()
        if last is not None:
            if seal_mac(last) != last.mac:
                # Chaining onto a forged seal would lend it the key's weight.
                logger.error("audit trail: seal %s is not authentic; not sealing", last.seq)
                return 0
            seq, low, prev_mac, total = last.seq, last.high, last.mac, last.total
        else:
            seq, low, prev_mac, total = chain_start()
        high = _high_mark()
        if high <= low:
            return 0
        pairs = list(covered(low, high).values_list("id", "mac"))
        if not pairs:
            return 0
        row = AuditSeal(
            seq=seq + 1,
            created_at=timezone.now(),
            key_id=auditkeys.current_id(),
            low=low,
            high=high,
            entries=len(pairs),
            total=total + len(pairs),
            entry_ids=id_ranges(pk for pk, _mac in pairs),
            digest=entries_digest(pairs),
            prev_mac=prev_mac,
        )
        row.mac = seal_mac(row)
        row.save(force_insert=True)
        return len(pairs)


def order_key(entry: AuditEntry) -> int | None:
    """Where an entry sits for the sealer (PostgreSQL: its transaction)."""
    if entry.seq is not None:
        return None
    return entry.txid if connection.vendor == "postgresql" else entry.pk


def seal_of(entry: AuditEntry) -> AuditSeal | None:
    key = order_key(entry)
    if key is None:
        return None
    return AuditSeal.objects.filter(high__gt=key, low__lte=key).order_by("high").first()


def sealed_below() -> int:
    """Entries whose order key is below this are sealed."""
    head = AuditSeal.objects.order_by("-seq").values_list("high", flat=True).first()
    return head or 0


# ---------------------------------------------------------------------------
# Recorded results
# ---------------------------------------------------------------------------


def last_verification() -> AuditEntry | None:
    return AuditEntry.objects.filter(action=Action.VERIFY).order_by("-id").first()


def recorded_values(entry: AuditEntry) -> dict:
    """What a system entry (verify, archive…) recorded: each field's after value."""
    return {
        name: pair[1] if isinstance(pair, list) and len(pair) == 2 else pair
        for name, pair in (entry.changes or {}).items()
    }


def record_system(action: str, values: dict, *, success: bool = True, reason: str = ""):
    """A verification, archive or anchor on the trail itself."""
    return append(
        action=action,
        model="core.auditentry",
        object_label="audit trail",
        success=success,
        reason=reason,
        changes={k: [None, render(v)] for k, v in values.items() if v not in ("", None)},
    )
