"""Settlements: the transaction ledger, revenue-share agreements, settlement runs,
their statements and exports, and reconciliation against gateway reports.

Amounts are ``Decimal`` beside an ISO 4217 currency (``core.money``). The ledger
is append-only: a correction is a new transaction, never an edit.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from core.crypto import EncryptedTextField
from core.models import TimeStampedModel
from core.money import AmountField, CurrencyField, validate_currency
from merchants.models import Merchant, Partner, PaymentMethod

# ---------------------------------------------------------------------------
# Ledger
# ---------------------------------------------------------------------------


class TransactionSource(TimeStampedModel):
    """A gateway or system that sends transactions; signs its webhooks with ``secret``."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    # HMAC key for PayCRM-Signature; encrypted at rest, never shown after creation.
    webhook_secret = EncryptedTextField(_("webhook secret"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code", "pk"]

    def __str__(self) -> str:
        return self.name or self.code


class Transaction(models.Model):
    """One payment event from a gateway. Append-only.

    No simple-history copy: a row is written once and never changed (a
    PostgreSQL trigger refuses UPDATE and DELETE), and the audit entry of its
    batch names it with a keyed digest over its content, which
    ``verify_audit_trail --records`` recomputes. A history table would only
    hold the same row twice.
    """

    class Kind(models.TextChoices):
        PAYMENT = "payment", _("Payment")
        REFUND = "refund", _("Refund")
        CHARGEBACK = "chargeback", _("Chargeback")
        CHARGEBACK_REVERSAL = "chargeback_reversal", _("Chargeback reversal")

    # Refunds and chargebacks take money back: their amounts are negative.
    NEGATIVE_KINDS = frozenset({Kind.REFUND, Kind.CHARGEBACK})

    class Status(models.TextChoices):
        SETTLED = "settled", _("Settled")
        PENDING = "pending", _("Pending")
        FAILED = "failed", _("Failed")

    # Only settled events count towards volume and revenue share.
    COUNTED_STATUSES = frozenset({Status.SETTLED})

    # No single-column indexes on these two: the unique (source, external_id)
    # and the (merchant, occurred_at) index lead with them, and every index
    # costs each of the million inserts a month. No database foreign keys
    # either: a key checks each inserted row on its own (two lookups per row,
    # about a fifth of an ingested row's database time); migration
    # settlements.0007 checks a whole INSERT's merchants and sources at once
    # and refuses deleting one the ledger names (PROTECT does so in Django).
    source = models.ForeignKey(
        TransactionSource,
        on_delete=models.PROTECT,
        related_name="transactions",
        db_index=False,
        db_constraint=False,
    )
    external_id = models.CharField(_("external id"), max_length=100)
    merchant = models.ForeignKey(
        Merchant,
        on_delete=models.PROTECT,
        related_name="transactions",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind)
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.SETTLED)
    amount = AmountField(_("amount"))
    fee = AmountField(_("fee"), default=Decimal("0"))
    cost = AmountField(_("cost"), default=Decimal("0"))
    currency = CurrencyField(_("currency"), validators=[validate_currency])
    payment_method = models.CharField(
        _("payment method"), max_length=20, choices=PaymentMethod, blank=True
    )
    card_country = CountryField(_("card/payer country"), blank=True)
    customer_ref = models.CharField(_("external customer id"), max_length=100, blank=True)
    payer_email = models.EmailField(_("payer e-mail"), blank=True)
    payer_phone = models.CharField(_("payer phone"), max_length=30, blank=True)
    card_fingerprint = models.CharField(_("card fingerprint"), max_length=64, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    # Unindexed: nothing lists the ledger by arrival, and each index costs
    # every insert.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                name="transaction_unique_external_id_per_source",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind__in=["refund", "chargeback"]) | models.Q(amount__lte=0),
                name="transaction_refund_chargeback_negative",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind__in=["payment", "chargeback_reversal"])
                | models.Q(amount__gte=0),
                name="transaction_payment_positive",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "occurred_at"], name="transaction_merchant_time"),
            models.Index(fields=["occurred_at"], name="transaction_time"),
            models.Index(fields=["kind", "occurred_at"], name="transaction_kind_time"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.external_id} {self.amount} {self.currency}"


class WebhookEvent(TimeStampedModel):
    """A gateway event received once: its id is never processed twice."""

    source = models.ForeignKey(
        TransactionSource, on_delete=models.PROTECT, related_name="webhook_events"
    )
    event_id = models.CharField(max_length=100)
    transaction = models.ForeignKey(
        Transaction, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "event_id"], name="webhook_event_unique_per_source"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.event_id}"


