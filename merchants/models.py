from decimal import Decimal

import iso18245
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from core.audit import HistoricalRecords
from core.models import Team, TimeStampedModel
from core.money import AmountField, CurrencyField, validate_currency


def validate_mcc(value: str) -> None:
    """A merchant category code from the ISO 18245 list."""
    try:
        iso18245.get_mcc(value)
    except (iso18245.MCCNotFound, iso18245.InvalidMCC):
        raise ValidationError(
            _("%(value)s is not a merchant category code in ISO 18245."), params={"value": value}
        ) from None


class Partner(TimeStampedModel):
    """An agent, ISO or reseller that refers merchants and earns revenue share."""

    class Kind(models.TextChoices):
        AGENT = "agent", _("Agent")
        ISO = "iso", _("ISO")
        RESELLER = "reseller", _("Reseller")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        TERMINATED = "terminated", _("Terminated")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind, default=Kind.AGENT)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent partner"),
    )
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.ACTIVE)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class Merchant(TimeStampedModel):
    class Status(models.TextChoices):
        LEAD = "lead", _("Lead")
        ONBOARDING = "onboarding", _("Onboarding")
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        OFFBOARDED = "offboarded", _("Offboarded")

    TRANSITIONS = {
        Status.LEAD: {Status.ONBOARDING, Status.OFFBOARDED},
        Status.ONBOARDING: {Status.LEAD, Status.ACTIVE, Status.OFFBOARDED},
        Status.ACTIVE: {Status.SUSPENDED, Status.OFFBOARDED},
        Status.SUSPENDED: {Status.ACTIVE, Status.OFFBOARDED},
        Status.OFFBOARDED: set(),
    }

    class RiskLevel(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")

    class BusinessType(models.TextChoices):
        SOLE_PROPRIETOR = "sole_proprietor", _("Sole proprietorship")
        PARTNERSHIP = "partnership", _("Partnership")
        PRIVATE_COMPANY = "private_company", _("Private limited company")
        PUBLIC_COMPANY = "public_company", _("Public company")
        NON_PROFIT = "non_profit", _("Non-profit / charity")
        GOVERNMENT = "government", _("Government body")

    legal_name = models.CharField(_("legal name"), max_length=200)
    trading_name = models.CharField(_("trading name"), max_length=200, blank=True)
    registration_number = models.CharField(
        _("registration number"),
        max_length=50,
        help_text=_("Company or business registration number in its country."),
    )
    country = CountryField(_("country"))
    business_type = models.CharField(_("business type"), max_length=30, choices=BusinessType)
    mcc = models.CharField(
        _("MCC"),
        max_length=4,
        validators=[RegexValidator(r"^\d{4}$", _("Enter the 4-digit MCC.")), validate_mcc],
        help_text=_("Merchant category code (ISO 18245)."),
    )
    website = models.URLField(_("website"), blank=True)
    expected_monthly_volume = AmountField(
        _("expected monthly volume"),
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    volume_currency = CurrencyField(
        _("volume currency"), default=settings.DEFAULT_CURRENCY, validators=[validate_currency]
    )
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.LEAD)
    risk_level = models.CharField(
        _("risk level"), max_length=10, choices=RiskLevel, default=RiskLevel.LOW
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="owned_merchants",
        verbose_name=_("owner"),
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merchants",
        verbose_name=_("team"),
    )
    partner = models.ForeignKey(
        Partner,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merchants",
        verbose_name=_("referring partner"),
    )
    mid = models.CharField(
        _("MID"),
        max_length=20,
        null=True,
        blank=True,
        unique=True,
        editable=False,
        help_text=_("Merchant id, issued when onboarding is approved."),
    )
    tags = models.JSONField(_("tags"), default=list, blank=True)

    class Meta:
        ordering = ["legal_name", "pk"]
        permissions = [("assign_merchant", "Can assign merchants to owners and teams")]
        constraints = [
            models.UniqueConstraint(
                fields=["country", "registration_number"],
                name="merchant_unique_registration_per_country",
                violation_error_message=_(
                    "A merchant with this registration number already exists in this country."
                ),
            ),
            models.CheckConstraint(
                condition=models.Q(expected_monthly_volume__gte=0),
                name="merchant_volume_not_negative",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "legal_name"], name="merchant_status_name"),
            models.Index(fields=["owner", "legal_name"], name="merchant_owner_name"),
            models.Index(fields=["risk_level"], name="merchant_risk"),
            models.Index(fields=["country"], name="merchant_country"),
            models.Index(fields=["registration_number"], name="merchant_regno"),
        ]

    def __str__(self) -> str:
        return self.trading_name or self.legal_name

    def get_absolute_url(self) -> str:
        return reverse("merchants:detail", args=[self.pk])

    def can_move_to(self, target: str) -> bool:
        return target == self.status or target in self.TRANSITIONS.get(self.status, set())


# guardian finds these through their reverse relation: it must not be hidden ("+").
class MerchantUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="user_object_permissions"
    )
    history = HistoricalRecords()

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False


class MerchantGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="group_object_permissions"
    )
    history = HistoricalRecords()

    class Meta(GroupObjectPermissionBase.Meta):
        abstract = False
