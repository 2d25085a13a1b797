"""Reads for settlement pages, API and exports: permission-filtered.

Transactions follow their merchant: a user sees the transactions of the
merchants it may see, and only with ``view_transaction``. Runs, statements,
agreements and reconciliations are finance records: the model permission
opens them all, nobody else sees any.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from core import permissions
from core.dates import day_start, parse_day
from core.models import User
from merchants.models import Merchant, Partner
from settlements.models import (
    FxRate,
    Reconciliation,
    ReconciliationItem,
    RevenueShareAgreement,
    SettlementRun,
    Statement,
    StatementLine,
    Transaction,
    TransactionSource,
)


def _global(user: User, model, action: str = "view") -> bool:
    return permissions.has_global(user, model, action)


# ---------------------------------------------------------------------------
# Ledger
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TransactionFilters:
    merchant: int | None = None
    kind: str = ""
    source: str = ""
    currency: str = ""
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""

    @classmethod
    def from_params(cls, params) -> TransactionFilters:
        """From query parameters; values that cannot apply are ignored."""
        raw = {f.name: (params.get(f.name) or "").strip() for f in fields(cls)}
        merchant = raw["merchant"]
        return cls(
            merchant=int(merchant) if merchant.isdigit() else None,
            kind=raw["kind"] if raw["kind"] in Transaction.Kind.values else "",
            source=raw["source"],
            currency=raw["currency"].upper()[:3],
            date_from=parse_day(raw["date_from"]),
            date_to=parse_day(raw["date_to"]),
            q=raw["q"],
        )

    def apply(self, qs: QuerySet[Transaction]) -> QuerySet[Transaction]:
        if self.merchant:
            qs = qs.filter(merchant_id=self.merchant)
        if self.kind:
            qs = qs.filter(kind=self.kind)
        if self.source:
            qs = qs.filter(source__code=self.source)
        if self.currency:
            qs = qs.filter(currency=self.currency)
        if self.date_from:
            qs = qs.filter(occurred_at__gte=day_start(self.date_from))
        if self.date_to:
            # Up to the end of that day: strictly before the next one.
            qs = qs.filter(occurred_at__lt=day_start(self.date_to + timedelta(days=1)))
        if self.q:
            qs = qs.filter(Q(external_id__icontains=self.q) | Q(customer_ref__icontains=self.q))
        return qs


def transaction_list(
    *, user: User, filters: TransactionFilters | None = None
) -> QuerySet[Transaction]:
    if not _global(user, Transaction):
        return Transaction.objects.none()
    qs = permissions.visible_through(
        user, Transaction.objects.all(), parent_field="merchant", parent_model=Merchant
    ).select_related("merchant", "source")
    return filters.apply(qs) if filters else qs


def transaction_get(*, user: User, pk: int) -> Transaction:
    return get_object_or_404(transaction_list(user=user), pk=pk)


def source_list(*, user: User) -> QuerySet[TransactionSource]:
    if not _global(user, TransactionSource):
        return TransactionSource.objects.none()
    return TransactionSource.objects.all()


def fx_rate_list(*, user: User) -> QuerySet[FxRate]:
    if not _global(user, FxRate):
        return FxRate.objects.none()
    return FxRate.objects.all()


# ---------------------------------------------------------------------------
# Agreements
# ---------------------------------------------------------------------------


def agreement_list(*, user: User, partner: Partner | None = None) -> QuerySet:
    if not _global(user, RevenueShareAgreement):
        return RevenueShareAgreement.objects.none()
    qs = RevenueShareAgreement.objects.select_related("partner", "created_by").prefetch_related(
        "tiers"
    )
    return qs.filter(partner=partner) if partner is not None else qs


def agreement_get(*, user: User, pk: int) -> RevenueShareAgreement:
    return get_object_or_404(agreement_list(user=user), pk=pk)


# ---------------------------------------------------------------------------
# Runs and statements
# ---------------------------------------------------------------------------


def run_list(*, user: User) -> QuerySet[SettlementRun]:
    if not _global(user, SettlementRun):
        return SettlementRun.objects.none()
    return SettlementRun.objects.select_related("prepared_by")


def run_get(*, user: User, pk: int, action: str = "view") -> SettlementRun:
    """404 for those who cannot see runs, 403 for a known run they may not ``action``."""
    run = get_object_or_404(run_list(user=user), pk=pk)
    if action != "view" and not permissions.has_global(user, SettlementRun, action):
        raise PermissionDenied
    return run


def statement_list(*, run: SettlementRun) -> QuerySet[Statement]:
    """Statements of a run the caller already obtained through ``run_get``."""
    return run.statements.select_related("partner", "agreement")


def statement_get(*, user: User, run_pk: int, pk: int) -> Statement:
    run = run_get(user=user, pk=run_pk)
    return get_object_or_404(statement_list(run=run), pk=pk)


def statement_lines(*, statement: Statement) -> QuerySet[StatementLine]:
    return statement.lines.select_related("merchant")


# ---------------------------------------------------------------------------
# Reconciliation
# ---------------------------------------------------------------------------


def reconciliation_list(*, user: User) -> QuerySet[Reconciliation]:
    if not _global(user, Reconciliation):
        return Reconciliation.objects.none()
    return Reconciliation.objects.select_related("source", "uploaded_by")


def reconciliation_get(*, user: User, pk: int) -> Reconciliation:
    return get_object_or_404(reconciliation_list(user=user), pk=pk)


def reconciliation_items(
    *, reconciliation: Reconciliation, outcome: str = ""
) -> QuerySet[ReconciliationItem]:
    qs = reconciliation.items.select_related("transaction", "resolved_by")
    return qs.filter(outcome=outcome) if outcome else qs
