"""Settlement runs: create, calculate (in Celery), adjust, submit, approve, reject.

Every transition re-reads the run with a row lock and checks the move after
the lock, so of two approvers at once the second sees the first's outcome.
Locks go run → statements → lines. An approved run is frozen: see
``settlements.guards`` for the doors other than these services.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit, money, trail
from core.dates import day_start
from core.exceptions import DomainError, TransitionError
from core.models import User
from merchants.models import Merchant, Partner
from settlements import calculation
from settlements.models import (
    Adjustment,
    MerchantBasis,
    RevenueShareAgreement,
    SettlementApproval,
    SettlementRun,
    Statement,
    StatementLine,
    Transaction,
)
from settlements.services import fx

Status = SettlementRun.Status
logger = logging.getLogger(__name__)


def lock_run(pk: int) -> SettlementRun:
    return SettlementRun.objects.select_for_update().get(pk=pk)


def _require(actor: User, perm: str) -> None:
    if not actor.is_active or not actor.has_perm(f"settlements.{perm}"):
        raise PermissionDenied


def _move(run: SettlementRun, target: str, *, actor: User, reason: str, fields=()) -> None:
    if not run.can_move_to(target):
        raise TransitionError(run, target, _transition_message(run, target))
    run.status = target
    audit.stamp(run, actor=actor, reason=reason)
    run.save(update_fields=["status", *fields, "updated_at"])


def _transition_message(run: SettlementRun, target: str) -> str:
    current = run.get_status_display()
    if run.is_frozen:
        return _("This run is %(status)s and can no longer change.") % {"status": current}
    messages = {
        Status.CALCULATING: _("Only a draft or calculated run can be calculated; it is %(s)s."),
        Status.SUBMITTED: _("Only a calculated run can be submitted; it is %(s)s."),
        Status.APPROVED: _("Only a submitted run can be approved; it is %(s)s."),
        Status.REJECTED: _("Only a submitted run can be rejected; it is %(s)s."),
    }
    template = messages.get(target, _("This run is %(s)s; that step is not possible."))
    return template % {"s": current}


def dual_approval_threshold(currency: str) -> Decimal:
    """Runs paying out more than this (in their currency) need two approvers.

    ``SETTLEMENT_DUAL_APPROVAL_ABOVE`` maps a currency to an amount; ``"*"``
    covers the others.
    """
    limits = settings.SETTLEMENT_DUAL_APPROVAL_ABOVE
    return Decimal(str(limits.get(currency, limits.get("*", "0"))))


# ---------------------------------------------------------------------------
# Create
# ---------------------------------------------------------------------------


@transaction.atomic
def settlement_run_create(
    *, actor: User, period_start: date, period_end: date, currency: str
) -> SettlementRun:
    """A draft run. Runs of one currency may not overlap: a period is paid once."""
    _require(actor, "add_settlementrun")
    run = SettlementRun(
        period_start=period_start, period_end=period_end, currency=currency, prepared_by=actor
    )
    run.full_clean()
    if period_end >= timezone.localdate():
        raise ValidationError({"period_end": _("The period must have ended before it is settled.")})
    # Serialise creations per currency: the overlap check must see the other's row.
    _lock_currency(currency)
    overlap = SettlementRun.objects.filter(
        currency=currency, period_start__lte=period_end, period_end__gte=period_start
    ).first()
    if overlap:
        raise ValidationError(
            {
                "period_start": _(
                    "The %(currency)s run %(run)s already covers part of this period."
                )
                % {"currency": currency, "run": overlap}
            }
        )
    audit.stamp(run, actor=actor, reason="run created")
    run.save()
    return run


def _lock_currency(currency: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"run:{currency}"])


# ---------------------------------------------------------------------------
# Calculate
# ---------------------------------------------------------------------------


def calculation_is_stale(run: SettlementRun) -> bool:
    """Calculating for longer than a task may run: its message or worker was lost.

    Progress ticks do not touch ``updated_at``, so it still says when the
    calculation was requested; past the hard time limit the task is dead.
    """
    if run.status != Status.CALCULATING:
        return False
    limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    return run.updated_at < timezone.now() - limit


@transaction.atomic
def settlement_run_calculate(*, actor: User, run: SettlementRun) -> SettlementRun:
    """Queue the calculation; the page polls the run's progress.

    A run stuck in calculating past the task time limit may be queued again.
    """
    from settlements import tasks

    _require(actor, "change_settlementrun")
    run = lock_run(run.pk)
    run.calculation_error = ""
    run.progress = 0
    run.progress_note = _("Queued")
    fields = ["calculation_error", "progress", "progress_note"]
    if calculation_is_stale(run):
        audit.stamp(run, actor=actor, reason="calculation queued again after it stalled")
        run.save(update_fields=[*fields, "updated_at"])
    else:
        _move(run, Status.CALCULATING, actor=actor, reason="calculation requested", fields=fields)
    transaction.on_commit(
        lambda: tasks.settlement_run_calculate.delay(run_id=run.pk, actor_id=actor.pk)
    )
    return run


def _progress(run_id: int, percent: int, note: str) -> None:
    # Progress ticks are not business changes: a plain UPDATE keeps them out of
    # the run's history (the status changes around them are on record).
    SettlementRun.objects.filter(pk=run_id, status=Status.CALCULATING).update(
        progress=percent, progress_note=note[:200]
    )


@dataclass
class _Inputs:
    figures: list[calculation.MerchantFigures]
    parents: dict[int, int | None]
    terms: dict[int, calculation.Terms]
    agreements: dict[int, RevenueShareAgreement]


def _agreements_in_force(run: SettlementRun) -> dict[int, RevenueShareAgreement]:
    """Per partner, the agreement in the run currency in force on the period's last day."""
    qs = (
        RevenueShareAgreement.objects.filter(currency=run.currency, valid_from__lte=run.period_end)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=run.period_end))
        .prefetch_related("tiers")
    )
    return {a.partner_id: a for a in qs}


