from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import factory

from settlements.models import (
    AgreementTier,
    FxRate,
    RevenueShareAgreement,
    Transaction,
    TransactionSource,
)
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory, PartnerFactory

HK = ZoneInfo("Asia/Hong_Kong")


class TransactionSourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TransactionSource
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"gateway{n}")
    name = factory.LazyAttribute(lambda s: s.code.title())
    webhook_secret = "whsec_test_0123456789abcdef"


class TransactionFactory(factory.django.DjangoModelFactory):
    """A settled payment; pass ``kind`` and a negative ``amount`` for refunds."""

    class Meta:
        model = Transaction

    source = factory.SubFactory(TransactionSourceFactory, code="gateway")
    external_id = factory.Sequence(lambda n: f"tx_{n:08d}")
    merchant = factory.SubFactory(MerchantFactory)
    kind = Transaction.Kind.PAYMENT
    status = Transaction.Status.SETTLED
    amount = Decimal("100.00")
    fee = Decimal("2.50")
    cost = Decimal("1.00")
    currency = "HKD"
    payment_method = "card_domestic"
    occurred_at = factory.LazyFunction(lambda: datetime(2026, 10, 15, 12, 0, tzinfo=HK))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # The ledger keeps no history: like the ingestion service, a stored
        # row is proven by an audit entry, so that the records check holds.
        from core import trail

        obj = super()._create(model_class, *args, **kwargs)
        trail.append_many(
            [
                trail.rows_entry(
                    objs=[obj],
                    model=model_class,
                    label=f"1 transaction from {obj.source.code}",
                    actor=None,
                    reason="test factory",
                    merchant_id=obj.merchant_id,
                )
            ]
        )
        return obj


class FxRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FxRate

    rate_on = date(2026, 10, 15)
    base = "USD"
    quote = "HKD"
    rate = Decimal("7.8")


class AgreementFactory(factory.django.DjangoModelFactory):
    """An agreement with one flat tier (``rate_bps``); add tiers with AgreementTierFactory."""

    class Meta:
        model = RevenueShareAgreement
        skip_postgeneration_save = True

    partner = factory.SubFactory(PartnerFactory)
    basis = RevenueShareAgreement.Basis.FEE
    tier_mode = RevenueShareAgreement.TierMode.WHOLE
    currency = "HKD"
    valid_from = date(2026, 1, 1)
    created_by = factory.SubFactory(UserFactory, roles=["finance"])

    @factory.post_generation
    def rate_bps(self, create, extracted, **kwargs):
        if create and extracted is not None:
            AgreementTier.objects.create(
                agreement=self, from_volume=Decimal("0"), rate_bps=Decimal(extracted)
            )


class AgreementTierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgreementTier

    agreement = factory.SubFactory(AgreementFactory)
    from_volume = Decimal("0")
    rate_bps = Decimal("1000")


class TransactionItemFactory(factory.DictFactory):
    """One valid item for ``ingestion.transactions_ingest``; pass ``merchant=<id>``."""

    external_id = factory.Sequence(lambda n: f"gw_{n:08d}")
    kind = "payment"
    amount = "100.00"
    fee = "2.50"
    cost = "1.20"
    currency = "HKD"
    payment_method = "card_domestic"
    occurred_at = factory.LazyFunction(lambda: datetime.now(HK).isoformat(timespec="seconds"))
