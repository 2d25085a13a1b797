"""Reads of the audit trail for pages, exports and the API: compliance only."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, fields

from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Q, QuerySet, Subquery
from django.shortcuts import get_object_or_404
from simple_history.models import registered_models

from core.dates import day_start, parse_day
from core.models import AuditEntry, User

VIEW_PERMISSION = "core.view_auditentry"
PAGE_SIZE = 50


def can_read_trail(user: User) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(VIEW_PERMISSION))


def _require(user: User) -> None:
    if not can_read_trail(user):
        raise PermissionDenied


@dataclass(frozen=True)
class AuditFilters:
    """The trail's filters; the page, the exports and the API read the same ones."""

    actor: str = ""  # username, or a webhook source's code
    action: str = ""
    model: str = ""  # "merchants.merchant"
    object_id: str = ""
    merchant: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    q: str = ""  # in the record's label, the reason or the origin (IP, task, command)

    @classmethod
    def from_params(cls, params) -> AuditFilters:
        """From query parameters; values that cannot apply are ignored."""
        raw = {f.name: (params.get(f.name) or "").strip() for f in fields(cls)}
        merchant = raw["merchant"]
        return cls(
            actor=raw["actor"][:150],
            action=raw["action"] if raw["action"] in AuditEntry.Action.values else "",
            model=raw["model"].lower()[:100],
            object_id=raw["object_id"][:64],
            merchant=int(merchant) if merchant.isdigit() else None,
            date_from=parse_day(raw["date_from"]),
            date_to=parse_day(raw["date_to"]),
            q=raw["q"][:200],
        )

    def as_params(self) -> dict[str, str]:
        """The non-empty filters as query parameters (links, exports)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value not in (None, ""):
                out[f.name] = value.isoformat() if isinstance(value, dt.date) else str(value)
        return out

    def apply(self, qs: QuerySet[AuditEntry]) -> QuerySet[AuditEntry]:
        if self.actor:
            # An account's entries through its id, so that the (actor, id)
            # index serves the page; a name that is no account may be a
            # webhook source, which the trail names by its code.
            ids = list(User.objects.filter(username=self.actor).values_list("pk", flat=True))
            if ids:
                qs = qs.filter(actor_id__in=ids)
            else:
                qs = qs.filter(actor_label=self.actor, actor_kind=AuditEntry.ActorKind.API_KEY)
        if self.action:
            qs = qs.filter(action=self.action)
        if self.model and self.object_id:
            qs = qs.filter(_record_q(self.model, self.object_id))
        elif self.model:
            qs = qs.filter(model=self.model)
        elif self.object_id:
            qs = qs.filter(object_id=self.object_id)
        if self.merchant:
            qs = qs.filter(merchant_id=self.merchant)
        if self.date_from:
            start = day_start(self.date_from)
            qs = qs.filter(created_at__gte=start, id__gte=_first_id_from(start))
        if self.date_to:
            end = day_start(self.date_to + dt.timedelta(days=1))
            qs = qs.filter(created_at__lt=end, id__lte=_last_id_before(end))
        if self.q:
            # Served on PostgreSQL by the trigram index of migration 0008.
            qs = qs.filter(
                Q(object_label__icontains=self.q)
                | Q(reason__icontains=self.q)
                | Q(origin__icontains=self.q)
            )
        return qs


# Entries get their time and their id within moments of each other, so ids rise
# with time; a date range also bounds the id, found through the time index,
# and the page then walks the primary key over that stretch only (without it
# PostgreSQL walks the whole key backwards from the newest entry). The margin
# keeps an entry whose id and time disagree by less than it inside the bounds;
# the exact time condition stays in the query.
_ID_MARGIN = dt.timedelta(hours=1)


def _first_id_from(moment: dt.datetime) -> Subquery:
    return Subquery(
        AuditEntry.objects.filter(created_at__gte=moment - _ID_MARGIN)
        .order_by("created_at", "id")  # a batch's entries share one time
        .values("id")[:1]
    )


def _last_id_before(moment: dt.datetime) -> Subquery:
    return Subquery(
        AuditEntry.objects.filter(created_at__lt=moment + _ID_MARGIN)
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )


def _covering_entries(model: str, object_id: str) -> list[int]:
    """Entries that prove a row of the record in bulk (a ledger batch, a
    batch of statement lines' history rows) without naming it as their object."""
    try:
        pk = int(object_id)
        target = apps.get_model(model)
    except (ValueError, LookupError):
        return []
    wanted: list[tuple[str, set[int]]] = [(model, {pk})]
    history = getattr(target, "history", None)
    if history is not None and hasattr(history, "model"):
        hids = set(
            history.model.objects.filter(**{target._meta.pk.attname: pk}).values_list(
                "history_id", flat=True
            )[:1000]
        )
        if hids:
            wanted.append((history.model._meta.label_lower, hids))
    found = []
    for row_model, ids in wanted:
        for entry_id, ranges in _spanning(row_model, sorted(ids)):
            if any(first <= i <= last for first, last in ranges for i in ids):
                found.append(entry_id)
    return found


def _spanning(row_model: str, ids: list[int]) -> list[tuple[int, list]]:
    """(id, row_ids) of the entries of ``row_model`` whose first-to-last span
    holds one of ``ids`` (at most 200 per id; ids within a span may be gaps).

    PostgreSQL: one probe of the ``audit_row_span`` GiST index per id.
    Elsewhere the (row_model, row_last) index narrows the candidates.
    """
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(AuditEntry._meta.db_table)
        # The table name is the model's own.
        sql = (
            "SELECT e.id, e.row_ids FROM unnest(%s::bigint[]) AS wanted(id) "  # noqa: S608
            f"CROSS JOIN LATERAL (SELECT id, row_ids FROM {table} "
            "WHERE row_first IS NOT NULL AND row_model = %s "
            "AND int8range(row_first, row_last, '[]') @> wanted.id LIMIT 200) AS e"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [ids, row_model])
            spans = {
                pk: json.loads(ranges) if isinstance(ranges, str) else ranges
                for pk, ranges in cursor.fetchall()
            }
            return list(spans.items())
    return list(
        AuditEntry.objects.filter(
            row_model=row_model, row_first__lte=max(ids), row_last__gte=min(ids)
        )
        .order_by()
        .values_list("id", "row_ids")[:200]
    )


def _record_q(model: str, object_id: str) -> Q:
    q = Q(model=model, object_id=object_id)
    covering = _covering_entries(model, object_id)
    return q | Q(pk__in=covering) if covering else q


def audit_entry_list(*, user: User, filters: AuditFilters | None = None) -> QuerySet[AuditEntry]:
    """Newest first. PermissionDenied for anyone without the audit permission."""
    _require(user)
    qs = AuditEntry.objects.order_by("-id")
    return filters.apply(qs) if filters else qs


def audit_entry_get(*, user: User, pk: int) -> AuditEntry:
    _require(user)
    return get_object_or_404(AuditEntry, pk=pk)


def audit_record_history(*, user: User, model: str, object_id: str) -> QuerySet[AuditEntry]:
    """Everything that happened to one record, oldest first."""
    _require(user)
    return AuditEntry.objects.filter(_record_q(model.lower(), object_id)).order_by("id")


@dataclass
class Page:
    entries: list[AuditEntry]
    next_before: int | None  # id to pass as ``before`` for the next (older) page
    first: bool  # is this the newest page


def audit_page(
    qs: QuerySet[AuditEntry], *, before: str | int | None, size: int = PAGE_SIZE
) -> Page:
    """Keyset page by id: constant time on any page of millions of entries."""
    before_id = int(before) if str(before or "").isdigit() else None
    if before_id:
        qs = qs.filter(id__lt=before_id)
    rows = list(qs[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return Page(entries=rows, next_before=rows[-1].pk if more else None, first=before_id is None)


def audit_model_choices() -> list[tuple[str, str]]:
    """Every model the trail can name, for the filter's select."""
    choices = {}
    for model in apps.get_models():
        if model._meta.db_table in registered_models:
            choices[model._meta.label_lower] = (
                f"{model._meta.app_label} · {model._meta.verbose_name}"
            )
    return sorted(choices.items(), key=lambda kv: kv[1])