def _terms(agreement: RevenueShareAgreement) -> calculation.Terms:
    return calculation.Terms(
        agreement_id=agreement.pk,
        basis=agreement.basis,
        tier_mode=agreement.tier_mode,
        tiers=tuple(sorted((t.from_volume, t.rate_bps) for t in agreement.tiers.all())),
        rounding=agreement.rounding,
        minimum_payout=agreement.minimum_payout,
    )


def _gather(run: SettlementRun) -> _Inputs:
    """Aggregate the period's ledger in the database and convert to the run currency.

    One GROUP BY (merchant, currency, local day): the rows that come back are
    a few per merchant and day, never one per transaction.
    """
    _progress(run.pk, 10, _("Adding up transactions"))
    tz = ZoneInfo(settings.TIME_ZONE)
    rows = list(
        Transaction.objects.filter(
            status__in=Transaction.COUNTED_STATUSES,
            occurred_at__gte=day_start(run.period_start),
            occurred_at__lt=day_start(run.period_end + timedelta(days=1)),
            merchant__partner__isnull=False,
        )
        .annotate(day=TruncDate("occurred_at", tzinfo=tz))
        .values("merchant_id", "currency", "day")
        .annotate(n=Count("id"), amount=Sum("amount"), fee=Sum("fee"), cost=Sum("cost"))
        .order_by()
    )
    # Only merchants whose referral path holds an agreement in the run's
    # currency are settled: the others' transactions are neither converted
    # (an unrelated currency tree needs no rate to this one) nor counted.
    agreements = _agreements_in_force(run)
    parents = dict(Partner.objects.values_list("pk", "parent_id"))
    partner_of = dict(
        Merchant.objects.filter(pk__in={r["merchant_id"] for r in rows}).values_list(
            "pk", "partner_id"
        )
    )
    settled = {
        mid
        for mid, pid in partner_of.items()
        if any(p in agreements for p in calculation.ancestors(pid, parents))
    }
    rows = [r for r in rows if r["merchant_id"] in settled]
    _progress(run.pk, 40, _("Converting currencies"))
    rates = fx.conversion_table(quote=run.currency, needs={(r["currency"], r["day"]) for r in rows})
    sums: dict[int, list] = defaultdict(lambda: [0, Decimal(0), Decimal(0), Decimal(0)])
    for r in rows:
        factor = rates.get((r["currency"], r["day"]), Decimal(1))
        acc = sums[r["merchant_id"]]
        acc[0] += r["n"]
        acc[1] += _exact_sum(r["amount"]) * factor
        acc[2] += _exact_sum(r["fee"]) * factor
        acc[3] += _exact_sum(r["cost"]) * factor
    figures = [
        calculation.MerchantFigures(
            merchant_id=mid,
            partner_id=partner_of.get(mid),
            transaction_count=n,
            volume=volume,
            fee=fee,
            cost=cost,
        )
        for mid, (n, volume, fee, cost) in sorted(sums.items())
    ]
    return _Inputs(
        figures=figures,
        parents=parents,
        terms={pid: _terms(a) for pid, a in agreements.items()},
        agreements=agreements,
    )


