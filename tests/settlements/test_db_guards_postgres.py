"""The ledger and approved runs on PostgreSQL: the guard triggers of migration
settlements/0005 refuse what ``settlements.guards`` cannot see.

Queryset ``update()``/``delete()``/``bulk_create()`` and raw SQL send no model
signals; the triggers exist on PostgreSQL only, so these tests skip on SQLite.
Each refusal is provoked inside a savepoint, so that the test can go on and
check the row is unchanged.
"""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from settlements.models import (
    Adjustment,
    MerchantBasis,
    SettlementApproval,
    SettlementRun,
    Statement,
    StatementLine,
    Transaction,
)
from settlements.services import runs
from tests.factories.merchants import MerchantFactory
from tests.factories.settlements import TransactionFactory
from tests.settlements.runs_setup import OCT_END, OCT_START, build_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

Status = SettlementRun.Status
FROZEN = "frozen"


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the guard triggers exist on PostgreSQL only; set DATABASE_URL to run")


def _sql(statement: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def _refused(write, *, match: str) -> None:
    """The write fails with the trigger's error; the savepoint keeps the test going."""
    with pytest.raises(IntegrityError, match=match), transaction.atomic():
        write()


@pytest.fixture
def calculated(finance1, django_capture_on_commit_callbacks):
    world = build_world(actor=finance1)
    run = runs.settlement_run_create(
        actor=finance1, period_start=OCT_START, period_end=OCT_END, currency="HKD"
    )
    with django_capture_on_commit_callbacks(execute=True):
        runs.settlement_run_calculate(actor=finance1, run=run)
    run.refresh_from_db()
    assert run.status == Status.CALCULATED, run.calculation_error
    return world, run


@pytest.fixture
def approved(calculated, finance1, finance2):
    world, run = calculated
    runs.adjustment_create(
        actor=finance1, run=run, partner=world.sub, amount=Decimal("5.00"), reason="bonus"
    )
    runs.settlement_run_submit(actor=finance1, run=run)
    runs.settlement_run_approve(actor=finance2, run=run)
    run.refresh_from_db()
    assert run.status == Status.APPROVED
    return world, run


def _run_row(run: SettlementRun) -> dict:
    return SettlementRun.objects.filter(pk=run.pk).values().get()


# ---------------------------------------------------------------------------
# Ledger
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("door", ["queryset", "sql"])
def test_a_stored_transactions_amount_cannot_be_updated(door):
    # given
    tx = TransactionFactory(amount=Decimal("100.00"))
    writes = {
        "queryset": lambda: Transaction.objects.filter(pk=tx.pk).update(amount=Decimal("1.00")),
        "sql": lambda: _sql("UPDATE settlements_transaction SET amount = 1 WHERE id = %s", [tx.pk]),
    }
    # when / then
    _refused(writes[door], match="append-only")
    tx.refresh_from_db()
    assert tx.amount == Decimal("100.00")


@pytest.mark.parametrize("door", ["queryset", "sql"])
def test_a_stored_transaction_cannot_be_deleted(door):
    # given
    tx = TransactionFactory()
    writes = {
        "queryset": lambda: Transaction.objects.filter(pk=tx.pk).delete(),
        "sql": lambda: _sql("DELETE FROM settlements_transaction WHERE id = %s", [tx.pk]),
    }
    # when / then
    _refused(writes[door], match="append-only")
    assert Transaction.objects.filter(pk=tx.pk).exists()


def test_new_transactions_are_still_stored():
    # given / when
    tx = TransactionFactory(amount=Decimal("42.00"))
    # then
    assert Transaction.objects.get(pk=tx.pk).amount == Decimal("42.00")


# ---------------------------------------------------------------------------
# The run itself
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("frozen_status", [Status.APPROVED, Status.EXPORTED])
def test_a_frozen_run_cannot_go_back_to_draft(approved, frozen_status):
    # given
    _world, run = approved
    if frozen_status == Status.EXPORTED:
        SettlementRun.objects.filter(pk=run.pk).update(status=frozen_status)
    before = _run_row(run)
    # when / then
    _refused(
        lambda: SettlementRun.objects.filter(pk=run.pk).update(status=Status.DRAFT), match=FROZEN
    )
    assert _run_row(run) == before


@pytest.mark.parametrize("status", [Status.APPROVED, Status.EXPORTED])
def test_an_approved_runs_total_cannot_change_even_on_export(approved, status):
    # given
    _world, run = approved
    before = _run_row(run)
    # when / then: the total alone, or with the one status move still allowed
    _refused(
        lambda: SettlementRun.objects.filter(pk=run.pk).update(
            status=status, total_payable=before["total_payable"] + 1
        ),
        match=FROZEN,
    )
    _refused(
        lambda: _sql(
            "UPDATE settlements_settlementrun SET total_payable = 0 WHERE id = %s", [run.pk]
        ),
        match=FROZEN,
    )
    assert _run_row(run) == before


def test_an_approved_run_cannot_be_deleted(approved):
    # given: the foreign keys to it are checked at commit; the trigger at once
    _world, run = approved
    # when / then
    _refused(
        lambda: _sql("DELETE FROM settlements_settlementrun WHERE id = %s", [run.pk]), match=FROZEN
    )
    assert _run_row(run)["status"] == Status.APPROVED


def test_an_approved_run_may_move_to_exported_changing_only_its_status(approved):
    # given
    _world, run = approved
    before = _run_row(run)
    # when
    SettlementRun.objects.filter(pk=run.pk).update(status=Status.EXPORTED)
    # then
    after = _run_row(run)
    assert after.pop("status") == Status.EXPORTED
    before.pop("status")
    assert after == before


# ---------------------------------------------------------------------------
# What belongs to the run
# ---------------------------------------------------------------------------


def test_a_statement_lines_share_cannot_change_in_an_approved_run(approved):
    # given
    _world, run = approved
    lines = StatementLine.objects.filter(statement__run=run)
    before = sorted(lines.values_list("pk", "share"))
    assert before
    # when / then
    _refused(lambda: lines.update(share=Decimal("9999.00")), match=FROZEN)
    _refused(
        lambda: _sql(
            "UPDATE settlements_statementline SET share = 0 WHERE id = %s", [before[0][0]]
        ),
        match=FROZEN,
    )
    assert sorted(lines.values_list("pk", "share")) == before


def test_no_adjustment_can_be_added_to_an_approved_run(approved, finance1):
    # given: bulk_create sends no pre_save, so settlements.guards never sees it
    world, run = approved
    count = Adjustment.objects.filter(run=run).count()
    late = Adjustment(
        run=run, partner=world.sub, amount=Decimal("99.00"), reason="late", created_by=finance1
    )
    # when / then
    _refused(lambda: Adjustment.objects.bulk_create([late]), match=FROZEN)
    assert Adjustment.objects.filter(run=run).count() == count


def _sql_for_run(statement: str):
    return lambda run: _sql(statement, [run.pk])


@pytest.mark.parametrize(
    "write",
    [
        lambda run: Statement.objects.filter(run=run).update(payable=Decimal("0")),
        lambda run: MerchantBasis.objects.filter(run=run).update(retained=Decimal("0")),
        lambda run: Adjustment.objects.filter(run=run).update(amount=Decimal("500.00")),
        lambda run: SettlementApproval.objects.filter(run=run).update(comment="forged"),
        # A queryset delete() sends pre_delete, which settlements.guards
        # refuses first: raw SQL reaches the triggers.
        _sql_for_run("DELETE FROM settlements_statement WHERE run_id = %s"),
        _sql_for_run(
            "DELETE FROM settlements_statementline WHERE statement_id IN "
            "(SELECT id FROM settlements_statement WHERE run_id = %s)"
        ),
        _sql_for_run("DELETE FROM settlements_merchantbasis WHERE run_id = %s"),
        _sql_for_run("DELETE FROM settlements_adjustment WHERE run_id = %s"),
        _sql_for_run("DELETE FROM settlements_settlementapproval WHERE run_id = %s"),
    ],
    ids=[
        "statement-update",
        "basis-update",
        "adjustment-update",
        "approval-update",
        "statement-delete",
        "line-delete",
        "basis-delete",
        "adjustment-delete",
        "approval-delete",
    ],
)
def test_nothing_of_an_approved_run_changes_by_update_or_delete(approved, write):
    # given
    _world, run = approved

    def snapshot():
        return (
            sorted(Statement.objects.filter(run=run).values_list("pk", "payable")),
            sorted(MerchantBasis.objects.filter(run=run).values_list("pk", "retained")),
            StatementLine.objects.filter(statement__run=run).count(),
            sorted(Adjustment.objects.filter(run=run).values_list("pk", "amount")),
            sorted(SettlementApproval.objects.filter(run=run).values_list("pk", "comment")),
        )

    before = snapshot()
    # when / then
    _refused(lambda: write(run), match=FROZEN)
    assert snapshot() == before


def test_a_line_cannot_be_moved_into_an_approved_runs_statement(approved, finance1):
    # given: a line of a draft run of another currency
    _world, run = approved
    other = runs.settlement_run_create(
        actor=finance1, period_start=OCT_START, period_end=OCT_END, currency="USD"
    )
    statement = Statement.objects.filter(run=run).first()
    draft_statement = Statement.objects.create(run=other, partner=statement.partner, currency="USD")
    line = StatementLine.objects.filter(statement=statement).first()
    line.pk = None
    line.statement = draft_statement
    line.merchant = MerchantFactory()
    line.save()
    # when / then
    _refused(
        lambda: StatementLine.objects.filter(pk=line.pk).update(statement=statement),
        match=FROZEN,
    )
    line.refresh_from_db()
    assert line.statement_id == draft_statement.pk


# ---------------------------------------------------------------------------
# Normal work goes on
# ---------------------------------------------------------------------------


def test_statements_of_a_calculated_run_can_still_be_updated(calculated):
    # given
    _world, run = calculated
    # when
    updated = Statement.objects.filter(run=run).update(reference="RS-CHANGED")
    # then
    assert updated > 0
    assert set(Statement.objects.filter(run=run).values_list("reference", flat=True)) == {
        "RS-CHANGED"
    }


def test_a_calculated_run_can_be_adjusted_recalculated_and_approved(
    calculated, finance1, finance2, django_capture_on_commit_callbacks
):
    # given
    world, run = calculated
    # when: every write the services make before and at approval
    runs.adjustment_create(
        actor=finance1, run=run, partner=world.master, amount=Decimal("-3.00"), reason="fee"
    )
    with django_capture_on_commit_callbacks(execute=True):
        runs.settlement_run_calculate(actor=finance1, run=run)
    runs.settlement_run_submit(actor=finance1, run=SettlementRun.objects.get(pk=run.pk))
    runs.settlement_run_approve(actor=finance2, run=run, comment="checked")
    # then
    run.refresh_from_db()
    assert run.status == Status.APPROVED
    assert SettlementApproval.objects.filter(run=run, approver=finance2).exists()
    assert Statement.objects.get(run=run, partner=world.master).adjustments_total == Decimal(
        "-3.00"
    )
