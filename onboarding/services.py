"""The onboarding engine: workflow versions, applications and step decisions.

Every transition locks the application row first and checks the move after the
lock, so of two decisions arriving together the second sees the first's result.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit, notifications, permissions
from core.exceptions import DomainError, TransitionError
from core.models import User
from merchants import services as merchant_services
from merchants.models import Document, Merchant
from onboarding import conditions
from onboarding.models import (
    Application,
    InformationRequest,
    StepDecision,
    WorkflowDefinition,
    WorkflowStep,
)

STEP_FIELDS = (
    "name",
    "group",
    "approvals_required",
    "condition",
    "sla_hours",
    "required_documents",
)


def lock_application(pk: int) -> Application:
    return Application.objects.select_for_update().get(pk=pk)


def _save(instance, *, actor: User, reason: str = "", fields: list[str] | None = None) -> None:
    instance.full_clean()
    audit.stamp(instance, actor=actor, reason=reason)
    if fields is None:
        instance.save()
    else:
        instance.save(update_fields=[*fields, "updated_at"])


# ---------------------------------------------------------------------------
# Workflow definitions
# ---------------------------------------------------------------------------


def _require_admin(actor: User) -> None:
    if not actor.has_perm("onboarding.change_workflowdefinition"):
        raise PermissionDenied


def _validate_step(fields: dict[str, Any]) -> None:
    conditions.validate(fields.get("condition"))
    documents = fields.get("required_documents") or []
    unknown = set(documents) - set(Document.Type.values)
    if unknown:
        raise ValidationError(
            {
                "required_documents": _("Unknown document type(s): %(t)s.")
                % {"t": ", ".join(sorted(unknown))}
            }
        )


@transaction.atomic
def definition_create(
    *, actor: User, key: str, name: str, steps: list[dict[str, Any]]
) -> WorkflowDefinition:
    """A new draft version of workflow ``key`` with ``steps`` in order."""
    _require_admin(actor)
    if not steps:
        raise ValidationError({"steps": _("A workflow needs at least one step.")})
    if WorkflowDefinition.objects.filter(key=key, status=WorkflowDefinition.Status.DRAFT).exists():
        raise ValidationError({"key": _("This workflow already has a draft; edit that one.")})
    latest = WorkflowDefinition.objects.filter(key=key).aggregate(v=Max("version"))["v"] or 0
    definition = WorkflowDefinition(key=key, name=name, version=latest + 1, created_by=actor)
    _save(definition, actor=actor, reason="draft created")
    for position, fields in enumerate(steps, start=1):
        _step_create(definition, position, fields, actor)
    return definition


def _step_create(definition, position: int, fields: dict[str, Any], actor: User) -> WorkflowStep:
    unknown = set(fields) - set(STEP_FIELDS)
    if unknown:
        raise ValidationError({f"steps[{position}]": _("Unknown field(s).")})
    try:
        _validate_step(fields)
        step = WorkflowStep(definition=definition, position=position, **fields)
        _save(step, actor=actor, reason="step added")
    except ValidationError as exc:
        raise ValidationError(
            {f"steps[{position}].{k}": v for k, v in exc.message_dict.items()}
        ) from exc
    return step


@transaction.atomic
def definition_publish(*, actor: User, definition: WorkflowDefinition) -> WorkflowDefinition:
    """Publish a draft; the previously published version retires (its running
    applications keep using it)."""
    _require_admin(actor)
    definition = WorkflowDefinition.objects.select_for_update().get(pk=definition.pk)
    if definition.status != WorkflowDefinition.Status.DRAFT:
        raise TransitionError(definition, "published", _("Only a draft can be published."))
    for old in WorkflowDefinition.objects.select_for_update().filter(
        key=definition.key, status=WorkflowDefinition.Status.PUBLISHED
    ):
        old.status = WorkflowDefinition.Status.RETIRED
        _save(old, actor=actor, reason=f"replaced by v{definition.version}", fields=["status"])
    definition.status = WorkflowDefinition.Status.PUBLISHED
    definition.published_at = timezone.now()
    _save(definition, actor=actor, reason="published", fields=["status", "published_at"])
    return definition


@transaction.atomic
def definition_new_version(*, actor: User, definition: WorkflowDefinition) -> WorkflowDefinition:
    """A draft copy of a published definition, to edit without touching running work."""
    steps = [{name: getattr(step, name) for name in STEP_FIELDS} for step in definition.steps.all()]
    return definition_create(actor=actor, key=definition.key, name=definition.name, steps=steps)


@transaction.atomic
def step_update(*, actor: User, step: WorkflowStep, **fields: Any) -> WorkflowStep:
    _require_admin(actor)
    step = WorkflowStep.objects.select_for_update().select_related("definition").get(pk=step.pk)
    if not step.definition.is_editable:
        raise DomainError(_("Published versions cannot change; create a new version."))
    unknown = set(fields) - set(STEP_FIELDS)
    if unknown:
        raise ValidationError({name: _("This field cannot be set here.") for name in unknown})
    _validate_step({**{n: getattr(step, n) for n in STEP_FIELDS}, **fields})
    for name, value in fields.items():
        setattr(step, name, value)
    _save(step, actor=actor, fields=list(fields))
    return step


def published_definition(key: str = "standard") -> WorkflowDefinition:
    definition = WorkflowDefinition.objects.filter(
        key=key, status=WorkflowDefinition.Status.PUBLISHED
    ).first()
    if definition is None:
        raise DomainError(_("No published onboarding workflow; an admin must publish one."))
    return definition


# ---------------------------------------------------------------------------
# Applications
# ---------------------------------------------------------------------------


def applicable_steps(application: Application) -> list[WorkflowStep]:
    """The pinned definition's steps whose condition the merchant meets, in order."""
    facts = conditions.merchant_facts(application.merchant)
    return [
        step
        for step in application.definition.steps.select_related("group").order_by("position")
        if conditions.evaluate(step.condition, facts)
    ]


