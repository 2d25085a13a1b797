"""Two approvers at once never produce two transitions (PostgreSQL row locks)."""

import threading

import pytest
from django.db import connection

from core.exceptions import DomainError
from settlements.models import SettlementApproval, SettlementRun
from settlements.services import runs
from tests.conftest import restore_roles
from tests.factories.core import UserFactory
from tests.settlements.runs_setup import OCT_END, OCT_START, build_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are only meaningful on PostgreSQL; set DATABASE_URL to run")


def _race(run, approvers) -> list[str]:
    barrier = threading.Barrier(len(approvers))
    outcomes: list[str] = []

    def approve(user):
        try:
            barrier.wait(timeout=10)
            runs.settlement_run_approve(actor=user, run=SettlementRun.objects.get(pk=run.pk))
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(f"refused: {exc.message}")
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(u,)) for u in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.fixture
def submitted_run():
    restore_roles()  # an earlier transactional test's flush removed them
    preparer = UserFactory(username="prep", roles=["finance"])
    build_world(actor=preparer)
    run = runs.settlement_run_create(
        actor=preparer, period_start=OCT_START, period_end=OCT_END, currency="HKD"
    )
    runs.settlement_run_calculate(actor=preparer, run=run)  # eager after commit
    return runs.settlement_run_submit(actor=preparer, run=run)


def test_two_approvers_at_once_on_a_one_approval_run_move_it_once(submitted_run):
    approvers = [UserFactory(username=f"chk{i}", roles=["finance"]) for i in range(2)]
    outcomes = _race(submitted_run, approvers)
    submitted_run.refresh_from_db()
    assert submitted_run.status == SettlementRun.Status.APPROVED
    assert outcomes.count("ok") == 1
    assert len(outcomes) == 2
    assert SettlementApproval.objects.filter(run=submitted_run).count() == 1
    assert submitted_run.history.filter(status=SettlementRun.Status.APPROVED).count() == 1


def test_one_approver_twice_at_once_counts_once(submitted_run):
    SettlementRun.objects.filter(pk=submitted_run.pk).update(approvals_required=2)
    twin = UserFactory(username="twin", roles=["finance"])
    outcomes = _race(submitted_run, [twin, twin])
    submitted_run.refresh_from_db()
    assert submitted_run.status == SettlementRun.Status.SUBMITTED
    assert outcomes.count("ok") == 1
    assert SettlementApproval.objects.filter(run=submitted_run).count() == 1
