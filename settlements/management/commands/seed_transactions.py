"""Demo ledger: a gateway source and ~90 days of transactions for the active merchants.

Does nothing when the ledger already holds transactions. Everything goes
through ``ingestion.transactions_ingest`` as the system user, as a gateway's
batches would. Run after seed_demo (and the onboarding seeds that activate
merchants).
"""

import random
import secrets
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.utils import timezone

from core import audit, money
from core.services import system_user
from merchants.models import Merchant, PaymentMethod
from settlements.models import Transaction, TransactionSource
from settlements.services import ingestion

DAYS = 90
PER_DAY = 45  # about 4,000 transactions over the period
CURRENCIES = [("HKD", 80), ("USD", 12), ("SGD", 8)]
METHODS = [
    (PaymentMethod.CARD_DOMESTIC.value, 30),
    (PaymentMethod.CARD_INTERNATIONAL.value, 15),
    (PaymentMethod.ALIPAY.value, 15),
    (PaymentMethod.WECHAT_PAY.value, 12),
    (PaymentMethod.FPS.value, 12),
    (PaymentMethod.OCTOPUS.value, 12),
    (PaymentMethod.BANK_TRANSFER.value, 4),
]
CARD_COUNTRIES = ["HK", "HK", "HK", "CN", "SG", "US", "GB", "JP", "TW", "AU"]
# Typical ticket per currency, in major units.
TICKETS = {"HKD": (40, 4000), "USD": (5, 600), "SGD": (8, 800)}
CHARGEBACK_FEE = {"HKD": Decimal("150"), "USD": Decimal("20"), "SGD": Decimal("25")}


def _pick(rnd: random.Random, table: list) -> str:
    return rnd.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _share(rnd: random.Random, amount: Decimal, low: int, high: int, currency: str) -> Decimal:
    """A random share of ``amount`` between ``low`` and ``high`` basis points."""
    return money.quantize(abs(amount) * Decimal(rnd.randint(low, high)) / 10000, currency)


