import re
import uuid
from decimal import Decimal
from pathlib import Path

import iso18245
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from core.audit import HistoricalRecords
from core.crypto import EncryptedTextField
from core.models import Team, TimeStampedModel
from core.money import AmountField, CurrencyField, validate_currency

# Four ASCII digits: \d would take "٤٧٢٢" too.
MCC_FORMAT = r"^[0-9]{4}\Z"


def validate_mcc(value: str) -> None:
    """A merchant category code from the ISO 18245 list.

    Only four ASCII digits are looked up: the format's own validator names
    anything else ("abcd" made the list's lookup raise a plain ValueError).
    """
    if not isinstance(value, str) or not re.match(MCC_FORMAT, value):
        return
    try:
        iso18245.get_mcc(value)
    except (iso18245.MCCNotFound, iso18245.InvalidMCC, ValueError):
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
        validators=[RegexValidator(MCC_FORMAT, _("Enter the 4-digit MCC.")), validate_mcc],
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
        permissions = [
            ("assign_merchant", "Can assign merchants to owners and teams"),
            ("suspend_merchant", "Can suspend, reinstate and offboard live merchants"),
            ("set_risk_merchant", "Can set a merchant's risk level"),
        ]
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

    @property
    def audit_merchant_id(self) -> int | None:
        """The audit trail files a merchant's own changes under itself."""
        return self.pk

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


def _merchant_or_partner(prefix: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=(
            models.Q(merchant__isnull=False, partner__isnull=True)
            | models.Q(merchant__isnull=True, partner__isnull=False)
        ),
        name=f"{prefix}_belongs_to_merchant_or_partner",
        violation_error_message=_("Belongs to exactly one merchant or one partner."),
    )


class Contact(TimeStampedModel):
    """A person at a merchant or partner."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, null=True, blank=True, related_name="contacts"
    )
    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, null=True, blank=True, related_name="contacts"
    )
    name = models.CharField(_("name"), max_length=200)
    title = models.CharField(_("job title"), max_length=100, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    is_primary = models.BooleanField(_("primary contact"), default=False)
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        ordering = ["-is_primary", "name", "pk"]
        constraints = [_merchant_or_partner("contact")]

    def __str__(self) -> str:
        return self.name


class BeneficialOwner(TimeStampedModel):
    """An ultimate beneficial owner (UBO). The ID number is encrypted at rest."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="owners")
    full_name = models.CharField(_("full name"), max_length=200)
    nationality = CountryField(_("nationality"))
    date_of_birth = models.DateField(_("date of birth"), null=True, blank=True)
    ownership_percent = models.DecimalField(
        _("ownership %"),
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("100"))],
    )
    id_number = EncryptedTextField(_("ID / passport number"))
    id_number_last4 = models.CharField(max_length=4, editable=False)
    is_pep = models.BooleanField(_("politically exposed person"), default=False)

    class Meta:
        ordering = ["-ownership_percent", "full_name", "pk"]
        permissions = [("reveal_beneficialowner", "Can reveal owners' ID numbers")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ownership_percent__gt=0, ownership_percent__lte=100),
                name="owner_percent_in_range",
            )
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def id_number_masked(self) -> str:
        return mask(self.id_number_last4)