@transaction.atomic
def application_create(*, actor: User, merchant: Merchant, key: str = "standard") -> Application:
    """Open an application pinned to the currently published version."""
    permissions.require(actor, "change", merchant)
    if not actor.has_perm("onboarding.add_application"):
        raise PermissionDenied
    merchant = merchant_services.lock_merchant(merchant.pk)
    application = Application(
        merchant=merchant, definition=published_definition(key), created_by=actor
    )
    try:
        with transaction.atomic():
            _save(application, actor=actor, reason="created")
    except IntegrityError:
        raise ValidationError(
            {"merchant": _("This merchant already has an open application.")}
        ) from None
    return application


# What entering a step changes on the application.
ENTER_FIELDS = [
    "current_step",
    "step_round",
    "step_entered_at",
    "sla_reminded_round",
    "assignee",
]


def _enter_step(application: Application, step: WorkflowStep | None) -> None:
    application.current_step = step
    application.step_round += 1
    application.step_entered_at = timezone.now()
    application.sla_reminded_round = 0
    application.assignee = None
    if step is not None:
        notifications.notify(
            users=User.objects.filter(groups=step.group, is_active=True).exclude(
                pk=application.submitted_by_id
            ),
            title=_("Waiting for your group: %(step)s for %(merchant)s")
            % {"step": step.name, "merchant": application.merchant.legal_name},
            url=application_url(application),
        )


def application_url(application: Application) -> str:
    return reverse("onboarding:application", args=[application.pk])


def _notify_sales(application: Application, title: str, body: str = "") -> None:
    notifications.notify(
        users=[application.merchant.owner, application.created_by, application.submitted_by],
        title=title,
        body=body,
        url=application_url(application),
    )