class Command(BaseCommand):
    help = "Add a demo gateway source and ~90 days of transactions (only to an empty ledger)."

    def handle(self, *args, **options) -> None:
        if Transaction.objects.exists():
            self.stdout.write("The ledger already has transactions; nothing added.")
            return
        merchants = list(
            Merchant.objects.filter(status=Merchant.Status.ACTIVE).values_list("pk", flat=True)
        )
        if not merchants:
            self.stdout.write("No active merchants yet; run seed_demo first.")
            return
        system = system_user()
        with audit.acting_as(system, origin="command seed_transactions", reason="demo data"):
            source, secret = self._source()
            items = self._items(merchants, random.Random(2026))
            created = 0
            for start in range(0, len(items), ingestion.MAX_ITEMS):
                report = ingestion.transactions_ingest(
                    actor=system, source=source, items=items[start : start + ingestion.MAX_ITEMS]
                )
                if report.errors:
                    raise RuntimeError(f"Demo transactions refused: {report.errors[:3]}")
                created += report.created
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ledger: {created} transactions for {len(merchants)} active merchants "
                f"from source {source.code!r}."
            )
        )
        if secret:
            self.stdout.write(f"Webhook secret of {source.code!r} (shown once, keep it): {secret}")

    def _source(self) -> tuple[TransactionSource, str]:
        source = TransactionSource.objects.filter(code="demo-gateway").first()
        if source is not None:
            return source, ""
        secret = f"whsec_{secrets.token_urlsafe(32)}"
        source = TransactionSource(code="demo-gateway", name="Demo Gateway", webhook_secret=secret)
        source.save()
        return source, secret

    def _items(self, merchants: list[int], rnd: random.Random) -> list[dict]:
        # Busier merchants get more of the volume, as in any book.
        weights = [rnd.paretovariate(1.5) for _ in merchants]
        now = timezone.localtime()
        first_day = now.date() - timedelta(days=DAYS)
        items: list[dict] = []
        payments: list[dict] = []
        for offset in range(DAYS + 1):
            day = first_day + timedelta(days=offset)
            for _ in range(rnd.randint(PER_DAY // 2, PER_DAY * 3 // 2)):
                moment = timezone.make_aware(
                    datetime.combine(day, time.min) + timedelta(seconds=rnd.randint(0, 86_399))
                )
                if moment > now:
                    continue
                payment = self._payment(rnd, rnd.choices(merchants, weights)[0], moment)
                items.append(payment)
                payments.append(payment)
                follow_up = rnd.random()
                if follow_up < 0.04:
                    items.extend(self._refund(rnd, payment, now))
                elif follow_up < 0.047:
                    items.extend(self._chargeback(rnd, payment, now))
        return items

    def _payment(self, rnd: random.Random, merchant: int, moment: datetime) -> dict:
        currency = _pick(rnd, CURRENCIES)
        low, high = TICKETS[currency]
        amount = money.quantize(Decimal(rnd.randint(low * 100, high * 100)) / 100, currency)
        method = _pick(rnd, METHODS)
        item = {
            "external_id": f"demo_pay_{secrets.token_hex(8)}",
            "merchant": merchant,
            "kind": "payment",
            "amount": str(amount),
            "fee": str(_share(rnd, amount, 200, 300, currency)),
            "cost": str(_share(rnd, amount, 100, 150, currency)),
            "currency": currency,
            "payment_method": method,
            "customer_ref": f"cus_{rnd.randint(1, 2500):05d}",
            "occurred_at": moment.isoformat(),
        }
        if method.startswith("card"):
            item["card_country"] = (
                "HK" if method.endswith("domestic") else rnd.choice(CARD_COUNTRIES)
            )
            item["card_fingerprint"] = secrets.token_hex(16)
        if rnd.random() < 0.6:
            item["payer_email"] = f"payer{rnd.randint(1, 5000)}@example.com"
        return item

    def _later(self, rnd: random.Random, item: dict, now: datetime, days: int) -> str | None:
        moment = datetime.fromisoformat(item["occurred_at"]) + timedelta(
            days=rnd.randint(1, days), seconds=rnd.randint(0, 86_399)
        )
        return moment.isoformat() if moment <= now else None

    def _follow_up(self, payment: dict, kind: str, amount: Decimal, moment: str) -> dict:
        keep = ("merchant", "currency", "payment_method", "customer_ref", "card_country",
                "card_fingerprint", "payer_email")  # fmt: skip
        return {
            **{key: payment[key] for key in keep if key in payment},
            "external_id": f"demo_{kind}_{secrets.token_hex(8)}",
            "kind": kind,
            "amount": str(amount),
            "occurred_at": moment,
        }

    def _refund(self, rnd: random.Random, payment: dict, now: datetime) -> list[dict]:
        moment = self._later(rnd, payment, now, 20)
        if moment is None:
            return []
        paid = Decimal(payment["amount"])
        # Whole refunds mostly, sometimes part of the payment.
        part = paid if rnd.random() < 0.7 else money.quantize(paid / 2, payment["currency"])
        return [self._follow_up(payment, "refund", -part, moment)]

    def _chargeback(self, rnd: random.Random, payment: dict, now: datetime) -> list[dict]:
        moment = self._later(rnd, payment, now, 45)
        if moment is None:
            return []
        paid = Decimal(payment["amount"])
        chargeback = self._follow_up(payment, "chargeback", -paid, moment)
        chargeback["fee"] = str(CHARGEBACK_FEE[payment["currency"]])
        found = [chargeback]
        if rnd.random() < 0.3:  # the merchant won the dispute
            reversed_at = self._later(rnd, chargeback, now, 30)
            if reversed_at is not None:
                found.append(self._follow_up(payment, "chargeback_reversal", paid, reversed_at))
        return found
