"""A small hand-checkable world for run tests.

Partners: Master (M) above Sub (S). Merchant m1 is referred by S, m2 by M.
October 2026, HKD run, fee basis:
- m1: payment 60,000.00 HKD (fee 1,200.00, cost 500.00), refund -5,000.00 (fee -100.00)
- m2: payment 10,000.00 USD (fee 250.00, cost 100.00) on 15 Oct at 7.8 HKD per USD
Volumes: S 55,000; M 55,000 + 78,000 = 133,000.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from merchants.models import Merchant, Partner
from settlements.models import RevenueShareAgreement
from settlements.services import agreements
from tests.factories.merchants import MerchantFactory, PartnerFactory
from tests.factories.settlements import FxRateFactory, TransactionFactory

HK = ZoneInfo("Asia/Hong_Kong")
OCT_START, OCT_END = date(2026, 10, 1), date(2026, 10, 31)


@dataclass
class World:
    master: Partner
    sub: Partner
    m1: Merchant
    m2: Merchant


def build_world(*, actor, master_mode: str = "whole", basis: str = "fee") -> World:
    master = PartnerFactory(name="Master Agent")
    sub = PartnerFactory(name="Sub Agent", parent=master)
    m1 = _merchant(sub)
    m2 = _merchant(master)
    agreements.agreement_create(
        actor=actor,
        partner=master,
        basis=basis,
        tier_mode=master_mode,
        currency="HKD",
        valid_from=date(2026, 1, 1),
        tiers=[
            {"from_volume": "0", "rate_bps": "3000"},
            {"from_volume": "100000", "rate_bps": "4000"},
        ],
    )
    agreements.agreement_create(
        actor=actor,
        partner=sub,
        basis=basis,
        tier_mode=RevenueShareAgreement.TierMode.WHOLE,
        currency="HKD",
        valid_from=date(2026, 1, 1),
        tiers=[{"from_volume": "0", "rate_bps": "2000"}],
    )
    at = datetime(2026, 10, 15, 12, 0, tzinfo=HK)
    TransactionFactory(
        merchant=m1, amount=Decimal("60000.00"), fee=Decimal("1200.00"), cost=Decimal("500.00"),
        occurred_at=at,
    )  # fmt: skip
    TransactionFactory(
        merchant=m1, kind="refund", amount=Decimal("-5000.00"), fee=Decimal("-100.00"),
        cost=Decimal("0"), occurred_at=at,
    )  # fmt: skip
    TransactionFactory(
        merchant=m2, amount=Decimal("10000.00"), fee=Decimal("250.00"), cost=Decimal("100.00"),
        currency="USD", occurred_at=at,
    )  # fmt: skip
    FxRateFactory(rate_on=date(2026, 10, 15), base="USD", quote="HKD", rate=Decimal("7.8"))
    # Outside the period, failed, or for a merchant without a partner: never counted.
    TransactionFactory(merchant=m1, occurred_at=datetime(2026, 11, 1, 0, 0, tzinfo=HK))
    TransactionFactory(merchant=m1, status="failed", occurred_at=at)
    TransactionFactory(merchant=_merchant(None), occurred_at=at)
    return World(master=master, sub=sub, m1=m1, m2=m2)


def _merchant(partner):
    return MerchantFactory(partner=partner)
