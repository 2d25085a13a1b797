"""Settlement runs through the services: hand-checked figures, states, four eyes, freeze."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from core.exceptions import DomainError, TransitionError
from settlements.models import SettlementRun, Statement, StatementLine
from settlements.services import runs
from tests.settlements.runs_setup import OCT_END, OCT_START, build_world

pytestmark = pytest.mark.django_db

Status = SettlementRun.Status


def calculated_run(actor, capture, **world_kwargs):
    world = build_world(actor=actor, **world_kwargs)
    run = runs.settlement_run_create(
        actor=actor, period_start=OCT_START, period_end=OCT_END, currency="HKD"
    )
    with capture(execute=True):
        runs.settlement_run_calculate(actor=actor, run=run)
    run.refresh_from_db()
    return world, run


def test_calculation_matches_the_hand_worked_figures(finance1, django_capture_on_commit_callbacks):
    # given / when
    world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    # then
    assert run.status == Status.CALCULATED, run.calculation_error
    assert run.progress == 100
    master = Statement.objects.get(run=run, partner=world.master)
    sub = Statement.objects.get(run=run, partner=world.sub)
    assert master.volume == Decimal("133000.00")
    assert master.rate_bps == Decimal("4000")
    assert master.tier_from == Decimal("100000")
    assert sub.volume == Decimal("55000.00")
    lines = {
        (line.statement.partner_id, line.merchant_id): line
        for line in StatementLine.objects.filter(statement__run=run).select_related("statement")
    }
    # m1 basis 1,100: S 20 % = 220; M spread 40 % - 20 % = 220.
    assert lines[(world.sub.pk, world.m1.pk)].share == Decimal("220.00")
    assert lines[(world.master.pk, world.m1.pk)].share == Decimal("220.00")
    assert lines[(world.master.pk, world.m1.pk)].rate_bps == Decimal("2000")
    # m2 basis 250 USD * 7.8 = 1,950 HKD: M 40 % = 780.
    assert lines[(world.master.pk, world.m2.pk)].share == Decimal("780.00")
    assert master.total == master.payable == Decimal("1000.00")
    assert sub.payable == Decimal("220.00")
    assert run.total_basis == Decimal("3050.00")
    assert run.total_share == Decimal("1220.00")
    assert run.platform_retained == Decimal("1830.00")
    assert run.total_share + run.platform_retained == run.total_basis
    assert run.transaction_count == 3
    assert run.total_payable == Decimal("1220.00")


def test_graduated_tiers_use_the_volume_weighted_rate(finance1, django_capture_on_commit_callbacks):
    world, run = calculated_run(
        finance1, django_capture_on_commit_callbacks, master_mode="graduated"
    )
    master = Statement.objects.get(run=run, partner=world.master)
    # (100,000 * 3,000 + 33,000 * 4,000) / 133,000 bps
    assert master.rate_bps == Decimal("3248.1203007519")
    shares = dict(master.lines.values_list("merchant_id", "share"))
    assert shares[world.m1.pk] == Decimal("137.29")  # 1,100 * (3248.12… - 2000) bps
    assert shares[world.m2.pk] == Decimal("633.38")  # 1,950 * 3248.12… bps


def test_missing_fx_rate_stops_the_calculation_naming_currency_and_date(
    finance1, django_capture_on_commit_callbacks
):
    from settlements.models import FxRate

    build_world(actor=finance1)
    FxRate.objects.all().delete()
    run = runs.settlement_run_create(
        actor=finance1, period_start=OCT_START, period_end=OCT_END, currency="HKD"
    )
    with django_capture_on_commit_callbacks(execute=True):
        runs.settlement_run_calculate(actor=finance1, run=run)
    run.refresh_from_db()
    assert run.status == Status.DRAFT
    assert "USD to HKD on 2026-10-15" in run.calculation_error
    assert not run.statements.exists()


def test_inverse_rate_is_used_when_only_the_other_direction_is_entered(
    finance1, django_capture_on_commit_callbacks
):
    from settlements.models import FxRate

    build_world(actor=finance1)
    FxRate.objects.update(base="HKD", quote="USD", rate=Decimal("0.125"))
    run = runs.settlement_run_create(
        actor=finance1, period_start=OCT_START, period_end=OCT_END, currency="HKD"
    )
    with django_capture_on_commit_callbacks(execute=True):
        runs.settlement_run_calculate(actor=finance1, run=run)
    run.refresh_from_db()
    # 250 USD at 8 HKD = 2,000 HKD of fees for m2; m1 unchanged at 1,100.
    assert run.total_basis == Decimal("3100.00")


def test_overlapping_runs_of_one_currency_are_refused(finance1):
    runs.settlement_run_create(
        actor=finance1, period_start=OCT_START, period_end=OCT_END, currency="HKD"
    )
    with pytest.raises(ValidationError) as exc:
        runs.settlement_run_create(
            actor=finance1, period_start=date(2026, 10, 15), period_end=OCT_END, currency="HKD"
        )
    assert "period_start" in exc.value.message_dict
    # Another currency may settle the same month.
    runs.settlement_run_create(
        actor=finance1, period_start=OCT_START, period_end=OCT_END, currency="USD"
    )


def test_a_period_that_has_not_ended_cannot_be_settled(finance1):
    with pytest.raises(ValidationError) as exc:
        runs.settlement_run_create(
            actor=finance1, period_start=date(2026, 11, 1), period_end=date(2099, 1, 1),
            currency="HKD",
        )  # fmt: skip
    assert "period_end" in exc.value.message_dict


def test_preparer_cannot_approve_own_run(finance1, django_capture_on_commit_callbacks):
    # given
    _world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    runs.settlement_run_submit(actor=finance1, run=run)
    # when / then
    with pytest.raises(DomainError, match="prepared"):
        runs.settlement_run_approve(actor=finance1, run=run)
    run.refresh_from_db()
    assert run.status == Status.SUBMITTED
    assert not run.approvals.exists()


def test_whoever_adjusted_a_run_cannot_approve_it(
    finance1, finance2, finance3, django_capture_on_commit_callbacks
):
    world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    runs.adjustment_create(
        actor=finance2, run=run, partner=world.sub, amount=Decimal("-20.00"), reason="clawback"
    )
    runs.settlement_run_submit(actor=finance1, run=run)
    with pytest.raises(DomainError, match="adjusted"):
        runs.settlement_run_approve(actor=finance2, run=run)
    runs.settlement_run_approve(actor=finance3, run=run)
    run.refresh_from_db()
    assert run.status == Status.APPROVED


def test_large_runs_need_two_different_approvers(
    finance1, finance2, finance3, settings, django_capture_on_commit_callbacks
):
    settings.SETTLEMENT_DUAL_APPROVAL_ABOVE = {"*": "1000"}
    _world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    run = runs.settlement_run_submit(actor=finance1, run=run)
    assert run.approvals_required == 2
    runs.settlement_run_approve(actor=finance2, run=run)
    run.refresh_from_db()
    assert run.status == Status.SUBMITTED
    with pytest.raises(DomainError, match="already approved"):
        runs.settlement_run_approve(actor=finance2, run=run)
    runs.settlement_run_approve(actor=finance3, run=run, comment="checked against the ledger")
    run.refresh_from_db()
    assert run.status == Status.APPROVED
    assert sorted(run.approvals.values_list("approver__username", flat=True)) == [
        "finance2",
        "finance3",
    ]


def test_small_runs_need_one_approver(finance1, finance2, django_capture_on_commit_callbacks):
    _world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    run = runs.settlement_run_submit(actor=finance1, run=run)
    assert run.approvals_required == 1
    runs.settlement_run_approve(actor=finance2, run=run)
    run.refresh_from_db()
    assert run.status == Status.APPROVED


def test_rejection_returns_to_draft_with_the_reason_and_approvals_start_over(
    finance1, finance2, finance3, settings, django_capture_on_commit_callbacks
):
    settings.SETTLEMENT_DUAL_APPROVAL_ABOVE = {"*": "1000"}
    _world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    runs.settlement_run_submit(actor=finance1, run=run)
    runs.settlement_run_approve(actor=finance2, run=run)
    runs.settlement_run_reject(actor=finance3, run=run, reason="Sub Agent rate is wrong")
    run.refresh_from_db()
    assert run.status == Status.DRAFT
    assert run.rejection_reason == "Sub Agent rate is wrong"
    statuses = list(run.history.order_by("history_id").values_list("status", flat=True))
    assert statuses[-2:] == [Status.REJECTED, Status.DRAFT]
    # recalculated and resubmitted: finance2's earlier approval does not count
    with django_capture_on_commit_callbacks(execute=True):
        runs.settlement_run_calculate(actor=finance1, run=run)
    run = runs.settlement_run_submit(actor=finance1, run=run)
    runs.settlement_run_approve(actor=finance3, run=run)
    run.refresh_from_db()
    assert run.status == Status.SUBMITTED
    runs.settlement_run_approve(actor=finance2, run=run)
    run.refresh_from_db()
    assert run.status == Status.APPROVED


def test_rejection_needs_a_reason(finance1, finance2, django_capture_on_commit_callbacks):
    _world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    runs.settlement_run_submit(actor=finance1, run=run)
    with pytest.raises(ValidationError) as exc:
        runs.settlement_run_reject(actor=finance2, run=run, reason="  ")
    assert "reason" in exc.value.message_dict


@pytest.mark.parametrize(
    ("status", "call"),
    [
        (Status.DRAFT, "submit"),
        (Status.CALCULATED, "approve"),
        (Status.DRAFT, "reject"),
        (Status.SUBMITTED, "calculate"),
    ],
)
def test_invalid_transitions_raise_transition_error(finance1, finance2, status, call):
    run = runs.settlement_run_create(
        actor=finance1, period_start=OCT_START, period_end=OCT_END, currency="HKD"
    )
    SettlementRun.objects.filter(pk=run.pk).update(status=status)
    actions = {
        "submit": lambda: runs.settlement_run_submit(actor=finance1, run=run),
        "approve": lambda: runs.settlement_run_approve(actor=finance2, run=run),
        "reject": lambda: runs.settlement_run_reject(actor=finance2, run=run, reason="no"),
        "calculate": lambda: runs.settlement_run_calculate(actor=finance1, run=run),
    }
    with pytest.raises(TransitionError):
        actions[call]()


def test_adjustments_move_the_statement_and_the_run_total(
    finance1, django_capture_on_commit_callbacks
):
    world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    runs.adjustment_create(
        actor=finance1, run=run, partner=world.sub, amount=Decimal("30.50"), reason="bonus"
    )
    sub = Statement.objects.get(run=run, partner=world.sub)
    assert sub.adjustments_total == Decimal("30.50")
    assert sub.payable == Decimal("250.50")
    run.refresh_from_db()
    assert run.total_payable == Decimal("1250.50")
    assert run.total_adjustments == Decimal("30.50")
    with pytest.raises(ValidationError) as exc:
        runs.adjustment_create(
            actor=finance1, run=run, partner=world.sub, amount=Decimal("1.005"), reason="x"
        )
    assert "amount" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        runs.adjustment_create(
            actor=finance1, run=run, partner=world.sub, amount=Decimal("5"), reason=""
        )
    assert "reason" in exc.value.message_dict


def test_adjustments_survive_recalculation(finance1, django_capture_on_commit_callbacks):
    world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    runs.adjustment_create(
        actor=finance1, run=run, partner=world.sub, amount=Decimal("-20.00"), reason="clawback"
    )
    with django_capture_on_commit_callbacks(execute=True):
        runs.settlement_run_calculate(actor=finance1, run=run)
    sub = Statement.objects.get(run=run, partner=world.sub)
    assert sub.payable == Decimal("200.00")


def test_negative_and_small_totals_carry_forward_to_the_next_run(
    finance1, finance2, django_capture_on_commit_callbacks
):
    # given: Sub's October statement ends negative after a clawback
    world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    runs.adjustment_create(
        actor=finance1, run=run, partner=world.sub, amount=Decimal("-300.00"), reason="clawback"
    )
    sub = Statement.objects.get(run=run, partner=world.sub)
    assert (sub.total, sub.payable, sub.carried_out) == (
        Decimal("-80.00"),
        Decimal("0"),
        Decimal("-80.00"),
    )
    runs.settlement_run_submit(actor=finance1, run=run)
    runs.settlement_run_approve(actor=finance2, run=run)
    # when: November is settled
    november = runs.settlement_run_create(
        actor=finance1, period_start=date(2026, 11, 1), period_end=date(2026, 11, 20),
        currency="HKD",
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        runs.settlement_run_calculate(actor=finance1, run=november)
    # then: the -80 arrives as carried in (the 1 Nov payment earns Sub 2.50 * 20 % = 0.50)
    nov_sub = Statement.objects.get(run=november, partner=world.sub)
    assert nov_sub.carried_in == Decimal("-80.00")
    assert nov_sub.lines_total == Decimal("0.50")
    assert nov_sub.carried_out == Decimal("-79.50")
    assert nov_sub.payable == 0


def test_approved_run_is_frozen_for_services_and_direct_saves(
    finance1, finance2, django_capture_on_commit_callbacks
):
    world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    runs.settlement_run_submit(actor=finance1, run=run)
    runs.settlement_run_approve(actor=finance2, run=run)
    run.refresh_from_db()
    with pytest.raises(TransitionError):
        runs.settlement_run_calculate(actor=finance1, run=run)
    with pytest.raises(TransitionError):
        runs.adjustment_create(
            actor=finance1, run=run, partner=world.sub, amount=Decimal("1"), reason="late"
        )
    line = StatementLine.objects.filter(statement__run=run).first()
    line.share = Decimal("999.00")
    with pytest.raises(DomainError, match="frozen"):
        line.save()
    # delete() runs inside the caller's transaction: a savepoint keeps the test's usable.
    with pytest.raises(DomainError, match="frozen"), transaction.atomic():
        line.delete()
    run.total_payable = Decimal("1")
    with pytest.raises(DomainError, match="frozen"):
        run.save()
    statement = run.statements.first()
    statement.payable = Decimal("0")
    with pytest.raises(DomainError, match="frozen"):
        statement.save()
    # Its statements protect it from deletion before the guard is even asked.
    with pytest.raises((DomainError, ProtectedError)), transaction.atomic():
        SettlementRun.objects.get(pk=run.pk).delete()
    assert SettlementRun.objects.filter(pk=run.pk, status=Status.APPROVED).exists()
    assert StatementLine.objects.get(pk=line.pk).share != Decimal("999.00")


def test_users_without_finance_rights_are_refused(sales1, finance1):
    with pytest.raises(PermissionDenied):
        runs.settlement_run_create(
            actor=sales1, period_start=OCT_START, period_end=OCT_END, currency="HKD"
        )


def test_history_names_the_actor_and_the_task_origin(finance1, django_capture_on_commit_callbacks):
    _world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    calculated = run.history.filter(status=Status.CALCULATED).get()
    assert calculated.history_user == finance1
    assert calculated.history_origin == "task settlements.settlement_run_calculate"
    line_history = StatementLine.history.filter(statement__run=run)
    assert line_history.count() == StatementLine.objects.filter(statement__run=run).count()
    assert set(line_history.values_list("history_user", flat=True)) == {finance1.pk}


def test_agreement_money_has_at_most_the_currency_decimals(finance1):
    from settlements.services import agreements
    from tests.factories.merchants import PartnerFactory

    partner = PartnerFactory()
    common = {"basis": "fee", "tier_mode": "whole", "valid_from": date(2026, 1, 1)}
    with pytest.raises(ValidationError) as exc:
        agreements.agreement_create(
            actor=finance1, partner=partner, currency="JPY", minimum_payout=Decimal("10.5"),
            tiers=[{"from_volume": "0", "rate_bps": "100"}], **common,
        )  # fmt: skip
    assert "minimum_payout" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        agreements.agreement_create(
            actor=finance1, partner=partner, currency="HKD",
            tiers=[{"from_volume": "0", "rate_bps": "100"},
                   {"from_volume": "1000.001", "rate_bps": "200"}], **common,
        )  # fmt: skip
    assert "tiers" in exc.value.message_dict
    agreements.agreement_create(
        actor=finance1, partner=partner, currency="KWD", minimum_payout=Decimal("10.125"),
        tiers=[{"from_volume": "0", "rate_bps": "100.5"}], **common,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("tier", "message"),
    [
        ({"from_volume": "0", "rate_bps": "1234.56789"}, "4 decimal places"),
        ({"from_volume": "0", "rate_bps": "12345678.5"}, "between 0 and 10,000"),
        ({"from_volume": "1e20", "rate_bps": "100"}, "Tier 2"),
    ],
)
def test_agreement_tiers_the_database_cannot_hold_exactly_are_refused(finance1, tier, message):
    """Issue 12 finding 13: a rate of 1234.56789 bps was stored as 1234.5679."""
    from settlements.models import AgreementTier, RevenueShareAgreement
    from settlements.services import agreements
    from tests.factories.merchants import PartnerFactory

    tiers = [{"from_volume": "0", "rate_bps": "100"}, tier]
    if tier["from_volume"] == "0":
        tiers = [tier]
    with pytest.raises(ValidationError) as exc:
        agreements.agreement_create(
            actor=finance1, partner=PartnerFactory(), currency="HKD", basis="fee",
            tier_mode="whole", valid_from=date(2026, 1, 1), tiers=tiers,
        )  # fmt: skip
    assert list(exc.value.message_dict) == ["tiers"]
    assert message in exc.value.message_dict["tiers"][0]
    assert not RevenueShareAgreement.objects.exists()
    assert not AgreementTier.objects.exists()


def test_an_unexpected_error_returns_the_run_to_draft_with_a_message(
    finance1, django_capture_on_commit_callbacks, monkeypatch
):
    from settlements import calculation

    build_world(actor=finance1)
    run = runs.settlement_run_create(
        actor=finance1, period_start=OCT_START, period_end=OCT_END, currency="HKD"
    )

    def broken(**kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(calculation, "calculate", broken)
    with django_capture_on_commit_callbacks(execute=True):
        runs.settlement_run_calculate(actor=finance1, run=run)
    run.refresh_from_db()
    assert run.status == Status.DRAFT
    assert "unexpected error" in run.calculation_error
    assert not run.statements.exists()


def test_a_stalled_calculation_can_be_queued_again_and_a_live_one_cannot(
    finance1, web, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.urls import reverse
    from django.utils import timezone

    build_world(actor=finance1)
    run = runs.settlement_run_create(
        actor=finance1, period_start=OCT_START, period_end=OCT_END, currency="HKD"
    )
    # given: a calculation requested just now whose message never reaches a worker
    SettlementRun.objects.filter(pk=run.pk).update(status=Status.CALCULATING)
    run.refresh_from_db()
    with pytest.raises(TransitionError):
        runs.settlement_run_calculate(actor=finance1, run=run)
    page = web(finance1).get(run.get_absolute_url()).content.decode()
    assert 'data-testid="restart"' not in page
    # when: it has been calculating for longer than any task may run
    SettlementRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    page = web(finance1).get(run.get_absolute_url()).content.decode()
    assert 'data-testid="restart"' in page
    with django_capture_on_commit_callbacks(execute=True):
        web(finance1).post(reverse("settlements:run-calculate", args=[run.pk]))
    # then
    run.refresh_from_db()
    assert run.status == Status.CALCULATED
    assert run.history.filter(
        history_change_reason="calculation queued again after it stalled"
    ).exists()


def _batch_entries(model):
    """The calculation's entries for ``model``: one per batch it wrote."""
    from core.models import AuditEntry

    return list(
        AuditEntry.objects.filter(model=model._meta.label_lower, action="create").order_by("id")
    )


