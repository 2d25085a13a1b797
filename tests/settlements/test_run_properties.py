"""The whole run, from ledger rows to statements, conserves every minor unit.

Hypothesis drives the database here through ``hypothesis.extra.django.TestCase``
(one transaction per example), with payments, refunds and chargebacks in a
currency with 0, 2 or 3 minor digits and a three-level partner tree.
"""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from core import money
from settlements.models import MerchantBasis, SettlementRun, StatementLine
from settlements.services import agreements, runs
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory, PartnerFactory
from tests.factories.settlements import TransactionFactory

HK = ZoneInfo("Asia/Hong_Kong")
KINDS = [("payment", 1), ("refund", -1), ("chargeback", -1), ("chargeback_reversal", 1)]


def minor_amounts(currency: str):
    places = money.minor_units(currency)
    return st.integers(0, 5_000_000).map(lambda n: Decimal(n).scaleb(-places))


@st.composite
def ledgers(draw):
    currency = draw(st.sampled_from(["JPY", "HKD", "KWD"]))
    rows = []
    for _ in range(draw(st.integers(1, 25))):
        kind, sign = draw(st.sampled_from(KINDS))
        amount = draw(minor_amounts(currency))
        fee = draw(minor_amounts(currency)) / 50
        rows.append(
            {
                "merchant": draw(st.integers(0, 3)),
                "kind": kind,
                "amount": sign * amount,
                "fee": money.quantize(sign * fee, currency),
                "cost": money.quantize(sign * fee / 3, currency),
            }
        )
    return {
        "currency": currency,
        "basis": draw(st.sampled_from(["fee", "net", "volume"])),
        "rates": draw(st.lists(st.integers(0, 6000), min_size=3, max_size=3)),
        "mode": draw(st.sampled_from(["whole", "graduated"])),
        "rounding": draw(st.sampled_from(["ROUND_HALF_UP", "ROUND_HALF_EVEN", "ROUND_DOWN"])),
        "rows": rows,
    }


class RunConservationTest(TestCase):
    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(ledgers())
    def test_statements_and_retained_add_up_to_the_basis(self, ledger):
        from django.contrib.auth.models import Group

        from tests.conftest import restore_roles

        if not Group.objects.filter(name="finance", permissions__isnull=False).exists():
            restore_roles()
        finance = UserFactory(username="prop-finance", roles=["finance"])
        currency = ledger["currency"]
        top = PartnerFactory()
        mid = PartnerFactory(parent=top)
        low = PartnerFactory(parent=mid)
        for n, partner in enumerate([low, mid, top]):
            agreements.agreement_create(
                actor=finance,
                partner=partner,
                basis=ledger["basis"],
                tier_mode=ledger["mode"],
                rounding=ledger["rounding"],
                currency=currency,
                valid_from=date(2026, 1, 1),
                tiers=[
                    {"from_volume": "0", "rate_bps": ledger["rates"][n]},
                    {"from_volume": "1000", "rate_bps": ledger["rates"][n] + 500},
                ],
            )
        merchants = [MerchantFactory(partner=p) for p in (low, low, mid, top)]
        at = datetime(2026, 10, 10, 9, 0, tzinfo=HK)
        for row in ledger["rows"]:
            TransactionFactory(
                merchant=merchants[row["merchant"]], kind=row["kind"], amount=row["amount"],
                fee=row["fee"], cost=row["cost"], currency=currency, occurred_at=at,
            )  # fmt: skip
        run = runs.settlement_run_create(
            actor=finance,
            period_start=date(2026, 10, 1),
            period_end=date(2026, 10, 31),
            currency=currency,
        )
        # Eager Celery: the calculation runs once the request's transaction commits;
        # here the service is called directly to stay inside the example's transaction.
        SettlementRun.objects.filter(pk=run.pk).update(status=SettlementRun.Status.CALCULATING)
        run = runs.settlement_run_compute(run_id=run.pk, actor=finance)

        assert run.status == SettlementRun.Status.CALCULATED, run.calculation_error
        bases = MerchantBasis.objects.filter(run=run)
        for row in bases:
            assert row.shares + row.retained == row.basis
            assert row.basis == money.quantize(row.basis, currency)
        # Summed in Python: SQLite's SUM is floating point.
        basis_total = sum(bases.values_list("basis", flat=True), Decimal(0))
        shares_total = sum(bases.values_list("shares", flat=True), Decimal(0))
        line_total = sum(
            StatementLine.objects.filter(statement__run=run).values_list("share", flat=True),
            Decimal(0),
        )
        statement_total = sum(run.statements.values_list("lines_total", flat=True), Decimal(0))
        assert run.total_basis == basis_total
        assert run.total_share == shares_total == line_total == statement_total
        assert run.total_share + run.platform_retained == run.total_basis
