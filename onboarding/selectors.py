"""Reads of onboarding data, permission-filtered through the merchant."""

from __future__ import annotations

import statistics
from datetime import timedelta

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from core import permissions
from core.models import User
from merchants.models import Merchant
from onboarding.models import Application, StepDecision, WorkflowDefinition


def application_list(*, user: User) -> QuerySet[Application]:
    """Applications of merchants the user may see, plus those waiting on a step
    one of the user's groups decides (a decider must see what they decide)."""
    qs = Application.objects.select_related(
        "merchant", "definition", "current_step", "current_step__group", "submitted_by"
    )
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if permissions.has_global(user, Merchant, "view"):
        return qs
    visible = permissions.visible(user, Merchant).values("pk")
    return qs.filter(
        Q(merchant__in=visible)
        | Q(status=Application.Status.IN_REVIEW, current_step__group__in=user.groups.all())
    )


def application_get(*, user: User, pk: int) -> Application:
    return get_object_or_404(application_list(user=user), pk=pk)


def awaiting_group(*, user: User) -> QuerySet[Application]:
    """Applications whose current step one of the user's groups decides."""
    return application_list(user=user).filter(
        status=Application.Status.IN_REVIEW, current_step__group__in=user.groups.all()
    )


def workflow_list(*, user: User) -> QuerySet[WorkflowDefinition]:
    if not permissions.has_global(user, WorkflowDefinition, "view"):
        return WorkflowDefinition.objects.none()
    return WorkflowDefinition.objects.prefetch_related("steps__group").order_by("key", "-version")


def onboarding_metrics(*, user: User, days: int = 90) -> dict:
    """Figures for the dashboard over the applications ``user`` can see.

    A step's duration runs from the decision that closed the previous step (or
    the submission) to the approval that closed it; the median is taken per step.
    """
    now = timezone.now()
    since = now - timedelta(days=days)
    visible = application_list(user=user)
    by_state = dict(
        visible.order_by().values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    recent = visible.filter(decided_at__gte=since)
    approved = recent.filter(status=Application.Status.APPROVED).count()
    rejected = recent.filter(status=Application.Status.REJECTED).count()
    breaches = (
        Application.history.filter(
            pk__in=visible.values("pk"),
            history_change_reason="SLA follow-up",
            history_date__gte=now - timedelta(days=7),
        )
        .values("id")
        .distinct()
        .count()
    )
    durations: dict[str, list[float]] = {}
    decisions = (
        StepDecision.objects.filter(
            application__in=visible.filter(submitted_at__gte=since).values("pk"),
            kind=StepDecision.Kind.APPROVE,
        )
        .select_related("step", "application")
        .order_by("application_id", "created_at")
    )
    last: dict[int, object] = {}
    for decision in decisions:
        start = last.get(decision.application_id, decision.application.submitted_at)
        hours = (decision.created_at - start).total_seconds() / 3600
        durations.setdefault(decision.step.name, []).append(hours)
        last[decision.application_id] = decision.created_at
    labels = dict(Application.Status.choices)
    return {
        "by_state": [{"label": str(labels[s]), "count": by_state.get(s, 0)} for s in labels],
        "approval_rate": round(100 * approved / (approved + rejected))
        if approved + rejected
        else None,
        "decided": approved + rejected,
        "sla_breaches_week": breaches,
        "median_hours": [
            {"step": step, "hours": round(statistics.median(values), 1)}
            for step, values in durations.items()
        ],
    }
