"""Settlements in the admin: read-only views of the records.

Money changes only through the services (pages and API), which check rights,
states and four eyes. The admin may look, never write: an approved run must
not change through any door, and the ledger is append-only. Transaction
sources are the one exception: admins look after integrations here.
"""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from settlements import selectors
from settlements.models import (
    Adjustment,
    FxRate,
    Reconciliation,
    RevenueShareAgreement,
    SettlementRun,
    Statement,
    StatementLine,
    Transaction,
    TransactionSource,
)


class ReadOnlyAdmin(SimpleHistoryAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TransactionSource)
class TransactionSourceAdmin(SimpleHistoryAdmin):
    list_display = ("code", "name", "is_active")
    # The secret is write-only: it is set here but never displayed again.
    exclude = ("webhook_secret",)
    readonly_fields = ()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "external_id",
        "source",
        "merchant",
        "kind",
        "amount",
        "currency",
        "occurred_at",
    )
    list_filter = ("kind", "status", "source", "currency")
    search_fields = ("external_id", "customer_ref")
    list_select_related = ("source", "merchant")
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    def get_queryset(self, request):
        # The admin is a door too: what the selectors allow, nothing more.
        return selectors.transaction_list(user=request.user)


@admin.register(FxRate)
class FxRateAdmin(ReadOnlyAdmin):
    list_display = ("rate_on", "base", "quote", "rate")
    list_filter = ("base", "quote")


@admin.register(RevenueShareAgreement)
class AgreementAdmin(ReadOnlyAdmin):
    list_display = ("partner", "basis", "tier_mode", "currency", "valid_from", "valid_to")
    list_filter = ("basis", "currency")

    def get_queryset(self, request):
        return selectors.agreement_list(user=request.user)


@admin.register(SettlementRun)
class SettlementRunAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "status", "prepared_by", "total_payable", "approved_at")
    list_filter = ("status", "currency")

    def get_queryset(self, request):
        return selectors.run_list(user=request.user)


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdmin):
    list_display = ("partner", "run", "lines_total", "payable", "carried_out")
    list_select_related = ("partner", "run")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(run__in=selectors.run_list(user=request.user))


@admin.register(StatementLine)
class StatementLineAdmin(ReadOnlyAdmin):
    list_display = ("statement", "merchant", "role", "basis", "rate_bps", "share")
    list_select_related = ("statement__partner", "statement__run", "merchant")

    def get_queryset(self, request):
        runs = selectors.run_list(user=request.user)
        return super().get_queryset(request).filter(statement__run__in=runs)


@admin.register(Adjustment)
class AdjustmentAdmin(ReadOnlyAdmin):
    list_display = ("run", "partner", "amount", "reason", "created_by")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(run__in=selectors.run_list(user=request.user))


@admin.register(Reconciliation)
class ReconciliationAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "matched", "missing_in_ledger", "missing_in_report", "mismatched")

    def get_queryset(self, request):
        return selectors.reconciliation_list(user=request.user)
