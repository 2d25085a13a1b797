"""An approved run cannot change through the pages either: every form is refused."""

from decimal import Decimal

import pytest
from django.urls import reverse

from settlements.models import Adjustment, SettlementRun, Statement
from settlements.services import runs
from tests.settlements.runs_setup import OCT_END, OCT_START, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(finance1, finance2, django_capture_on_commit_callbacks):
    world = build_world(actor=finance1)
    run = runs.settlement_run_create(
        actor=finance1, period_start=OCT_START, period_end=OCT_END, currency="HKD"
    )
    with django_capture_on_commit_callbacks(execute=True):
        runs.settlement_run_calculate(actor=finance1, run=run)
    adjustment = runs.adjustment_create(
        actor=finance1, run=run, partner=world.sub, amount=Decimal("5.00"), reason="bonus"
    )
    runs.settlement_run_submit(actor=finance1, run=run)
    runs.settlement_run_approve(actor=finance2, run=run)
    run.refresh_from_db()
    return world, run, adjustment


def _snapshot(run: SettlementRun) -> tuple:
    run.refresh_from_db()
    statements = sorted(Statement.objects.filter(run=run).values_list("partner_id", "payable"))
    return run.status, run.total_payable, run.updated_at, statements, run.adjustments.count()


def test_no_form_changes_an_approved_run(web, approved, finance1, finance3):
    world, run, adjustment = approved
    before = _snapshot(run)
    posts = [
        ("settlements:run-calculate", {}, finance1),
        ("settlements:run-submit", {}, finance1),
        ("settlements:run-approve", {"comment": "again"}, finance3),
        ("settlements:run-reject", {"reason": "too late"}, finance3),
        (
            "settlements:adjustment-create",
            {"partner": world.sub.pk, "amount": "99.00", "reason": "late"},
            finance1,
        ),
    ]
    for name, data, user in posts:
        response = web(user).post(reverse(name, args=[run.pk]), data, follow=True)
        assert response.status_code in (200, 400, 409), name
        assert _snapshot(run) == before, name
    delete = reverse("settlements:adjustment-delete", args=[run.pk, adjustment.pk])
    web(finance1).post(delete, follow=True)
    assert Adjustment.objects.filter(pk=adjustment.pk).exists()
    assert _snapshot(run) == before
    # and the page offers none of those actions
    html = web(finance1).get(run.get_absolute_url()).content.decode()
    for name in ("settlements:run-calculate", "settlements:run-submit"):
        assert reverse(name, args=[run.pk]) not in html
    assert reverse("settlements:adjustment-create", args=[run.pk]) not in html