FOUR_PLACES = Decimal("0.0001")


def _exact_sum(value: Decimal) -> Decimal:
    """A database SUM of 4-place amounts, back to exactly 4 places.

    PostgreSQL sums NUMERIC exactly; SQLite sums in binary floating point, so
    a total may come back as 84.1400000000001. The true sum of 4-place values
    has 4 places, and the float error is far below half of the 4th place.
    """
    return value.quantize(FOUR_PLACES)


def _previous_carry(run: SettlementRun) -> dict[int, Decimal]:
    """Per partner, what its statement in the last approved run before this one carried out."""
    previous = (
        SettlementRun.objects.filter(
            currency=run.currency,
            status__in=SettlementRun.FROZEN,
            period_end__lt=run.period_start,
        )
        .order_by("-period_end", "-pk")
        .first()
    )
    if previous is None:
        return {}
    return dict(previous.statements.exclude(carried_out=0).values_list("partner_id", "carried_out"))


def settlement_run_compute(*, run_id: int, actor: User) -> SettlementRun:
    """The calculation itself (the task calls it). Reads first, writes in one transaction.

    A missing FX rate, or any refusal, sends the run back to draft with the
    message; the previous results are left as they were.
    """
    run = SettlementRun.objects.get(pk=run_id)
    if run.status != Status.CALCULATING:
        return run  # a redelivered or stale message: nothing to do
    try:
        inputs = _gather(run)
        _progress(run.pk, 60, _("Calculating shares"))
        result = calculation.calculate(
            currency=run.currency,
            merchants=inputs.figures,
            parents=inputs.parents,
            terms=inputs.terms,
        )
        _progress(run.pk, 80, _("Writing statements"))
        return _write(run_id=run.pk, actor=actor, inputs=inputs, result=result)
    except DomainError as exc:
        return _fail(run_id=run.pk, actor=actor, message=exc.message)
    except Exception:
        # A run left "calculating" could never be recalculated: put it back to
        # draft, say so, and keep the traceback in the log for whoever fixes it.
        logger.exception("settlement run %s: calculation failed", run.pk)
        return _fail(
            run_id=run.pk,
            actor=actor,
            message=_(
                "The calculation stopped on an unexpected error and changed nothing; "
                "try again, and tell support if it happens again."
            ),
        )


@transaction.atomic
def _fail(*, run_id: int, actor: User, message: str) -> SettlementRun:
    run = lock_run(run_id)
    if run.status != Status.CALCULATING:
        return run
    run.calculation_error = message
    run.progress = 0
    run.progress_note = ""
    _move(
        run,
        Status.DRAFT,
        actor=actor,
        reason="calculation failed",
        fields=["calculation_error", "progress", "progress_note"],
    )
    return run


