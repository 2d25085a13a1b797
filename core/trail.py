"""The compliance audit trail: one hash-chained line per change, sign-in, grant…

Writing: every simple-history row appends an :class:`AuditEntry` from the
``post_create_historical_record`` signal (:func:`append_from_history`); bulk
paths build their entries in memory and insert them with one statement per
batch (:func:`append_many`). Entries are written unsealed, in the writer's
own transaction, so that a rolled-back change leaves no line behind.

Sealing: right after a writing transaction commits, :func:`seal` takes a
lock (a PostgreSQL advisory lock; SQLite has one writer anyway), numbers the
committed unsealed entries in id order after the last sealed one and stores
``hash = SHA-256(prev_hash + canonical content)``. Only the short sealing
transaction is serialised, never the writers themselves, and an entry whose
transaction commits while another sealer runs is picked up by its own
sealer. That quick seal looks only near the top of the trail
(``SEAL_WINDOW``); beat's full sweep every minute seals whatever it left (a
writer that died between commit and seal, a very long transaction).

Checking: :func:`verify` walks the chain in ``seq`` order and reports the
first entry whose content, link or number does not match.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from guardian.models.models import BaseObjectPermission, GroupObjectPermissionBase
from simple_history.utils import bulk_create_with_history as _bulk_create_with_history

from core import audit
from core.crypto import EncryptedTextField
from core.models import AuditEntry, AuthEvent, SensitiveAccess

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
_HASHED = (
    "id",
    "seq",
    "created_at",
    "actor_id",
    "actor_label",
    "actor_kind",
    "origin",
    "ip_address",
    "user_agent",
    "action",
    "success",
    "model",
    "object_id",
    "object_label",
    "merchant_id",
    "changes",
    "reason",
)
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


def content(entry: AuditEntry | dict) -> dict[str, Any]:
    """What the hash covers: every column but the hash itself and prev_hash."""
    get = entry.get if isinstance(entry, dict) else lambda name: getattr(entry, name)
    out = {name: get(name) for name in _HASHED}
    if isinstance(out["created_at"], dt.datetime):
        out["created_at"] = timestamp(out["created_at"])
    return out


def canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(prev_hash: str, entry: AuditEntry | dict) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(content(entry))).hexdigest()


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


def append(**fields: Any) -> AuditEntry:
    """Write one entry now (exports, reveals, verifications…); see :func:`new_entry`."""
    entry = new_entry(**fields)
    entry.save(force_insert=True)
    schedule_seal()
    return entry


def append_many(entries: list[AuditEntry], *, batch_size: int = 2000) -> None:
    """Bulk paths: one statement per batch of entries (COPY on PostgreSQL)."""
    if not entries:
        return
    if connection.vendor == "postgresql":
        _copy(entries)
    else:
        AuditEntry.objects.bulk_create(entries, batch_size=batch_size)
    schedule_seal()


# Columns an entry is written with; seq stays empty for the sealer.
_WRITTEN = [f for f in AuditEntry._meta.concrete_fields if f.name not in ("id", "seq")]


def _copy(entries: list[AuditEntry]) -> None:
    """PostgreSQL: COPY, in the writer's transaction. Binding a thousand
    entries' seventeen parameters each costs the client more than the
    database spends on the insert; COPY streams them instead."""
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
    (except an update row that changed no tracked field)."""
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
    entry.save(force_insert=True)
    schedule_seal()


def created_entries(objs: Iterable[models.Model], *, actor: Any, reason: str) -> list:
    """One "created" entry per stored object, built without touching the database."""
    entries = []
    for obj in objs:
        entries.append(
            new_entry(
                action=Action.CREATE,
                model=obj._meta.label_lower,
                object_id=obj.pk,
                object_label=_label(obj),
                merchant_id=merchant_of(obj),
                changes=snapshot_changes(obj, obj._meta.concrete_fields, resolve=False),
                reason=reason,
                actor=actor,
            )
        )
    return entries


def bulk_create_with_history(objs: list, model, *, batch_size: int, actor, reason: str) -> list:
    """``bulk_create_with_history`` plus the trail: one INSERT per batch for
    the rows, their history and their audit entries."""
    stored = _bulk_create_with_history(
        objs,
        model,
        batch_size=batch_size,
        default_user=actor,
        default_change_reason=reason,
        custom_historical_attrs={"history_origin": audit.current().origin[:255]},
    )
    append_many(created_entries(stored, actor=actor, reason=reason), batch_size=batch_size)
    return stored


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
    # an error for the user. The entry stays unsealed for the next sealer
    # (the next write, or beat's audit_trail_seal within a minute).
    try:
        seal(full=False)
    except Exception:
        logger.exception("audit trail: sealing failed; left for the next sealer")


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEAL_LOCK])


def _store_seals(entries: list[AuditEntry]) -> None:
    if connection.vendor != "postgresql":
        AuditEntry.objects.bulk_update(entries, ["seq", "prev_hash", "hash"])
        return
    # One UPDATE joined to the values as arrays: bulk_update's CASE per column
    # costs the database a comparison per row per row.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE core_auditentry AS e SET seq = v.seq, prev_hash = v.prev, hash = v.hash "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[]) "
            "AS v(id, seq, prev, hash) WHERE e.id = v.id",
            [
                [e.pk for e in entries],
                [e.seq for e in entries],
                [e.prev_hash for e in entries],
                [e.hash for e in entries],
            ],
        )


# How far below the newest sealed entry's id the quick seal after a commit
# looks for unsealed entries. Below it lie only entries sealed long ago (and,
# until vacuum, their dead index entries, which a scan from the bottom would
# wade through on every commit); a writer that kept its transaction open while
# more than this many entries were written is sealed by beat's full sweep.
SEAL_WINDOW = 20_000


