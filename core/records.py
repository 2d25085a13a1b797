"""``verify_audit_trail --records``: do the records still say what the trail proves?

Three checks, each naming the entry or record that does not match:

1. Every row an entry proves (a history row, a batch of ledger or statement
   rows) still has the content the entry's keyed digest covers: a history row
   or a ledger amount edited in the database shows up here.
2. Every ledger row is proven by an entry (a row inserted around the service
   has none).
3. The current rows of the records auditors ask about (merchants' status,
   risk and MID, agreements and tiers, approved runs with their statements
   and lines, object permissions, users' rights and groups, sign-in events)
   equal their latest history row, and every history row written since the
   keyed trail began is proven by an entry or repeats its predecessor.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable

from django.apps import apps
from django.db.models import Q

from core import auditkeys, trail
from core.models import AuditEntry

CHUNK = 5000
# model label -> fields compared with the latest history row (None: every
# tracked field but bookkeeping), and which rows (a filter) count.
RECORDS: dict[str, tuple[list[str] | None, Q | None]] = {
    "merchants.merchant": (["status", "risk_level", "mid"], None),
    "settlements.revenueshareagreement": (None, None),
    "settlements.agreementtier": (None, None),
    "settlements.settlementrun": (None, Q(status__in=["approved", "exported"])),
    "settlements.statement": (None, Q(run__status__in=["approved", "exported"])),
    "settlements.statementline": (None, Q(statement__run__status__in=["approved", "exported"])),
    "settlements.merchantbasis": (None, Q(run__status__in=["approved", "exported"])),
    "merchants.merchantuserobjectpermission": (None, None),
    "merchants.merchantgroupobjectpermission": (None, None),
    "guardian.userobjectpermission": (None, None),
    "guardian.groupobjectpermission": (None, None),
    "core.user": (["username", "is_superuser", "is_staff", "is_active"], None),
    "core.authevent": (None, None),
}
# Many-to-many grants compared with the snapshot on the owner's latest
# history row: (model label, field).
M2M_RECORDS = [
    ("core.user", "groups"),
    ("core.user", "user_permissions"),
    ("auth.group", "permissions"),
]
# Written outside history on purpose (progress of a running calculation).
_UNTRACKED = {"updated_at", "progress", "progress_note"}


def check(result) -> None:
    proven = _check_proven(result)
    _check_ledger(result)
    for label, (fields, only) in RECORDS.items():
        _check_current(result, apps.get_model(label), fields, only, proven)
    for label, name in M2M_RECORDS:
        _check_m2m(result, apps.get_model(label), name)


# ---------------------------------------------------------------------------
# 1. Rows the entries prove
# ---------------------------------------------------------------------------


def _check_proven(result) -> dict[str, set[int]]:
    """Recompute every entry's row digest; returns the proven ids per model."""
    proven: dict[str, set[int]] = defaultdict(set)
    pending: list[AuditEntry] = []
    size = 0
    entries = (
        AuditEntry.objects.filter(seq__isnull=True)
        .exclude(row_model="")
        .only("id", "row_model", "row_ids", "row_digest", "key_id")
    )
    for entry in entries.order_by("row_model", "id").iterator(chunk_size=2000):
        count = sum(last - first + 1 for first, last in entry.row_ids)
        if pending and (pending[0].row_model != entry.row_model or size + count > CHUNK):
            _digest_chunk(result, pending, proven)
            pending, size = [], 0
        pending.append(entry)
        size += count
    if pending:
        _digest_chunk(result, pending, proven)
    return proven


def _digest_chunk(result, entries: list[AuditEntry], proven: dict[str, set[int]]) -> None:
    label = entries[0].row_model
    try:
        model = apps.get_model(label)
    except LookupError:
        result.fail(f"entry {entries[0].pk}: proves rows of an unknown model {label}")
        return
    fields = trail.digest_fields(model)
    wanted = [pk for e in entries for pk in trail.ids_of(e.row_ids)]
    pk_index = [f.attname for f in fields].index(model._meta.pk.attname)
    rows = {
        row[pk_index]: row
        for row in model._base_manager.filter(pk__in=wanted).values_list(
            *(f.attname for f in fields)
        )
    }
    for entry in entries:
        ids = list(trail.ids_of(entry.row_ids))
        result.records += len(ids)
        missing = [pk for pk in ids if pk not in rows]
        if missing:
            result.fail(
                f"entry {entry.pk}: {label} "
                + ", ".join(f"#{pk}" for pk in missing[:10])
                + f" deleted ({len(missing)} of {len(ids)} rows it proves)"
            )
            continue
        digest = trail.values_digest(fields, [rows[pk] for pk in ids], entry.key_id)
        if not auditkeys.is_known(entry.key_id) or digest != entry.row_digest:
            span = f"#{ids[0]}" if len(ids) == 1 else f"#{ids[0]} to #{ids[-1]} ({len(ids)} rows)"
            result.fail(
                f"entry {entry.pk}: {label} {span} changed in the database since the entry "
                "proved it"
            )
            continue
        proven[label].update(ids)


# ---------------------------------------------------------------------------
# 2. Every ledger row on the trail
# ---------------------------------------------------------------------------


def _merge(ranges: Iterable[list[int]]) -> tuple[list[int], list[int]]:
    firsts, lasts = [], []
    for first, last in sorted(ranges):
        if lasts and first <= lasts[-1] + 1:
            lasts[-1] = max(lasts[-1], last)
        else:
            firsts.append(first)
            lasts.append(last)
    return firsts, lasts


