from decimal import Decimal

import factory

from merchants import services
from merchants.models import Merchant, Partner
from tests.factories.core import UserFactory


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner

    name = factory.Sequence(lambda n: f"Partner {n}")


class MerchantFactory(factory.Factory):
    """Creates through ``services.merchant_create`` so grants are made as in the app."""

    class Meta:
        model = Merchant

    legal_name = factory.Sequence(lambda n: f"Merchant {n} Limited")
    trading_name = factory.Sequence(lambda n: f"Merchant {n}")
    registration_number = factory.Sequence(lambda n: f"{10000000 + n}")
    country = "HK"
    business_type = Merchant.BusinessType.PRIVATE_COMPANY
    mcc = "5812"
    expected_monthly_volume = Decimal("250000.00")
    volume_currency = "HKD"
    owner = factory.SubFactory(UserFactory, roles=["sales"])

    @classmethod
    def _create(cls, model_class, *args, actor=None, **kwargs):
        # A risk level is risk's to set, after creation, as in the app.
        risk_level = kwargs.pop("risk_level", None)
        merchant = services.merchant_create(actor=actor or kwargs["owner"], **kwargs)
        if risk_level and risk_level != merchant.risk_level:
            rater = UserFactory(roles=["risk"])
            merchant = services.merchant_set_risk_level(
                merchant=merchant, actor=rater, risk_level=risk_level, reason="test factory"
            )
        return merchant