@transaction.atomic
def application_submit(*, actor: User, application: Application) -> Application:
    """Submit a draft: the merchant moves to onboarding and the first step opens."""
    application = lock_application(application.pk)
    permissions.require(actor, "change", application.merchant)
    if not application.can_move_to(Application.Status.SUBMITTED):
        raise TransitionError(application, Application.Status.SUBMITTED)
    steps = applicable_steps(application)
    application.status = Application.Status.IN_REVIEW
    application.submitted_by = actor
    application.submitted_at = timezone.now()
    _enter_step(application, steps[0] if steps else None)
    if application.merchant.status == Merchant.Status.LEAD:
        merchant_services.merchant_change_status(
            merchant=application.merchant,
            actor=actor,
            status=Merchant.Status.ONBOARDING,
            reason=f"application #{application.pk} submitted",
        )
    _save(
        application,
        actor=actor,
        reason="submitted",
        fields=[
            "status",
            "submitted_by",
            "submitted_at",
            "current_step",
            "step_round",
            "step_entered_at",
            "sla_reminded_round",
            "assignee",
        ],
    )
    if application.current_step is None:
        _approve(application, actor)
    else:
        from onboarding import tasks

        transaction.on_commit(
            lambda: tasks.application_run_checks.delay(
                application_id=application.pk, actor_id=actor.pk
            )
        )
    return application


def _check_decider(application: Application, actor: User) -> WorkflowStep:
    step = application.current_step
    if application.status != Application.Status.IN_REVIEW or step is None:
        raise TransitionError(
            application, "decision", _("This application is not waiting for a decision.")
        )
    if application.submitted_by_id == actor.pk:
        raise TransitionError(
            application, "decision", _("You submitted this application and cannot decide on it.")
        )
    if not actor.groups.filter(pk=step.group_id).exists():
        raise PermissionDenied(
            _("Only the %(group)s group decides this step.") % {"group": step.group}
        )
    already = StepDecision.objects.filter(
        application=application, step=step, step_round=application.step_round, decided_by=actor
    ).exists()
    if already:
        raise TransitionError(
            application, "decision", _("You have already decided this step; another person must.")
        )
    return step


@transaction.atomic
def decision_record(
    *,
    actor: User,
    application: Application,
    kind: str,
    comment: str = "",
    items: list[str] | None = None,
    send_back_to: WorkflowStep | None = None,
) -> StepDecision:
    """Record one person's decision on the current step and apply its effect.

    Locks the application; a step needing N approvals advances on the N-th
    approval by N different people. Reject and request-information need a
    comment or items; send-back names an earlier step of the same version.
    """
    application = lock_application(application.pk)
    step = _check_decider(application, actor)
    if kind in (StepDecision.Kind.REJECT, StepDecision.Kind.SEND_BACK) and not comment.strip():
        raise ValidationError({"comment": _("Say why, for the record and for sales.")})
    if kind == StepDecision.Kind.REQUEST_INFO and not items:
        raise ValidationError({"items": _("List what is missing.")})
    earlier = (
        send_back_to is not None
        and send_back_to.definition_id == application.definition_id
        and send_back_to.position < step.position
    )
    if kind == StepDecision.Kind.SEND_BACK and not earlier:
        raise ValidationError({"send_back_to": _("Choose an earlier step of this workflow.")})
    decision = StepDecision(
        application=application,
        step=step,
        step_round=application.step_round,
        kind=kind,
        decided_by=actor,
        comment=comment.strip(),
        send_back_to=send_back_to,
    )
    _save(decision, actor=actor, reason=kind)

    if kind == StepDecision.Kind.APPROVE:
        _check_not_blocked(application, step)
        approvals = StepDecision.objects.filter(
            application=application,
            step=step,
            step_round=application.step_round,
            kind=StepDecision.Kind.APPROVE,
        ).count()
        if approvals >= step.approvals_required:
            _advance(application, actor)
    elif kind == StepDecision.Kind.REJECT:
        application.status = Application.Status.REJECTED
        application.decided_at = timezone.now()
        application.outcome_reason = comment.strip()
        _save(
            application,
            actor=actor,
            reason="rejected",
            fields=["status", "decided_at", "outcome_reason"],
        )
        _notify_sales(
            application,
            _("Onboarding rejected: %(merchant)s") % {"merchant": application.merchant.legal_name},
            comment.strip(),
        )
    elif kind == StepDecision.Kind.REQUEST_INFO:
        request = InformationRequest(
            application=application, step=step, requested_by=actor, items=list(items or [])
        )
        _save(request, actor=actor, reason="information requested")
        application.status = Application.Status.INFO_REQUESTED
        _save(application, actor=actor, reason="information requested", fields=["status"])
        missing = "\n".join(f"- {item}" for item in request.items)
        _notify_sales(
            application,
            _("Information requested: %(merchant)s")
            % {"merchant": application.merchant.legal_name},
            missing,
        )
        merchant_services.timeline_note(
            merchant=application.merchant,
            actor=actor,
            subject=_("Onboarding: information requested at %(step)s") % {"step": step.name},
            body=missing,
        )
    elif kind == StepDecision.Kind.SEND_BACK:
        _enter_step(application, send_back_to)
        _save(
            application,
            actor=actor,
            reason=f"sent back to {send_back_to}",
            fields=ENTER_FIELDS,
        )
    return decision