def test_calculated_statements_and_lines_are_on_the_audit_trail(
    finance1, django_capture_on_commit_callbacks
):
    from core import trail, trailcheck

    # given / when
    _world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    # then: the lines' one batch entry proves exactly their "created" history rows
    line_rows = StatementLine.history.filter(statement__run=run, history_type="+")
    count = line_rows.count()
    assert 0 < count <= 1000  # one batch
    (entry,) = _batch_entries(StatementLine)
    assert entry.object_label == f"{count} statement lines"
    assert entry.changes == {"rows": [None, count]}
    assert (entry.actor, entry.reason) == (finance1, "calculated")
    assert entry.origin == "task settlements.settlement_run_calculate"
    assert entry.row_model == "settlements.historicalstatementline"
    assert list(trail.ids_of(entry.row_ids)) == sorted(
        line_rows.values_list("history_id", flat=True)
    )
    assert entry.row_digest == trail.objects_digest(
        list(line_rows.order_by("history_id")), entry.key_id
    )
    # and the statements' one batch entry theirs
    statement_rows = Statement.history.filter(run=run, history_type="+")
    (entry,) = _batch_entries(Statement)
    assert entry.row_model == "settlements.historicalstatement"
    assert entry.changes == {"rows": [None, run.statements.count()]}
    assert list(trail.ids_of(entry.row_ids)) == sorted(
        statement_rows.values_list("history_id", flat=True)
    )
    trail.seal()
    assert trailcheck.verify().intact


