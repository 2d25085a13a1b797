"""Demo settlement data: agreements, payout accounts, FX rates; once, with its actor."""

import io

import pytest
from django.core.management import call_command

from core.models import User
from merchants.models import BankAccount
from settlements.models import FxRate, RevenueShareAgreement

pytestmark = pytest.mark.django_db


def test_seed_settlements_adds_agreements_accounts_and_rates_once():
    call_command("seed_demo", merchants=4, stdout=io.StringIO())
    assert User.objects.filter(username="finance3", groups__name="finance").exists()
    call_command("seed_settlements", stdout=io.StringIO())
    agreements = RevenueShareAgreement.objects.count()
    rates = FxRate.objects.count()
    assert agreements == 6
    assert rates > 300
    assert BankAccount.objects.filter(partner__isnull=False, currency="HKD").count() == 6
    row = RevenueShareAgreement.history.first()
    assert row.history_user.username == "finance1"
    assert row.history_origin == "command seed_settlements"
    # a second run adds nothing
    call_command("seed_settlements", stdout=io.StringIO())
    assert RevenueShareAgreement.objects.count() == agreements
    assert FxRate.objects.count() == rates