class BankAccount(TimeStampedModel):
    """A settlement (merchant) or payout (partner) account; the number is encrypted."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, null=True, blank=True, related_name="bank_accounts"
    )
    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, null=True, blank=True, related_name="bank_accounts"
    )
    account_holder = models.CharField(_("account holder"), max_length=200)
    bank_name = models.CharField(_("bank name"), max_length=200)
    swift_code = models.CharField(_("SWIFT/BIC"), max_length=11, blank=True)
    country = CountryField(_("bank country"))
    currency = CurrencyField(_("currency"), validators=[validate_currency])
    account_number = EncryptedTextField(_("account number or IBAN"))
    account_number_last4 = models.CharField(max_length=4, editable=False)
    # HMAC of the normalised number: finds the same account on two merchants.
    account_hash = models.CharField(max_length=64, editable=False, db_index=True)
    is_primary = models.BooleanField(_("primary"), default=True)

    class Meta:
        ordering = ["-is_primary", "bank_name", "pk"]
        permissions = [("reveal_bankaccount", "Can reveal bank account numbers")]
        constraints = [_merchant_or_partner("bankaccount")]

    def __str__(self) -> str:
        return f"{self.bank_name} {self.account_number_masked}"

    @property
    def account_number_masked(self) -> str:
        return mask(self.account_number_last4)


def mask(last4: str) -> str:
    return f"•••• {last4}" if last4 else ""


def document_upload_to(instance: "Document", filename: str) -> str:
    # The stored name carries no user input but the extension.
    suffix = Path(filename).suffix.lower()[:10]
    return f"documents/{instance.merchant_id}/{uuid.uuid4().hex}{suffix}"


class Document(TimeStampedModel):
    """One version of a merchant document. A re-upload adds the next version."""

    class Type(models.TextChoices):
        BUSINESS_REGISTRATION = "business_registration", _("Business registration certificate")
        CERTIFICATE_OF_INCORPORATION = (
            "certificate_of_incorporation",
            _("Certificate of incorporation"),
        )
        ARTICLES = "articles", _("Articles of association")
        OWNER_ID = "owner_id", _("Owner ID / passport")
        PROOF_OF_ADDRESS = "proof_of_address", _("Proof of address")
        BANK_STATEMENT = "bank_statement", _("Bank statement")
        PROCESSING_HISTORY = "processing_history", _("Processing statements")
        CONTRACT = "contract", _("Signed contract")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending review")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="documents")
    doc_type = models.CharField(_("type"), max_length=40, choices=Type)
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    is_current = models.BooleanField(default=True, editable=False)
    file = models.FileField(_("file"), upload_to=document_upload_to, max_length=300)
    original_name = models.CharField(_("file name"), max_length=255, editable=False)
    content_type = models.CharField(max_length=100, editable=False)
    size = models.PositiveBigIntegerField(editable=False)
    sha256 = models.CharField(_("SHA-256"), max_length=64, editable=False, db_index=True)
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.PENDING)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    rejection_reason = models.CharField(_("rejection reason"), max_length=500, blank=True)
    expires_on = models.DateField(_("expires on"), null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("uploaded by"),
    )

    class Meta:
        ordering = ["doc_type", "-version", "pk"]
        permissions = [("review_document", "Can accept or reject documents")]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "doc_type", "version"], name="document_unique_version"
            ),
            models.UniqueConstraint(
                fields=["merchant", "doc_type"],
                condition=models.Q(is_current=True),
                name="document_one_current_per_type",
            ),
        ]
        indexes = [models.Index(fields=["is_current", "expires_on"], name="document_expiry")]

    def __str__(self) -> str:
        return f"{self.get_doc_type_display()} v{self.version}"


class Activity(TimeStampedModel):
    """Something done with or for a merchant: a call, a meeting, a task…"""

    class Kind(models.TextChoices):
        CALL = "call", _("Call")
        EMAIL = "email", _("E-mail")
        MEETING = "meeting", _("Meeting")
        CHAT = "chat", _("Chat")
        SMS = "sms", _("SMS")
        NOTE = "note", _("Note")
        TASK = "task", _("Task")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="activities")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("details"), blank=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)
    due_on = models.DateField(_("due on"), null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_activities",
        verbose_name=_("assignee"),
    )
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        verbose_name_plural = _("activities")
        indexes = [
            models.Index(fields=["merchant", "-occurred_at"], name="activity_timeline"),
            models.Index(fields=["assignee", "done_at", "due_on"], name="activity_open_tasks"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="task")
                | models.Q(due_on__isnull=True, assignee__isnull=True, done_at__isnull=True),
                name="activity_task_fields_only_on_tasks",
            ),
        ]

    def __str__(self) -> str:
        return self.subject

    @property
    def is_task(self) -> bool:
        return self.kind == self.Kind.TASK

    def is_overdue(self, today=None) -> bool:
        today = today or timezone.localdate()
        return (
            self.is_task
            and self.done_at is None
            and self.due_on is not None
            and self.due_on < today
        )


class PaymentMethod(models.TextChoices):
    CARD_DOMESTIC = "card_domestic", _("Card (domestic)")
    CARD_INTERNATIONAL = "card_international", _("Card (international)")
    ALIPAY = "alipay", _("Alipay")
    WECHAT_PAY = "wechat_pay", _("WeChat Pay")
    FPS = "fps", _("FPS")
    OCTOPUS = "octopus", _("Octopus")
    BANK_TRANSFER = "bank_transfer", _("Bank transfer")


class PricingPlan(TimeStampedModel):
    """Merchant pricing; exactly one plan is active at a time."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="pricing_plans")
    name = models.CharField(_("name"), max_length=100)
    currency = CurrencyField(_("fee currency"), validators=[validate_currency])
    is_active = models.BooleanField(_("active"), default=False)
    effective_from = models.DateField(_("effective from"), default=timezone.localdate)

    class Meta:
        ordering = ["-is_active", "-effective_from", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant"],
                condition=models.Q(is_active=True),
                name="pricing_one_active_plan",
                violation_error_message=_("A merchant has one active pricing plan."),
            )
        ]

    def __str__(self) -> str:
        return self.name


class PricingRate(TimeStampedModel):
    plan = models.ForeignKey(PricingPlan, on_delete=models.CASCADE, related_name="rates")
    method = models.CharField(_("payment method"), max_length=30, choices=PaymentMethod)
    percent = models.DecimalField(
        _("rate %"),
        max_digits=7,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    fixed_fee = AmountField(
        _("fixed fee"), default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )

    class Meta:
        ordering = ["plan", "method", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "method"], name="pricing_rate_unique_method"),
            models.CheckConstraint(
                condition=models.Q(percent__gte=0, percent__lte=100, fixed_fee__gte=0),
                name="pricing_rate_in_range",
            ),
        ]

    @property
    def audit_merchant_id(self) -> int | None:
        return self.plan.merchant_id

    def __str__(self) -> str:
        return f"{self.get_method_display()}: {self.percent}% + {self.fixed_fee}"


class Contract(TimeStampedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SENT = "sent", _("Sent for signature")
        SIGNED = "signed", _("Signed")
        TERMINATED = "terminated", _("Terminated")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="contracts")
    version = models.PositiveIntegerField(_("version"), editable=False)
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.DRAFT)
    signed_on = models.DateField(_("signed on"), null=True, blank=True)
    signed_by = models.CharField(_("signed by (merchant)"), max_length=200, blank=True)

    class Meta:
        ordering = ["-version", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "version"], name="contract_unique_version"),
            models.CheckConstraint(
                condition=models.Q(ends_on__isnull=True)
                | models.Q(ends_on__gte=models.F("starts_on")),
                name="contract_ends_after_start",
                violation_error_message=_("A contract cannot end before it starts."),
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.version} ({self.get_status_display()})"
