"""The admin is a door too: it shows settlement records and changes none of them."""

import pytest
from django.urls import reverse

from settlements.models import SettlementRun, StatementLine
from settlements.services import runs
from tests.factories.core import UserFactory
from tests.settlements.runs_setup import OCT_END, OCT_START, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved_run(finance1, finance2, django_capture_on_commit_callbacks):
    build_world(actor=finance1)
    run = runs.settlement_run_create(
        actor=finance1, period_start=OCT_START, period_end=OCT_END, currency="HKD"
    )
    with django_capture_on_commit_callbacks(execute=True):
        runs.settlement_run_calculate(actor=finance1, run=run)
    runs.settlement_run_submit(actor=finance1, run=run)
    runs.settlement_run_approve(actor=finance2, run=run)
    run.refresh_from_db()
    return run


def test_even_a_superuser_cannot_change_or_delete_an_approved_run_in_the_admin(web, approved_run):
    # given
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = web(root)
    change = reverse("admin:settlements_settlementrun_change", args=[approved_run.pk])
    # when
    page = client.get(change)
    posted = client.post(change, {"status": "draft", "total_payable": "1"})
    deleted = client.post(
        reverse("admin:settlements_settlementrun_delete", args=[approved_run.pk]), {"post": "yes"}
    )
    line = StatementLine.objects.filter(statement__run=approved_run).first()
    line_change = client.post(
        reverse("admin:settlements_statementline_change", args=[line.pk]), {"share": "999"}
    )
    # then
    assert page.status_code == 200  # readable
    assert posted.status_code == 403
    assert deleted.status_code == 403
    assert line_change.status_code == 403
    approved_run.refresh_from_db()
    assert approved_run.status == SettlementRun.Status.APPROVED
    assert StatementLine.objects.get(pk=line.pk).share == line.share


def test_the_admin_lists_transactions_through_the_selectors(web, admin1, approved_run):
    admin1.is_superuser = False
    admin1.save()
    response = web(admin1).get(reverse("admin:settlements_transaction_changelist"))
    assert response.status_code == 200
    assert "tx_" in response.content.decode()
    assert reverse("admin:settlements_transaction_add") not in response.content.decode()