def _check_not_blocked(application: Application, step: WorkflowStep) -> None:
    from onboarding import checks

    hits = list(checks.blocking_checks(application, step))
    if hits:
        raise TransitionError(
            application,
            "approve",
            _("Blocked until compliance clears or confirms: %(checks)s.")
            % {"checks": "; ".join(f"{h.get_kind_display()} ({h.summary})" for h in hits)},
        )
    missing = [
        t
        for t in step.required_documents
        if not application.merchant.documents.filter(
            doc_type=t, is_current=True, status=Document.Status.ACCEPTED
        ).exists()
    ]
    if missing:
        labels = dict(Document.Type.choices)
        raise TransitionError(
            application,
            "approve",
            _("These documents must be accepted first: %(docs)s.")
            % {"docs": ", ".join(str(labels[t]) for t in missing)},
        )


def _advance(application: Application, actor: User) -> None:
    steps = applicable_steps(application)
    later = [s for s in steps if s.position > application.current_step.position]
    if later:
        _enter_step(application, later[0])
        _save(
            application,
            actor=actor,
            reason=f"step done; now {later[0]}",
            fields=ENTER_FIELDS,
        )
    else:
        _approve(application, actor)


def _approve(application: Application, actor: User) -> None:
    application.status = Application.Status.APPROVED
    application.current_step = None
    application.decided_at = timezone.now()
    _save(
        application, actor=actor, reason="approved", fields=["status", "current_step", "decided_at"]
    )
    _notify_sales(
        application,
        _("Onboarding approved: %(merchant)s") % {"merchant": application.merchant.legal_name},
    )
    merchant_services.merchant_activate(
        merchant=application.merchant,
        actor=actor,
        reason=f"onboarding application #{application.pk} approved",
    )


@transaction.atomic
def application_resubmit(*, actor: User, application: Application) -> Application:
    """Sales answers an information request: back to the same step, a new visit."""
    application = lock_application(application.pk)
    permissions.require(actor, "change", application.merchant)
    if application.status != Application.Status.INFO_REQUESTED:
        raise TransitionError(application, Application.Status.IN_REVIEW)
    now = timezone.now()
    for request in application.information_requests.filter(resolved_at__isnull=True):
        request.resolved_at = now
        _save(request, actor=actor, reason="resubmitted", fields=["resolved_at"])
    application.status = Application.Status.IN_REVIEW
    merchant_services.timeline_note(
        merchant=application.merchant,
        actor=actor,
        subject=_("Onboarding: information sent, application resubmitted"),
    )
    _enter_step(application, application.current_step)
    _save(
        application,
        actor=actor,
        reason="resubmitted",
        fields=["status", *ENTER_FIELDS],
    )
    return application