class FxRate(TimeStampedModel):
    """On ``rate_on``, one unit of ``base`` is worth ``rate`` units of ``quote``."""

    rate_on = models.DateField(_("date"))
    base = CurrencyField(_("from currency"), validators=[validate_currency])
    quote = CurrencyField(_("to currency"), validators=[validate_currency])
    rate = models.DecimalField(
        _("rate"),
        max_digits=24,
        decimal_places=10,
        validators=[MinValueValidator(Decimal("0.0000000001"))],
    )

    class Meta:
        ordering = ["-rate_on", "base", "quote", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["rate_on", "base", "quote"],
                name="fxrate_unique_per_day",
                violation_error_message=_("A rate for this pair and date already exists."),
            ),
            models.CheckConstraint(condition=models.Q(rate__gt=0), name="fxrate_positive"),
            models.CheckConstraint(
                condition=~models.Q(base=models.F("quote")), name="fxrate_distinct_currencies"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rate_on} 1 {self.base} = {self.rate} {self.quote}"


# ---------------------------------------------------------------------------
# Revenue-share agreements
# ---------------------------------------------------------------------------


class RevenueShareAgreement(TimeStampedModel):
    """What a partner earns on the merchants referred by it or below it.

    Rates are in basis points of the basis (1 bps = 0.01 %). Tiers are reached
    by the partner's processed volume in the period.
    """

    class Basis(models.TextChoices):
        FEE = "fee", _("Fees charged")
        NET = "net", _("Net revenue (fee - cost)")
        VOLUME = "volume", _("Processed volume")

    class TierMode(models.TextChoices):
        WHOLE = "whole", _("Whole volume at the tier reached")
        GRADUATED = "graduated", _("Graduated by bands")

    class Rounding(models.TextChoices):
        HALF_UP = ROUND_HALF_UP, _("Half up")
        HALF_EVEN = ROUND_HALF_EVEN, _("Half even (banker's)")
        DOWN = ROUND_DOWN, _("Down (truncate)")

    partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="agreements", verbose_name=_("partner")
    )
    basis = models.CharField(_("basis"), max_length=10, choices=Basis, default=Basis.FEE)
    tier_mode = models.CharField(
        _("tier mode"), max_length=10, choices=TierMode, default=TierMode.WHOLE
    )
    currency = CurrencyField(_("settlement currency"), validators=[validate_currency])
    valid_from = models.DateField(_("valid from"))
    valid_to = models.DateField(_("valid to"), null=True, blank=True)
    rounding = models.CharField(
        _("rounding"), max_length=20, choices=Rounding, default=Rounding.HALF_UP
    )
    minimum_payout = AmountField(
        _("minimum payout"),
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Totals below this carry forward to the next run."),
    )
    notes = models.TextField(_("notes"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["partner__name", "-valid_from", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_to__isnull=True)
                | models.Q(valid_to__gte=models.F("valid_from")),
                name="agreement_dates_in_order",
                violation_error_message=_("The end date must not be before the start date."),
            ),
            models.CheckConstraint(
                condition=models.Q(minimum_payout__gte=0), name="agreement_minimum_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["partner", "valid_from"], name="agreement_partner_from")]

    def __str__(self) -> str:
        end = self.valid_to.isoformat() if self.valid_to else "…"
        return f"{self.partner} {self.get_basis_display()} {self.valid_from.isoformat()} to {end}"

    def covers(self, day) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class AgreementTier(TimeStampedModel):
    """From ``from_volume`` (in the agreement's currency) up, ``rate_bps`` applies."""

    agreement = models.ForeignKey(
        RevenueShareAgreement, on_delete=models.CASCADE, related_name="tiers"
    )
    from_volume = AmountField(
        _("from monthly volume"), default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    rate_bps = models.DecimalField(
        _("rate (bps)"),
        max_digits=9,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("10000"))],
    )

    class Meta:
        ordering = ["agreement", "from_volume", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["agreement", "from_volume"], name="tier_unique_threshold"
            ),
            models.CheckConstraint(
                condition=models.Q(rate_bps__gte=0, rate_bps__lte=10000),
                name="tier_rate_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"≥ {self.from_volume}: {self.rate_bps} bps"


# ---------------------------------------------------------------------------
# Settlement runs
# ---------------------------------------------------------------------------


class SettlementRun(TimeStampedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        CALCULATING = "calculating", _("Calculating")
        CALCULATED = "calculated", _("Calculated")
        SUBMITTED = "submitted", _("Submitted for approval")
        APPROVED = "approved", _("Approved")
        EXPORTED = "exported", _("Exported")
        REJECTED = "rejected", _("Rejected")

    TRANSITIONS = {
        Status.DRAFT: {Status.CALCULATING},
        # A failed calculation returns to draft with its error.
        Status.CALCULATING: {Status.CALCULATED, Status.DRAFT},
        Status.CALCULATED: {Status.CALCULATING, Status.SUBMITTED},
        Status.SUBMITTED: {Status.APPROVED, Status.REJECTED},
        Status.APPROVED: {Status.EXPORTED},
        Status.EXPORTED: {Status.EXPORTED},
        Status.REJECTED: {Status.DRAFT},
    }
    # Nothing about these changes again, through any door.
    FROZEN = frozenset({Status.APPROVED, Status.EXPORTED})

    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    currency = CurrencyField(_("currency"), validators=[validate_currency])
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.DRAFT)
    prepared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="prepared_runs"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approvals_required = models.PositiveSmallIntegerField(default=1)
    # Counts submissions: approvals given before a rejection do not count again.
    submission = models.PositiveSmallIntegerField(default=0)
    rejection_reason = models.TextField(blank=True)
    calculation_error = models.TextField(blank=True)
    calculated_at = models.DateTimeField(null=True, blank=True)
    # Written by the calculation task while it works; the page polls them.
    progress = models.PositiveSmallIntegerField(default=0)
    progress_note = models.CharField(max_length=200, blank=True)
    # Totals of the last calculation (run currency, minor units).
    transaction_count = models.PositiveIntegerField(default=0)
    total_volume = AmountField(default=Decimal("0"))
    total_basis = AmountField(default=Decimal("0"))
    total_share = AmountField(default=Decimal("0"))
    platform_retained = AmountField(default=Decimal("0"))
    total_adjustments = AmountField(default=Decimal("0"))
    total_payable = AmountField(default=Decimal("0"))

    class Meta:
        ordering = ["-period_start", "currency", "-pk"]
        permissions = [
            ("approve_settlementrun", "Can approve settlement runs"),
            ("export_settlementrun", "Can export approved settlement runs"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(period_end__gte=models.F("period_start")),
                name="run_period_in_order",
                violation_error_message=_("The period must end on or after its start."),
            ),
        ]
        indexes = [models.Index(fields=["currency", "period_start"], name="run_currency_period")]

    def __str__(self) -> str:
        return f"{self.currency} {self.period_start.isoformat()} to {self.period_end.isoformat()}"

    def get_absolute_url(self) -> str:
        return reverse("settlements:run-detail", args=[self.pk])

    def can_move_to(self, target: str) -> bool:
        return target in self.TRANSITIONS.get(self.status, set())

    @property
    def is_frozen(self) -> bool:
        return self.status in self.FROZEN

    @property
    def is_editable(self) -> bool:
        """Adjustments and recalculation are allowed only before submission."""
        return self.status in {self.Status.DRAFT, self.Status.CALCULATED}


class SettlementApproval(TimeStampedModel):
    """One approver's sign-off; runs above the threshold need two of them."""

    run = models.ForeignKey(SettlementRun, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    submission = models.PositiveSmallIntegerField(default=1)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "submission", "approver"], name="approval_once_per_submission"
            )
        ]

    def __str__(self) -> str:
        return f"{self.run} approved by {self.approver}"


