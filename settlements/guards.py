"""An approved run is frozen through every door: services, pages, API, admin,
shell. The services refuse first with a clear message; these receivers are the
last line for any path that saves or deletes models directly."""

from __future__ import annotations

from django.db.models.signals import pre_delete, pre_save

from core.exceptions import DomainError
from settlements.models import (
    Adjustment,
    MerchantBasis,
    SettlementApproval,
    SettlementRun,
    Statement,
    StatementLine,
)

FROZEN_MESSAGE = "This settlement run is approved and frozen; it cannot change."

# The only change an approved run still makes: approved → exported.
_EXPORT_FIELDS = {"status", "updated_at"}


def _in_frozen_run(instance) -> bool:
    """One query: does this record belong to an approved or exported run?"""
    runs = SettlementRun.objects.filter(status__in=SettlementRun.FROZEN)
    if isinstance(instance, StatementLine):
        return runs.filter(statements=instance.statement_id).exists()
    return instance.run_id is not None and runs.filter(pk=instance.run_id).exists()


def refuse_child_change(sender, instance, **kwargs) -> None:
    if _in_frozen_run(instance):
        raise DomainError(FROZEN_MESSAGE)


def refuse_run_change(sender, instance: SettlementRun, update_fields=None, **kwargs) -> None:
    if instance._state.adding or instance.pk is None:
        return
    stored = SettlementRun.objects.filter(pk=instance.pk).values().first()
    if stored is None or stored["status"] not in SettlementRun.FROZEN:
        return
    changed = {
        f.attname
        for f in SettlementRun._meta.concrete_fields
        if getattr(instance, f.attname) != stored[f.attname]
    }
    exporting = instance.status == SettlementRun.Status.EXPORTED
    if changed - _EXPORT_FIELDS or not exporting:
        raise DomainError(FROZEN_MESSAGE)


def refuse_run_delete(sender, instance: SettlementRun, **kwargs) -> None:
    if SettlementRun.objects.filter(pk=instance.pk, status__in=SettlementRun.FROZEN).exists():
        raise DomainError(FROZEN_MESSAGE)


def connect() -> None:
    for model in (Statement, StatementLine, MerchantBasis, Adjustment, SettlementApproval):
        pre_save.connect(refuse_child_change, sender=model, dispatch_uid=f"frozen-{model.__name__}")
        pre_delete.connect(
            refuse_child_change, sender=model, dispatch_uid=f"frozen-del-{model.__name__}"
        )
    pre_save.connect(refuse_run_change, sender=SettlementRun, dispatch_uid="frozen-run")
    pre_delete.connect(refuse_run_delete, sender=SettlementRun, dispatch_uid="frozen-run-del")
