"""Reads of onboarding data, permission-filtered through the merchant."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from core import permissions
from core.models import User
from merchants.models import Merchant
from onboarding.models import Application, WorkflowDefinition


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