def _clear_results(run: SettlementRun, actor: User) -> None:
    """A recalculation's first step: the earlier results go, in bulk, each
    row with its "deleted" history row under one entry per batch."""
    for rows in (
        StatementLine.objects.filter(statement__run=run),
        MerchantBasis.objects.filter(run=run),
        Statement.objects.filter(run=run),
    ):
        trail.bulk_delete_with_history(rows, actor=actor, reason="recalculated")


@transaction.atomic
def _write(
    *, run_id: int, actor: User, inputs: _Inputs, result: calculation.Result
) -> SettlementRun:
    run = lock_run(run_id)
    if run.status != Status.CALCULATING:
        return run
    _clear_results(run, actor)
    carry = _previous_carry(run)
    adjustments = _adjustment_totals(run)
    by_partner = result.lines_by_partner()
    partner_ids = sorted(set(by_partner) | set(carry) | set(adjustments))
    statements = []
    for pid in partner_ids:
        rate = result.partner_rate.get(pid)
        agreement = inputs.agreements.get(pid)
        statements.append(
            Statement(
                run=run,
                partner_id=pid,
                agreement=agreement,
                currency=run.currency,
                volume=money.quantize(result.partner_volume.get(pid, Decimal(0)), run.currency),
                tier_from=rate.tier_from if rate else None,
                rate_bps=rate.rate_bps.quantize(Decimal("1E-10")) if rate else Decimal(0),
                reference=f"RS-{run.pk}-{pid}",
            )
        )
    # Totals come from the calculation in memory: each statement is written
    # once, complete, in bulk (no save and history row per statement).
    for statement in statements:
        partner_lines = by_partner.get(statement.partner_id, [])
        statement.lines_total = sum((ln.share for ln in partner_lines), Decimal(0))
        statement.has_negative_spread = any(ln.negative_spread for ln in partner_lines)
        statement.carried_in = carry.get(statement.partner_id, Decimal(0))
        statement.adjustments_total = adjustments.get(statement.partner_id, Decimal(0))
        _apply_payout(statement, inputs.agreements.get(statement.partner_id))
    statements = _bulk_create(statements, Statement, actor=actor)
    statement_of = {s.partner_id: s for s in statements}
    lines = []
    bases = []
    for merchant in result.merchants:
        f = merchant.figures
        bases.append(
            MerchantBasis(
                run=run,
                merchant_id=f.merchant_id,
                basis_kind=merchant.basis_kind,
                transaction_count=f.transaction_count,
                volume=money.quantize(f.volume, run.currency),
                basis=merchant.basis,
                shares=merchant.shares,
                retained=merchant.retained,
            )
        )
        for line in merchant.lines:
            rate = result.partner_rate[line.partner_id]
            lines.append(
                StatementLine(
                    statement=statement_of[line.partner_id],
                    merchant_id=f.merchant_id,
                    role=line.role,
                    transaction_count=f.transaction_count,
                    volume=money.quantize(f.volume, run.currency),
                    basis=merchant.basis,
                    tier_from=rate.tier_from,
                    partner_rate_bps=line.partner_rate_bps.quantize(Decimal("1E-10")),
                    child_rate_bps=(
                        line.child_rate_bps.quantize(Decimal("1E-10"))
                        if line.child_rate_bps is not None
                        else None
                    ),
                    rate_bps=line.rate_bps.quantize(Decimal("1E-10")),
                    share=line.share,
                    negative_spread=line.negative_spread,
                )
            )
    _bulk_create(bases, MerchantBasis, actor=actor)
    _bulk_create(lines, StatementLine, actor=actor)
    run.transaction_count = sum(f.transaction_count for f in inputs.figures)
    run.total_volume = money.quantize(
        sum((f.volume for f in inputs.figures), Decimal(0)), run.currency
    )
    run.total_basis = result.total_basis
    run.total_share = result.total_shares
    run.platform_retained = result.total_retained
    run.calculated_at = timezone.now()
    run.progress = 100
    run.progress_note = _("Done")
    _set_run_totals(run, statements)
    _move(
        run,
        Status.CALCULATED,
        actor=actor,
        reason="calculated",
        fields=[
            "transaction_count",
            "total_volume",
            "total_basis",
            "total_share",
            "platform_retained",
            "total_adjustments",
            "total_payable",
            "calculated_at",
            "progress",
            "progress_note",
        ],
    )
    return run


