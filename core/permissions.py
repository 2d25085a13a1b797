"""Which objects of a kind may this user see or change?

The one place that answers it. Views, API, exports and search take their
querysets from selectors built on ``visible``; nothing else filters by rights.

Rules: a global model permission (held directly or through a role group) opens
every object; otherwise only objects granted to the user, or to one of their
groups (sales teams are groups), in guardian's direct foreign-key tables.
Children (contacts, documents…) follow their merchant through ``visible_through``.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, Group
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from guardian.shortcuts import assign_perm, remove_perm
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from core import audit
from core.models import User

Principal = User | Group


def perm_name(model: type[models.Model], action: str) -> str:
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def has_global(user: User | AnonymousUser, model: type[models.Model], action: str) -> bool:
    return bool(user.is_active and user.has_perm(perm_name(model, action)))


def visible(
    user: User | AnonymousUser, model: type[models.Model], action: str = "view"
) -> QuerySet:
    """Objects of ``model`` on which ``user`` holds ``action`` (view, change…)."""
    qs = model._default_manager.all()
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if has_global(user, model, action):
        return qs
    codename = f"{action}_{model._meta.model_name}"
    # Subqueries of ids, not guardian's get_objects_for_user: one SQL statement
    # that stays cheap on long lists and composes with further filters.
    by_user = get_user_obj_perms_model(model).objects.filter(
        user=user, permission__codename=codename
    )
    by_group = get_group_obj_perms_model(model).objects.filter(
        group__user=user, permission__codename=codename
    )
    # One IN over a UNION: with OR between two IN subqueries PostgreSQL falls
    # back to scanning the whole table (bench/merchant_list.py).
    granted = by_user.values("content_object_id").union(by_group.values("content_object_id"))
    return qs.filter(pk__in=granted)


def visible_through(
    user: User | AnonymousUser,
    queryset: QuerySet,
    *,
    parent_field: str,
    parent_model: type[models.Model],
    action: str = "view",
) -> QuerySet:
    """Children whose parent (e.g. their merchant) ``user`` may ``action``."""
    if has_global(user, parent_model, action):
        return queryset
    return queryset.filter(**{f"{parent_field}__in": visible(user, parent_model, action)})


def can(user: User | AnonymousUser, action: str, obj: models.Model) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    perm = perm_name(type(obj), action)
    return user.has_perm(perm) or user.has_perm(perm, obj)


def require(user: User | AnonymousUser, action: str, obj: models.Model) -> None:
    """403 for a known object the user may not ``action``. (Unknown ones are 404.)"""
    if not can(user, action, obj):
        raise PermissionDenied


def grant(
    principal: Principal, obj: models.Model, actions: tuple[str, ...], *, actor: User
) -> None:
    """Give object permissions; the grant rows' history names ``actor``."""
    with audit.as_actor(actor):
        for action in actions:
            assign_perm(perm_name(type(obj), action), principal, obj)


def revoke(
    principal: Principal, obj: models.Model, actions: tuple[str, ...], *, actor: User
) -> None:
    with audit.as_actor(actor):
        for action in actions:
            remove_perm(perm_name(type(obj), action), principal, obj)