class Statement(TimeStampedModel):
    """What one partner earns in one run."""

    run = models.ForeignKey(SettlementRun, on_delete=models.PROTECT, related_name="statements")
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="statements")
    agreement = models.ForeignKey(
        RevenueShareAgreement,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="statements",
    )
    currency = CurrencyField(validators=[validate_currency])
    volume = AmountField(_("volume"), default=Decimal("0"))
    tier_from = AmountField(_("tier reached"), null=True, blank=True)
    rate_bps = models.DecimalField(
        _("rate (bps)"), max_digits=20, decimal_places=10, default=Decimal("0")
    )
    lines_total = AmountField(default=Decimal("0"))
    adjustments_total = AmountField(default=Decimal("0"))
    carried_in = AmountField(default=Decimal("0"))
    # lines + adjustments + carried in
    total = AmountField(default=Decimal("0"))
    payable = AmountField(default=Decimal("0"))
    carried_out = AmountField(default=Decimal("0"))
    has_negative_spread = models.BooleanField(default=False)
    reference = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["run", "partner__name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["run", "partner"], name="statement_once_per_partner"),
            models.CheckConstraint(
                condition=models.Q(payable__gte=0), name="statement_payable_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partner} · {self.run}"

    def get_absolute_url(self) -> str:
        return reverse("settlements:statement-detail", args=[self.run_id, self.pk])


class StatementLine(TimeStampedModel):
    """One merchant on one partner's statement."""

    class Role(models.TextChoices):
        REFERRER = "referrer", _("Referring partner")
        SPREAD = "spread", _("Spread over sub-agent")

    statement = models.ForeignKey(Statement, on_delete=models.PROTECT, related_name="lines")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=10, choices=Role)
    transaction_count = models.PositiveIntegerField(default=0)
    volume = AmountField(_("volume"))
    basis = AmountField(_("basis"))
    tier_from = AmountField(_("tier reached"), null=True, blank=True)
    partner_rate_bps = models.DecimalField(max_digits=20, decimal_places=10)
    child_rate_bps = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    # The rate this line pays: own rate, or the spread over the child (never below 0).
    rate_bps = models.DecimalField(_("rate (bps)"), max_digits=20, decimal_places=10)
    share = AmountField(_("share"))
    negative_spread = models.BooleanField(default=False)

    class Meta:
        ordering = ["statement", "merchant__legal_name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["statement", "merchant"], name="line_once_per_merchant")
        ]

    def __str__(self) -> str:
        return f"{self.merchant} {self.share}"


class MerchantBasis(TimeStampedModel):
    """Per merchant in a run: basis, partner shares and what the platform keeps.

    ``shares + retained = basis`` holds exactly for every row.
    """

    run = models.ForeignKey(SettlementRun, on_delete=models.PROTECT, related_name="merchant_bases")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    basis_kind = models.CharField(max_length=10, choices=RevenueShareAgreement.Basis)
    transaction_count = models.PositiveIntegerField(default=0)
    volume = AmountField()
    basis = AmountField()
    shares = AmountField()
    retained = AmountField()

    class Meta:
        ordering = ["run", "merchant", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["run", "merchant"], name="basis_once_per_merchant")
        ]

    def __str__(self) -> str:
        return f"{self.merchant} {self.basis}"


