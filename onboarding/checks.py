"""Compliance checks run when an application is submitted, and their resolution."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit
from core.models import User
from merchants.models import BankAccount, Document
from onboarding import screening
from onboarding.models import Application, ComplianceCheck, WorkflowStep
from onboarding.standard import HIGH_RISK_MCCS

# FATF "call for action" jurisdictions; adjust with the compliance team.
HIGH_RISK_COUNTRIES = ["IR", "KP", "MM"]


def _step_for(application: Application, *, documents: bool = False) -> WorkflowStep | None:
    """The step a hit blocks: the document step, or the compliance group's step."""
    steps = list(application.definition.steps.select_related("group").order_by("position"))
    for step in steps:
        if documents and step.required_documents:
            return step
        if not documents and step.group.name == "compliance":
            return step
    return steps[0] if steps else None


@transaction.atomic
def application_run_checks(*, application: Application, actor: User) -> list[ComplianceCheck]:
    """(Re)run every check; results replace earlier unresolved ones."""
    application = (
        Application.objects.select_for_update().select_related("merchant").get(pk=application.pk)
    )
    merchant = application.merchant
    results = []

    names = [
        merchant.legal_name,
        merchant.trading_name,
        *merchant.owners.values_list("full_name", flat=True),
    ]
    matches = screening.screen([n for n in names if n])
    results.append(
        (
            ComplianceCheck.Kind.SANCTIONS,
            bool(matches),
            _step_for(application),
            _("%(n)d possible match(es) on the screening list") % {"n": len(matches)}
            if matches
            else _("No match among %(n)d names") % {"n": len([n for n in names if n])},
            [
                {
                    "screened": m.screened,
                    "listed": m.listed_name,
                    "source": m.source,
                    "score": round(m.score, 1),
                    "entry": m.entry_id,
                }
                for m in matches
            ],
        )
    )

    required = {t for s in application.definition.steps.all() for t in s.required_documents}
    present = set(
        Document.objects.filter(merchant=merchant, is_current=True)
        .exclude(status=Document.Status.REJECTED)
        .values_list("doc_type", flat=True)
    )
    missing = sorted(required - present)
    labels = dict(Document.Type.choices)
    results.append(
        (
            ComplianceCheck.Kind.DOCUMENTS,
            bool(missing),
            _step_for(application, documents=True),
            _("Missing: %(docs)s") % {"docs": ", ".join(str(labels[m]) for m in missing)}
            if missing
            else _("All required documents are on file"),
            missing,
        )
    )

    risky = []
    if merchant.mcc in HIGH_RISK_MCCS:
        risky.append(f"MCC {merchant.mcc}")
    if str(merchant.country) in HIGH_RISK_COUNTRIES:
        risky.append(f"country {merchant.country}")
    results.append(
        (
            ComplianceCheck.Kind.HIGH_RISK,
            bool(risky),
            _step_for(application),
            _("High risk: %(what)s") % {"what": ", ".join(risky)} if risky else _("None"),
            risky,
        )
    )

    hashes = list(merchant.bank_accounts.values_list("account_hash", flat=True))
    shared = sorted(
        set(
            BankAccount.objects.filter(account_hash__in=hashes, merchant__isnull=False)
            .exclude(merchant=merchant)
            .values_list("merchant__legal_name", flat=True)
        )
    )
    results.append(
        (
            ComplianceCheck.Kind.SHARED_BANK,
            bool(shared),
            _step_for(application),
            _("Also held by: %(names)s") % {"names": ", ".join(shared)} if shared else _("None"),
            shared,
        )
    )

    checks = []
    for kind, hit, step, summary, detail in results:
        check = ComplianceCheck.objects.filter(application=application, kind=kind).first()
        if (
            check
            and check.status
            in (
                ComplianceCheck.Status.CLEARED,
                ComplianceCheck.Status.CONFIRMED,
            )
            and check.detail == detail
        ):  # a resolved finding stays resolved
            checks.append(check)
            continue
        check = check or ComplianceCheck(application=application, kind=kind)
        check.status = ComplianceCheck.Status.HIT if hit else ComplianceCheck.Status.PASSED
        check.blocks_step = step if hit else None
        check.summary = str(summary)[:300]
        check.detail = detail
        check.resolved_by, check.resolved_at, check.resolution_reason = None, None, ""
        audit.stamp(check, actor=actor, reason="compliance check run")
        check.save()
        checks.append(check)
    return checks


def blocking_checks(application: Application, step: WorkflowStep):
    return application.compliance_checks.filter(status=ComplianceCheck.Status.HIT, blocks_step=step)


@transaction.atomic
def compliance_check_resolve(
    *, actor: User, check: ComplianceCheck, status: str, reason: str
) -> ComplianceCheck:
    """Clear (false positive) or confirm a hit, with a written reason."""
    if not actor.has_perm("onboarding.resolve_compliancecheck"):
        raise PermissionDenied
    check = ComplianceCheck.objects.select_for_update().get(pk=check.pk)
    if check.status != ComplianceCheck.Status.HIT:
        raise ValidationError({"status": _("Only a hit can be cleared or confirmed.")})
    if status not in (ComplianceCheck.Status.CLEARED, ComplianceCheck.Status.CONFIRMED):
        raise ValidationError({"status": _("Clear or confirm the hit.")})
    if not reason.strip():
        raise ValidationError({"reason": _("Write down why, for the auditors.")})
    check.status = status
    check.resolved_by = actor
    check.resolved_at = timezone.now()
    check.resolution_reason = reason.strip()
    audit.stamp(check, actor=actor, reason=f"{status}: {reason.strip()}")
    check.save(
        update_fields=["status", "resolved_by", "resolved_at", "resolution_reason", "updated_at"]
    )
    return check
