from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.models import TimeStampedModel
from merchants.models import Document, Merchant


class WorkflowDefinition(TimeStampedModel):
    """One version of an onboarding workflow. Publishing freezes it; edits go to a
    new draft version, so running applications keep the version they started on."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        RETIRED = "retired", _("Retired")

    key = models.SlugField(
        _("key"), max_length=50, help_text=_("Names the workflow across versions.")
    )
    name = models.CharField(_("name"), max_length=100)
    version = models.PositiveIntegerField(_("version"), editable=False)
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.DRAFT)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["key", "-version", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="workflow_unique_version"),
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(status="published"),
                name="workflow_one_published_per_key",
            ),
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(status="draft"),
                name="workflow_one_draft_per_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def is_editable(self) -> bool:
        return self.status == self.Status.DRAFT


class WorkflowStep(TimeStampedModel):
    definition = models.ForeignKey(
        WorkflowDefinition, on_delete=models.CASCADE, related_name="steps"
    )
    position = models.PositiveIntegerField(_("position"))
    name = models.CharField(_("name"), max_length=100)
    group = models.ForeignKey(
        Group, on_delete=models.PROTECT, related_name="+", verbose_name=_("deciding group")
    )
    approvals_required = models.PositiveSmallIntegerField(
        _("approvals required"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(3)],
        help_text=_("Distinct people who must approve: 1, or 2 for four eyes."),
    )
    # Structured rule (onboarding.conditions); null means the step always applies.
    condition = models.JSONField(_("condition"), null=True, blank=True)
    sla_hours = models.PositiveIntegerField(_("SLA (hours)"), default=24)
    required_documents = models.JSONField(_("required document types"), default=list, blank=True)

    class Meta:
        ordering = ["definition", "position", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["definition", "position"], name="workflow_step_unique_position"
            ),
            models.CheckConstraint(
                condition=models.Q(approvals_required__gte=1, approvals_required__lte=3),
                name="workflow_step_approvals_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"

    @staticmethod
    def document_type_choices():
        return Document.Type.choices


class Application(TimeStampedModel):
    """A merchant's way through one pinned workflow version."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted")
        IN_REVIEW = "in_review", _("In review")
        INFO_REQUESTED = "info_requested", _("Information requested")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    TRANSITIONS = {
        Status.DRAFT: {Status.SUBMITTED, Status.WITHDRAWN},
        Status.SUBMITTED: {Status.IN_REVIEW, Status.WITHDRAWN},
        Status.IN_REVIEW: {
            Status.INFO_REQUESTED,
            Status.IN_REVIEW,  # next step, or sent back to an earlier one
            Status.APPROVED,
            Status.REJECTED,
            Status.WITHDRAWN,
        },
        Status.INFO_REQUESTED: {Status.IN_REVIEW, Status.WITHDRAWN},
        Status.APPROVED: set(),
        Status.REJECTED: set(),
        Status.WITHDRAWN: set(),
    }
    OPEN = (Status.DRAFT, Status.SUBMITTED, Status.IN_REVIEW, Status.INFO_REQUESTED)

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="applications")
    definition = models.ForeignKey(
        WorkflowDefinition, on_delete=models.PROTECT, related_name="applications"
    )
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.DRAFT)
    current_step = models.ForeignKey(
        WorkflowStep, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Bumped whenever a step is entered (again): decisions count per visit.
    step_round = models.PositiveIntegerField(default=0, editable=False)
    step_entered_at = models.DateTimeField(null=True, blank=True, editable=False)
    # SLA follow-up of the current visit: 0 none yet, 1 reminded, 2 escalated.
    sla_reminded_round = models.PositiveSmallIntegerField(default=0, editable=False)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Who in the deciding group has taken the current step (cleared on each new step).
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    outcome_reason = models.TextField(_("reason"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant"],
                condition=models.Q(
                    status__in=["draft", "submitted", "in_review", "info_requested"]
                ),
                name="application_one_open_per_merchant",
                violation_error_message=_("This merchant already has an open application."),
            )
        ]
        indexes = [models.Index(fields=["status", "current_step"], name="application_queue")]

    def __str__(self) -> str:
        return f"Application #{self.pk} for {self.merchant}"

    def can_move_to(self, target: str) -> bool:
        return target in self.TRANSITIONS.get(self.status, set())


class StepDecision(TimeStampedModel):
    class Kind(models.TextChoices):
        APPROVE = "approve", _("Approve")
        REJECT = "reject", _("Reject")
        REQUEST_INFO = "request_info", _("Request information")
        SEND_BACK = "send_back", _("Send back")

    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="decisions")
    step = models.ForeignKey(WorkflowStep, on_delete=models.PROTECT, related_name="+")
    step_round = models.PositiveIntegerField()
    kind = models.CharField(_("decision"), max_length=20, choices=Kind)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField(_("comment"), blank=True)
    send_back_to = models.ForeignKey(
        WorkflowStep, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            # One person counts once per visit of a step, whatever arrives at once.
            models.UniqueConstraint(
                fields=["application", "step", "step_round", "decided_by"],
                name="decision_one_per_person_per_visit",
            )
        ]

    @property
    def audit_merchant_id(self) -> int | None:
        return self.application.merchant_id

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.decided_by} on {self.step}"


class InformationRequest(TimeStampedModel):
    application = models.ForeignKey(
        Application, on_delete=models.PROTECT, related_name="information_requests"
    )
    step = models.ForeignKey(WorkflowStep, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    items = models.JSONField(_("missing items"), default=list)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    @property
    def audit_merchant_id(self) -> int | None:
        return self.application.merchant_id

    def __str__(self) -> str:
        return f"Information request #{self.pk}"


class ScreeningEntry(TimeStampedModel):
    """A sanctioned or politically exposed name, loaded from a list (load_screening_list)."""

    name = models.CharField(_("name"), max_length=300)
    aliases = models.JSONField(_("aliases"), default=list, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True)
    source = models.CharField(_("list source"), max_length=100)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name_plural = _("screening entries")

    def __str__(self) -> str:
        return f"{self.name} ({self.source})"


class ComplianceCheck(TimeStampedModel):
    """A check run on submission. A hit blocks its step until compliance resolves it."""

    class Kind(models.TextChoices):
        SANCTIONS = "sanctions", _("Sanctions / PEP screening")
        DOCUMENTS = "documents", _("Required documents")
        HIGH_RISK = "high_risk", _("High-risk MCC or country")
        SHARED_BANK = "shared_bank", _("Bank account shared with another merchant")

    class Status(models.TextChoices):
        PASSED = "passed", _("Passed")
        HIT = "hit", _("Hit: needs review")
        CLEARED = "cleared", _("Cleared (false positive)")
        CONFIRMED = "confirmed", _("Confirmed")

    application = models.ForeignKey(
        Application, on_delete=models.PROTECT, related_name="compliance_checks"
    )
    kind = models.CharField(_("check"), max_length=20, choices=Kind)
    status = models.CharField(_("status"), max_length=20, choices=Status)
    blocks_step = models.ForeignKey(
        WorkflowStep, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    summary = models.CharField(_("summary"), max_length=300)
    detail = models.JSONField(_("detail"), default=list, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_reason = models.TextField(_("reason"), blank=True)

    class Meta:
        ordering = ["application", "kind", "pk"]
        permissions = [("resolve_compliancecheck", "Can clear or confirm compliance hits")]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "kind"], name="compliance_check_one_per_kind"
            )
        ]

    @property
    def audit_merchant_id(self) -> int | None:
        return self.application.merchant_id

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.get_status_display()}"