def _check_ledger(result) -> None:
    model = apps.get_model("settlements.transaction")
    label = model._meta.label_lower
    ranges = [
        r
        for row_ids in AuditEntry.objects.filter(row_model=label).values_list("row_ids", flat=True)
        for r in row_ids
    ]
    firsts, lasts = _merge(ranges)
    stray = []
    for pk in model._base_manager.order_by("pk").values_list("pk", flat=True).iterator(CHUNK):
        i = bisect.bisect_right(firsts, pk) - 1
        if i < 0 or pk > lasts[i]:
            stray.append(pk)
    if stray:
        result.fail(
            f"{len(stray)} ledger rows are on no trail entry (written around the service): "
            + ", ".join(f"{label} #{pk}" for pk in stray[:10])
        )


# ---------------------------------------------------------------------------
# 3. Current rows against their history
# ---------------------------------------------------------------------------


def _keyed_since():
    """When the keyed trail began: history before it has no proving entries."""
    first = AuditEntry.objects.filter(seq__isnull=True).order_by("id").values("created_at").first()
    return first["created_at"] if first else None


def _check_current(result, model, fields, only, proven) -> None:
    history = model.history.model
    own = {"history_id", "history_date", "history_change_reason", "history_type",
           "history_user", "history_origin", "history_relation"}  # fmt: skip
    tracked = [
        f
        for f in history._meta.concrete_fields
        if f.attname == model._meta.pk.attname
        or (f.name not in own and f.name not in _UNTRACKED and (fields is None or f.name in fields))
    ]
    pk_name = model._meta.pk.attname
    names = [f.attname for f in tracked]
    label = model._meta.label_lower
    proven_ids = proven.get(history._meta.label_lower, set())
    since = _keyed_since()
    latest: dict = {}
    previous: dict = {}
    rows = history.objects.order_by(pk_name, "history_date", "history_id").values_list(
        "history_id", "history_type", "history_date", *names
    )
    for history_id, kind, when, *values in rows.iterator(CHUNK):
        key = values[names.index(pk_name)] if pk_name in names else None
        shown = [trail.shown_value(f, v) for f, v in zip(tracked, values, strict=True)]
        before = previous.get(key)
        if (
            since is not None
            and when >= since
            and history_id not in proven_ids
            and (before is None or before != shown or kind == "-")
        ):
            result.fail(
                f"{history._meta.label_lower} #{history_id} ({label} #{key}) is proven by no "
                "trail entry: written in the database"
            )
        previous[key] = shown
        latest[key] = (kind, shown)
    current = model._base_manager.all()
    if only is not None:
        current = current.filter(only)
    seen = set()
    for values in current.values_list(*names).iterator(CHUNK):
        key = values[names.index(pk_name)]
        seen.add(key)
        result.records += 1
        shown = [trail.shown_value(f, v) for f, v in zip(tracked, values, strict=True)]
        recorded = latest.get(key)
        if recorded is None:
            result.fail(f"{label} #{key} has no history: inserted in the database")
        elif recorded[0] == "-":
            result.fail(f"{label} #{key} exists but its history says it was deleted")
        elif recorded[1] != shown:
            diff = [
                f"{n} is {a!r}, recorded {b!r}"
                for n, a, b in zip(names, shown, recorded[1], strict=True)
                if a != b
            ]
            result.fail(f"{label} #{key} changed in the database: " + "; ".join(diff[:5]))
    if only is None:
        gone = [k for k, (kind, _s) in latest.items() if kind != "-" and k not in seen]
        if gone:
            result.fail(
                f"{len(gone)} {label} rows deleted in the database without a record: "
                + ", ".join(f"#{k}" for k in sorted(gone)[:10])
            )


def _check_m2m(result, model, name: str) -> None:
    """A grant through a many-to-many field (a user's groups, a group's
    permissions) equals the snapshot simple-history took on the owner's latest
    history row: a membership inserted or deleted in the database shows."""
    field = model._meta.get_field(name)
    through = field.remote_field.through
    owner_column = field.m2m_field_name() + "_id"
    target_column = field.m2m_reverse_field_name() + "_id"
    current: dict[int, set[int]] = defaultdict(set)
    for owner, target in through.objects.values_list(owner_column, target_column).iterator(CHUNK):
        current[owner].add(target)
    history = model.history.model
    pk_name = model._meta.pk.attname
    latest: dict[int, tuple[int, str]] = {}
    rows = history.objects.order_by(pk_name, "history_date", "history_id").values_list(
        pk_name, "history_id", "history_type"
    )
    for owner, history_id, kind in rows.iterator(CHUNK):
        latest[owner] = (history_id, kind)
    snapshot_model = history._meta.get_field(
        f"historical{model._meta.model_name}_{name}"
    ).related_model
    recorded: dict[int, set[int]] = defaultdict(set)
    wanted = [history_id for history_id, kind in latest.values() if kind != "-"]
    for start in range(0, len(wanted), CHUNK):
        for history_id, target in snapshot_model.objects.filter(
            history_id__in=wanted[start : start + CHUNK]
        ).values_list("history_id", target_column):
            recorded[history_id].add(target)
    label = model._meta.label_lower
    for owner in sorted(set(current) | set(latest)):
        history_id, kind = latest.get(owner, (None, "-"))
        now = current.get(owner, set())
        then = set() if history_id is None or kind == "-" else recorded[history_id]
        if now != then:
            added, removed = sorted(now - then), sorted(then - now)
            result.fail(
                f"{label} #{owner} {name} changed in the database: "
                + "; ".join(
                    part
                    for part in (
                        f"#{', #'.join(map(str, added))} added" if added else "",
                        f"#{', #'.join(map(str, removed))} removed" if removed else "",
                    )
                    if part
                )
                + f" (not on its history #{history_id})"
            )
