"""Demo settlement set-up: revenue-share agreements for the demo partner tree,
HKD payout accounts for the partners, and daily FX rates into HKD.

Safe to run again: agreements and accounts are added once, rates only for the
days that have none. Run after seed_demo.
"""

from datetime import date, timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from core import audit
from core.models import User
from merchants import services as merchant_services
from merchants.models import BankAccount, Partner
from settlements.models import FxRate, RevenueShareAgreement
from settlements.services import agreements, fx

# Partner name → (tier mode, [(from monthly volume, bps)], minimum payout)
AGREEMENTS = {
    "Pearl River Payments": ("graduated", [(0, 3500), (500_000, 4000), (2_000_000, 4500)], 500),
    "Kowloon Merchant Services": ("whole", [(0, 2500), (300_000, 3000)], 200),
    "Harbour POS Agents": ("whole", [(0, 2000), (250_000, 2500)], 200),
    "Mong Kok Street Sales": ("whole", [(0, 1500), (100_000, 2000)], 100),
    "Lion City Resellers": ("whole", [(0, 3000), (400_000, 3500)], 300),
    "Straits Digital Agents": ("whole", [(0, 3200)], 100),
}
# Mid rates in HKD; each day moves a little so conversions are visible.
RATES = {"USD": Decimal("7.7850"), "SGD": Decimal("5.8200"), "CNY": Decimal("1.0800")}
DAYS = 150


class Command(BaseCommand):
    help = "Add demo revenue-share agreements, partner payout accounts and FX rates."

    def handle(self, *args, **options) -> None:
        finance = User.objects.filter(username="finance1").first()
        admin = User.objects.filter(username="admin1").first()
        if finance is None or admin is None:
            self.stdout.write("Run seed_demo first: finance1 and admin1 are needed.")
            return
        with audit.acting_as(finance, origin="command seed_settlements"), transaction.atomic():
            made = self._agreements(finance)
            accounts = self._accounts(admin)
            rates = self._rates(finance)
        self.stdout.write(
            f"Settlements demo: {made} agreement(s), {accounts} payout account(s), "
            f"{rates} FX rate(s) added."
        )

    def _agreements(self, actor: User) -> int:
        made = 0
        start = date(timezone.localdate().year - 1, 1, 1)
        for name, (mode, tiers, minimum) in AGREEMENTS.items():
            partner = Partner.objects.filter(name=name).first()
            if partner is None or RevenueShareAgreement.objects.filter(partner=partner).exists():
                continue
            agreements.agreement_create(
                actor=actor,
                partner=partner,
                basis=RevenueShareAgreement.Basis.FEE,
                tier_mode=mode,
                currency="HKD",
                valid_from=start,
                minimum_payout=Decimal(minimum),
                tiers=[{"from_volume": v, "rate_bps": r} for v, r in tiers],
                notes="Demo agreement",
            )
            made += 1
        return made

    def _accounts(self, actor: User) -> int:
        made = 0
        for n, partner in enumerate(Partner.objects.order_by("pk")):
            if BankAccount.objects.filter(partner=partner).exists():
                continue
            with audit.as_actor(actor):
                merchant_services.bank_account_create(
                    actor=actor,
                    partner=partner,
                    account_holder=partner.name,
                    bank_name="HSBC",
                    swift_code="HSBCHKHHHKH",
                    country="HK",
                    currency="HKD",
                    account_number=f"004{500 + n}{123456789 + n * 7919:09d}",
                )
            made += 1
        return made

    def _rates(self, actor: User) -> int:
        today = timezone.localdate()
        have = set(
            FxRate.objects.filter(
                quote="HKD", rate_on__gte=today - timedelta(days=DAYS)
            ).values_list("base", "rate_on")
        )
        made = 0
        for offset in range(DAYS):
            day = today - timedelta(days=offset)
            for n, (base, mid) in enumerate(RATES.items()):
                if (base, day) in have:
                    continue
                wobble = Decimal((offset * 7 + n * 3) % 11 - 5) / Decimal(2000)
                fx.fx_rate_set(
                    actor=actor, rate_on=day, base=base, quote="HKD", rate=mid * (1 + wobble)
                )
                made += 1
        return made