def _bulk_create(objs: list, model, *, actor: User) -> list:
    """Insert in batches with one history row each, naming the actor and origin."""
    return trail.bulk_create_with_history(
        objs, model, batch_size=1000, actor=actor, reason="calculated"
    )


def _apply_payout(statement: Statement, agreement: RevenueShareAgreement | None) -> None:
    result = calculation.payout(
        lines_total=statement.lines_total,
        adjustments=statement.adjustments_total,
        carried_in=statement.carried_in,
        minimum=agreement.minimum_payout if agreement else Decimal(0),
    )
    statement.total = result.total
    statement.payable = result.payable
    statement.carried_out = result.carried_out


STATEMENT_TOTAL_FIELDS = [
    "lines_total",
    "has_negative_spread",
    "carried_in",
    "adjustments_total",
    "total",
    "payable",
    "carried_out",
]


def _save_statements(statements: list[Statement], *, actor: User, reason: str) -> None:
    for statement in statements:
        audit.stamp(statement, actor=actor, reason=reason)
        statement.save(update_fields=[*STATEMENT_TOTAL_FIELDS, "updated_at"])


def _set_run_totals(run: SettlementRun, statements: list[Statement]) -> None:
    run.total_adjustments = sum((s.adjustments_total for s in statements), Decimal(0))
    run.total_payable = sum((s.payable for s in statements), Decimal(0))


def _adjustment_totals(run: SettlementRun) -> dict[int, Decimal]:
    return {
        partner_id: _exact_sum(total)
        for partner_id, total in run.adjustments.values("partner_id")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("partner_id", "total")
    }


# ---------------------------------------------------------------------------
# Adjustments
# ---------------------------------------------------------------------------


@transaction.atomic
def adjustment_create(
    *, actor: User, run: SettlementRun, partner: Partner, amount: Decimal, reason: str
) -> Adjustment:
    """A credit (positive) or debit (negative) on a partner's statement, before submission."""
    _require(actor, "add_adjustment")
    run = lock_run(run.pk)
    if not run.is_editable:
        raise TransitionError(
            run,
            run.status,
            _("Adjustments can be made only before the run is submitted; it is %(s)s.")
            % {"s": run.get_status_display()},
        )
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the adjustment is made.")})
    if amount == 0:
        raise ValidationError({"amount": _("Enter an amount other than zero.")})
    try:
        money.validate_scale(amount, run.currency)
    except ValidationError as exc:
        raise ValidationError({"amount": exc.messages}) from None
    adjustment = Adjustment(
        run=run, partner=partner, amount=amount, reason=reason.strip(), created_by=actor
    )
    adjustment.full_clean()
    audit.stamp(adjustment, actor=actor, reason=reason.strip())
    adjustment.save()
    _refresh_statement(run, partner, actor=actor)
    return adjustment


@transaction.atomic
def adjustment_delete(*, actor: User, adjustment: Adjustment) -> None:
    _require(actor, "add_adjustment")
    run = lock_run(adjustment.run_id)
    if not run.is_editable:
        raise TransitionError(run, run.status, _("The run is submitted; adjustments are fixed."))
    partner = adjustment.partner
    audit.stamp(adjustment, actor=actor, reason="adjustment removed")
    adjustment.delete()
    _refresh_statement(run, partner, actor=actor)