def _recalculate(actor, run, capture) -> int:
    """Queries of a recalculation of ``run``."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries, capture(execute=True):
        runs.settlement_run_calculate(actor=actor, run=run)
    run.refresh_from_db()
    assert run.status == Status.CALCULATED, run.calculation_error
    return len(queries)


def test_recalculation_replaces_the_results_in_bulk_with_their_history(
    finance1, django_capture_on_commit_callbacks
):
    from datetime import datetime

    from core import trailcheck
    from core.models import AuditEntry
    from tests.factories.settlements import TransactionFactory
    from tests.settlements.runs_setup import HK, _merchant

    world, run = calculated_run(finance1, django_capture_on_commit_callbacks)
    few = _recalculate(finance1, run, django_capture_on_commit_callbacks)
    old_lines = list(StatementLine.objects.filter(statement__run=run).values_list("pk", flat=True))
    # ten more merchants, each a line on both statements
    for _ in range(10):
        TransactionFactory(
            merchant=_merchant(world.sub), occurred_at=datetime(2026, 10, 20, tzinfo=HK)
        )
    _recalculate(finance1, run, django_capture_on_commit_callbacks)
    assert StatementLine.objects.filter(statement__run=run).count() == 2 * 10 + len(old_lines)
    many = _recalculate(finance1, run, django_capture_on_commit_callbacks)
    # the same queries for 3 lines as for 23: nothing per deleted or new row
    assert many == few
    # each replaced line has its "deleted" history row, by the actor, on one entry
    history = StatementLine.history.filter(id__in=old_lines, history_type="-")
    assert history.count() == len(old_lines)
    assert {h.history_user_id for h in history} == {finance1.pk}
    deletions = AuditEntry.objects.filter(
        action="delete", model="settlements.statementline", row_model__endswith="statementline"
    )
    assert deletions.count() == 3  # one batch per recalculation
    assert all(e.actor_id == finance1.pk and e.reason == "recalculated" for e in deletions)
    assert trailcheck.verify(records=True).problems == []


def test_unrelated_currency_trees_settle_without_rates_between_them(
    finance1, django_capture_on_commit_callbacks
):
    """Issue 12 finding 12: an HKD tree and a separate JPY tree, no FX rate
    between the two: each run converts only what it settles."""
    from settlements.models import FxRate
    from settlements.services import agreements
    from tests.factories.merchants import MerchantFactory, PartnerFactory
    from tests.factories.settlements import TransactionFactory
    from tests.settlements.runs_setup import HK

    # given: the HKD world (its USD rate included) and a JPY tree beside it
    world = build_world(actor=finance1)
    tokyo = PartnerFactory(name="Tokyo Agent")
    agreements.agreement_create(
        actor=finance1, partner=tokyo, basis="fee", tier_mode="whole", currency="JPY",
        valid_from=date(2026, 1, 1), tiers=[{"from_volume": "0", "rate_bps": "5000"}],
    )  # fmt: skip
    shop = MerchantFactory(partner=tokyo)
    from datetime import datetime

    TransactionFactory(
        merchant=shop, currency="JPY", amount=Decimal("100000"), fee=Decimal("3000"),
        cost=Decimal("1000"), occurred_at=datetime(2026, 10, 20, 9, 0, tzinfo=HK),
    )  # fmt: skip
    assert not FxRate.objects.filter(base__in=["HKD", "JPY"], quote__in=["HKD", "JPY"]).exists()
    results = {}
    for currency in ("HKD", "JPY"):
        run = runs.settlement_run_create(
            actor=finance1, period_start=OCT_START, period_end=OCT_END, currency=currency
        )
        with django_capture_on_commit_callbacks(execute=True):
            runs.settlement_run_calculate(actor=finance1, run=run)
        run.refresh_from_db()
        results[currency] = run
    # then: both calculated; each holds only its own tree
    hkd, jpy = results["HKD"], results["JPY"]
    assert hkd.status == Status.CALCULATED, hkd.calculation_error
    assert jpy.status == Status.CALCULATED, jpy.calculation_error
    assert hkd.total_basis == Decimal("3050.00")  # as in the hand-worked figures
    assert set(hkd.statements.values_list("partner_id", flat=True)) == {
        world.master.pk,
        world.sub.pk,
    }
    assert list(jpy.statements.values_list("partner_id", flat=True)) == [tokyo.pk]
    assert jpy.total_basis == Decimal("3000")
    assert jpy.total_share == Decimal("1500")
