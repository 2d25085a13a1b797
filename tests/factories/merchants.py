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
        return services.merchant_create(actor=actor or kwargs["owner"], **kwargs)