def _refresh_statement(run: SettlementRun, partner: Partner, *, actor: User) -> None:
    """Re-total the partner's statement (creating it if the run has none for it yet)."""
    if run.status != Status.CALCULATED:
        return  # a draft gets its adjustments when it is calculated
    statement = Statement.objects.select_for_update().filter(run=run, partner=partner).first()
    if statement is None:
        statement = Statement(
            run=run,
            partner=partner,
            currency=run.currency,
            carried_in=_previous_carry(run).get(partner.pk, Decimal(0)),
            reference=f"RS-{run.pk}-{partner.pk}",
        )
        audit.stamp(statement, actor=actor, reason="adjustment")
        statement.save()
    statement.adjustments_total = _adjustment_totals(run).get(partner.pk, Decimal(0))
    _apply_payout(statement, statement.agreement)
    _save_statements([statement], actor=actor, reason="adjustment")
    _set_run_totals(run, list(run.statements.all()))
    audit.stamp(run, actor=actor, reason="adjustment")
    run.save(update_fields=["total_adjustments", "total_payable", "updated_at"])


# ---------------------------------------------------------------------------
# Four eyes
# ---------------------------------------------------------------------------


@transaction.atomic
def settlement_run_submit(*, actor: User, run: SettlementRun) -> SettlementRun:
    """Hand a calculated run to the approvers; above the threshold it needs two."""
    _require(actor, "change_settlementrun")
    run = lock_run(run.pk)
    if not run.can_move_to(Status.SUBMITTED):
        raise TransitionError(run, Status.SUBMITTED, _transition_message(run, Status.SUBMITTED))
    run.approvals_required = 2 if run.total_payable > dual_approval_threshold(run.currency) else 1
    run.submission += 1
    run.submitted_at = timezone.now()
    run.rejection_reason = ""
    _move(
        run,
        Status.SUBMITTED,
        actor=actor,
        reason="submitted for approval",
        fields=["approvals_required", "submission", "submitted_at", "rejection_reason"],
    )
    return run


def makers(run: SettlementRun) -> set[int]:
    """Users who made this run's figures: they may not check them."""
    return {run.prepared_by_id, *run.adjustments.values_list("created_by_id", flat=True)}


@transaction.atomic
def settlement_run_approve(*, actor: User, run: SettlementRun, comment: str = "") -> SettlementRun:
    """One approval. Four eyes: the preparer, or whoever adjusted the run, may never
    approve it, and two approvals must come from two different people."""
    _require(actor, "approve_settlementrun")
    run = lock_run(run.pk)
    if not run.can_move_to(Status.APPROVED):
        raise TransitionError(run, Status.APPROVED, _transition_message(run, Status.APPROVED))
    if actor.pk == run.prepared_by_id:
        raise DomainError(_("Whoever prepared a run cannot approve it."))
    if actor.pk in makers(run):
        raise DomainError(_("Whoever adjusted a run cannot approve it."))
    if run.approvals.filter(submission=run.submission, approver=actor).exists():
        raise DomainError(_("You have already approved this run; a second person must."))
    approval = SettlementApproval(
        run=run, approver=actor, submission=run.submission, comment=comment
    )
    audit.stamp(approval, actor=actor, reason=comment or "approved")
    approval.save()
    given = run.approvals.filter(submission=run.submission).count()
    if given >= run.approvals_required:
        run.approved_at = timezone.now()
        _move(
            run, Status.APPROVED, actor=actor, reason=comment or "approved", fields=["approved_at"]
        )
    return run


@transaction.atomic
def settlement_run_reject(*, actor: User, run: SettlementRun, reason: str) -> SettlementRun:
    """Send a submitted run back to draft with the reason."""
    _require(actor, "approve_settlementrun")
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the run is rejected.")})
    run = lock_run(run.pk)
    if not run.can_move_to(Status.REJECTED):
        raise TransitionError(run, Status.REJECTED, _transition_message(run, Status.REJECTED))
    run.rejection_reason = reason.strip()
    _move(run, Status.REJECTED, actor=actor, reason=reason.strip(), fields=["rejection_reason"])
    _move(run, Status.DRAFT, actor=actor, reason="returned to draft after rejection")
    return run