class Adjustment(TimeStampedModel):
    """A manual credit or debit on a partner's statement, made by finance before submission."""

    run = models.ForeignKey(SettlementRun, on_delete=models.PROTECT, related_name="adjustments")
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="+")
    amount = AmountField(_("amount"))
    reason = models.CharField(_("reason"), max_length=300)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["run", "created_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="adjustment_not_zero")
        ]

    def __str__(self) -> str:
        return f"{self.partner} {self.amount}: {self.reason}"


class SettlementExport(TimeStampedModel):
    """A file produced from an approved run; kept so it can be downloaded again."""

    class Kind(models.TextChoices):
        PAYOUT_CSV = "payout_csv", _("Payout file (CSV)")
        JOURNAL_CSV = "journal_csv", _("ERP journal (CSV)")
        STATEMENT_PDF = "statement_pdf", _("Statement (PDF)")

    run = models.ForeignKey(SettlementRun, on_delete=models.PROTECT, related_name="exports")
    kind = models.CharField(max_length=20, choices=Kind)
    statement = models.ForeignKey(
        Statement, on_delete=models.PROTECT, null=True, blank=True, related_name="exports"
    )
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    content = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["run", "kind", "statement", "pk"]

    def __str__(self) -> str:
        return self.filename


# ---------------------------------------------------------------------------
# Reconciliation
# ---------------------------------------------------------------------------


class Reconciliation(TimeStampedModel):
    """A gateway settlement report compared with the ledger."""

    source = models.ForeignKey(
        TransactionSource, on_delete=models.PROTECT, related_name="reconciliations"
    )
    filename = models.CharField(max_length=200)
    date_from = models.DateField()
    date_to = models.DateField()
    row_count = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    missing_in_ledger = models.PositiveIntegerField(default=0)
    missing_in_report = models.PositiveIntegerField(default=0)
    mismatched = models.PositiveIntegerField(default=0)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.source} {self.date_from.isoformat()} to {self.date_to.isoformat()}"

    def get_absolute_url(self) -> str:
        return reverse("settlements:reconciliation-detail", args=[self.pk])


class ReconciliationItem(TimeStampedModel):
    class Outcome(models.TextChoices):
        MATCHED = "matched", _("Matched")
        MISSING_IN_LEDGER = "missing_in_ledger", _("Missing from the ledger")
        MISSING_IN_REPORT = "missing_in_report", _("Missing from the report")
        AMOUNT_MISMATCH = "amount_mismatch", _("Amount mismatch")

    reconciliation = models.ForeignKey(
        Reconciliation, on_delete=models.CASCADE, related_name="items"
    )
    outcome = models.CharField(max_length=20, choices=Outcome)
    external_id = models.CharField(max_length=100)
    transaction = models.ForeignKey(
        Transaction, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    report_amount = AmountField(null=True, blank=True)
    report_fee = AmountField(null=True, blank=True)
    report_currency = models.CharField(max_length=3, blank=True)
    report_date = models.DateField(null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)

    class Meta:
        ordering = ["reconciliation", "outcome", "external_id", "pk"]
        indexes = [
            models.Index(fields=["reconciliation", "outcome"], name="recon_item_outcome"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {self.get_outcome_display()}"

    @property
    def needs_attention(self) -> bool:
        return self.outcome != self.Outcome.MATCHED and self.resolved_at is None