def seal(*, batch: int = 2000, full: bool = True) -> int:
    """Chain committed unsealed entries; returns how many were sealed.

    ``full=False`` (after each commit) looks only near the top of the trail;
    the full sweep (beat, commands) looks at every entry.
    """
    total = 0
    while True:
        with transaction.atomic():
            _lock()
            last = (
                AuditEntry.objects.filter(seq__isnull=False)
                .order_by("-seq")
                .values_list("seq", "hash", "id")
                .first()
            )
            unsealed = AuditEntry.objects.filter(seq__isnull=True)
            if last is not None and not full:
                unsealed = unsealed.filter(id__gt=last[2] - SEAL_WINDOW)
            pending = list(unsealed.order_by("id").select_for_update()[:batch])
            if not pending:
                return total
            seq, prev = (last[0], last[1]) if last else (0, GENESIS)
            for entry in pending:
                seq += 1
                entry.seq = seq
                entry.prev_hash = prev
                entry.hash = prev = entry_hash(prev, entry)
            _store_seals(pending)
        total += len(pending)
        if len(pending) < batch:
            return total


# ---------------------------------------------------------------------------
# Verifying
# ---------------------------------------------------------------------------


@dataclass
class Verification:
    intact: bool
    entries: int  # sealed entries checked
    pending: int = 0  # not sealed yet
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str = ""
    broken_id: int | None = None
    broken_seq: int | None = None
    problem: str = ""
    expected: str = ""
    found: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if self.intact:
            return f"intact: {self.entries} entries" + (
                f" (seq {self.first_seq}-{self.last_seq})" if self.entries else ""
            )
        return (
            f"BROKEN at entry {self.broken_id} (seq {self.broken_seq}): {self.problem}; "
            f"expected {self.expected}, found {self.found}"
        )


class ChainWalker:
    """Feed entries (models or dicts) in ``seq`` order; remembers the first break."""

    def __init__(self, *, anchor_seq: int = 0, anchor_hash: str = GENESIS) -> None:
        self.result = Verification(intact=True, entries=0)
        self.expected_seq = anchor_seq + 1 if anchor_seq else None
        self.prev_hash = anchor_hash if anchor_seq else None

    def feed(self, entry: AuditEntry | dict) -> bool:
        get = entry.get if isinstance(entry, dict) else lambda name: getattr(entry, name)
        result = self.result
        seq, prev_hash, stored = get("seq"), get("prev_hash"), get("hash")
        if self.expected_seq is None:  # first entry, no archive before it
            self.expected_seq = 1
            self.prev_hash = GENESIS
        if seq != self.expected_seq:
            return self._break(entry, "an entry is missing", str(self.expected_seq), str(seq))
        if prev_hash != self.prev_hash:
            return self._break(
                entry, "link to the previous entry broken", self.prev_hash, prev_hash
            )
        recomputed = entry_hash(prev_hash, entry)
        if recomputed != stored:
            return self._break(entry, "content altered", recomputed, stored)
        result.entries += 1
        result.first_seq = result.first_seq or seq
        result.last_seq, result.last_hash = seq, stored
        self.expected_seq, self.prev_hash = seq + 1, stored
        return True

    def _break(self, entry, problem: str, expected: str, found: str) -> bool:
        get = entry.get if isinstance(entry, dict) else lambda name: getattr(entry, name)
        self.result.intact = False
        self.result.broken_id, self.result.broken_seq = get("id"), get("seq")
        self.result.problem, self.result.expected, self.result.found = problem, expected, found
        return False


def archive_anchor(first_seq: int) -> tuple[int, str]:
    """(seq, hash) of the last archived entry before ``first_seq``, from the
    archive entry that recorded it; (0, GENESIS) when nothing was archived."""
    if first_seq <= 1:
        return 0, GENESIS
    for entry in AuditEntry.objects.filter(action=Action.ARCHIVE, seq__isnull=False):
        recorded = recorded_values(entry)
        if recorded.get("through_seq") == first_seq - 1:
            return recorded["through_seq"], recorded["last_hash"]
    return 0, GENESIS  # nothing explains the gap: the walk reports it


def sealed_in_order(*, chunk: int = 5000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = list(AuditEntry.objects.filter(seq__gt=last).order_by("seq")[:chunk])
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify() -> Verification:
    """Walk the sealed chain from its start (or the archive boundary)."""
    first = AuditEntry.objects.filter(seq__isnull=False).order_by("seq").values("seq").first()
    anchor_seq, anchor_hash = archive_anchor(first["seq"]) if first else (0, GENESIS)
    walker = ChainWalker(anchor_seq=anchor_seq, anchor_hash=anchor_hash)
    for entry in sealed_in_order():
        if not walker.feed(entry):
            break
    walker.result.pending = AuditEntry.objects.filter(seq__isnull=True).count()
    return walker.result


def record_verification(result: Verification, *, actor=None) -> AuditEntry:
    """Put the outcome on the trail itself; the compliance page shows the latest."""
    with audit.as_actor(actor) if actor is not None else contextlib.nullcontext():
        return append(
            action=Action.VERIFY,
            model="core.auditentry",
            object_label="audit trail",
            success=result.intact,
            changes={
                k: [None, render(v)] for k, v in result.as_dict().items() if v not in ("", None)
            },
        )


def last_verification() -> AuditEntry | None:
    return AuditEntry.objects.filter(action=Action.VERIFY).order_by("-id").first()


def recorded_values(entry: AuditEntry) -> dict:
    """What a system entry (verify, archive…) recorded: each field's after value."""
    return {
        name: pair[1] if isinstance(pair, list) and len(pair) == 2 else pair
        for name, pair in (entry.changes or {}).items()
    }