@transaction.atomic
def application_withdraw(*, actor: User, application: Application, reason: str) -> Application:
    application = lock_application(application.pk)
    permissions.require(actor, "change", application.merchant)
    if not application.can_move_to(Application.Status.WITHDRAWN):
        raise TransitionError(application, Application.Status.WITHDRAWN)
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the application is withdrawn.")})
    application.status = Application.Status.WITHDRAWN
    application.decided_at = timezone.now()
    application.outcome_reason = reason.strip()
    _save(
        application,
        actor=actor,
        reason="withdrawn",
        fields=["status", "decided_at", "outcome_reason"],
    )
    return application


def sla_follow_up(*, actor: User) -> int:
    """Reminders past the SLA, escalation to workflow admins past twice the SLA.

    Each application row is locked while its state is updated, so two beat runs
    overlapping never send the same reminder twice. Returns notices sent.
    """
    now = timezone.now()
    sent = 0
    waiting = Application.objects.filter(
        status=Application.Status.IN_REVIEW, current_step__isnull=False, sla_reminded_round__lt=2
    ).values_list("pk", flat=True)
    for pk in waiting:
        with transaction.atomic(), audit.acting_as(actor, origin="task onboarding.sla_reminders"):
            application = (
                Application.objects.select_for_update(of=("self",))
                .select_related("current_step", "current_step__group", "merchant")
                .get(pk=pk)
            )
            step = application.current_step
            hours = (now - application.step_entered_at).total_seconds() / 3600
            level = 2 if hours > 2 * step.sla_hours else 1 if hours > step.sla_hours else 0
            if level <= application.sla_reminded_round:
                continue
            if level == 2:
                users = User.objects.filter(
                    groups__permissions__codename="change_workflowdefinition", is_active=True
                ).distinct()
                title = _("Escalation: %(step)s for %(merchant)s is past twice its SLA")
            else:
                users = User.objects.filter(groups=step.group, is_active=True)
                title = _("Overdue: %(step)s for %(merchant)s is past its SLA")
            notifications.notify(
                users=users,
                title=title % {"step": step.name, "merchant": application.merchant.legal_name},
                body=_("Waiting %(hours)d hours; the SLA is %(sla)d hours.")
                % {"hours": hours, "sla": step.sla_hours},
                url=application_url(application),
            )
            application.sla_reminded_round = level
            _save(application, actor=actor, reason="SLA follow-up", fields=["sla_reminded_round"])
            sent += 1
    return sent


@transaction.atomic
def definition_replace_steps(
    *, actor: User, definition: WorkflowDefinition, steps: list[dict[str, Any]]
) -> WorkflowDefinition:
    """Save the editor's steps onto a draft, in the given order.

    Drafts are not pinned by any application, so their steps are replaced
    whole; history keeps the removed ones.
    """
    _require_admin(actor)
    definition = WorkflowDefinition.objects.select_for_update().get(pk=definition.pk)
    if not definition.is_editable:
        raise DomainError(_("Published versions cannot change; create a new version."))
    if not steps:
        raise ValidationError({"steps": _("A workflow needs at least one step.")})
    for old in definition.steps.all():
        audit.stamp(old, actor=actor, reason="replaced in the editor")
        old.delete()
    for position, fields in enumerate(steps, start=1):
        _step_create(definition, position, fields, actor)
    return definition


@transaction.atomic
def application_claim(*, actor: User, application: Application) -> Application:
    """A member of the deciding group takes the current step ("assigned to me")."""
    application = lock_application(application.pk)
    step = application.current_step
    if application.status != Application.Status.IN_REVIEW or step is None:
        raise TransitionError(application, "claim", _("This application waits for no one."))
    if not actor.groups.filter(pk=step.group_id).exists():
        raise PermissionDenied
    application.assignee = actor
    _save(application, actor=actor, reason="claimed", fields=["assignee"])
    return application
