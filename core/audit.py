"""Who did it, from where, and why: the context every history row records.

Web and API requests set it in ``core.middleware.AuditContextMiddleware``. Celery
tasks and management commands have no request, so they must say who acts with
``acting_as(...)``; otherwise their history rows would carry no actor.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from django.db import models
from simple_history.models import HistoricalRecords as _HistoricalRecords

if TYPE_CHECKING:
    from core.models import User


@dataclass(frozen=True)
class AuditContext:
    actor: Any = None  # a User, or None to fall back to the request's user
    origin: str = ""
    reason: str = ""
    ip: str = ""  # web and API requests: the client's address and browser
    user_agent: str = ""


_context: contextvars.ContextVar[AuditContext] = contextvars.ContextVar(
    "paycrm_audit_context",
    default=AuditContext(),  # noqa: B039  frozen dataclass, never mutated
)


def current() -> AuditContext:
    return _context.get()


@contextlib.contextmanager
def acting_as(actor: User | None, *, origin: str, reason: str = "") -> Iterator[AuditContext]:
    """Attribute every history row written inside the block to ``actor``.

    ``origin`` says where the work came from: ``"task merchants.x"``,
    ``"command seed_demo"``, ``"web 10.0.0.1"``.
    """
    token = _context.set(AuditContext(actor=actor, origin=origin, reason=reason))
    try:
        yield _context.get()
    finally:
        _context.reset(token)


@contextlib.contextmanager
def as_actor(actor: User | None, reason: str = "") -> Iterator[None]:
    """Attribute the block's history rows to ``actor``, keeping the current origin."""
    ctx = _context.get()
    token = _context.set(replace(ctx, actor=actor, reason=reason or ctx.reason))
    try:
        yield
    finally:
        _context.reset(token)


@contextlib.contextmanager
def origin(origin: str, *, ip: str = "", user_agent: str = "") -> Iterator[None]:
    """Record where the work comes from while keeping the current actor."""
    ctx = _context.get()
    token = _context.set(replace(ctx, origin=origin, ip=ip, user_agent=user_agent[:300]))
    try:
        yield
    finally:
        _context.reset(token)


def stamp(instance: models.Model, *, actor: User | None, reason: str = "") -> None:
    """Name the actor and reason for the next history row of ``instance``."""
    if actor is not None:  # None keeps the context's actor
        instance._history_user = actor
    if reason:
        instance._change_reason = reason


def current_actor() -> User | None:
    """Who acts now: the explicit actor, else the signed-in user of the request."""
    actor = _context.get().actor
    if actor is not None:
        return actor
    request = getattr(_HistoricalRecords.context, "request", None)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    return None


def history_user(request=None, instance=None, **kwargs):
    """simple-history ``get_user`` hook: explicit actor first, then the request's user."""
    actor = _context.get().actor
    if actor is not None:
        return actor
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    return None


class HistoryOrigin(models.Model):
    """Fields added to every historical model."""

    history_origin = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        abstract = True


class HistoricalRecords(_HistoricalRecords):
    """simple-history with the project's actor, origin and reason attached."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("get_user", history_user)
        kwargs.setdefault("bases", [HistoryOrigin])
        # Attribution must survive a user being deactivated or pseudonymised.
        kwargs.setdefault("user_db_constraint", False)
        super().__init__(*args, **kwargs)

    def get_change_reason_for_object(self, instance, history_type, using):
        reason = super().get_change_reason_for_object(instance, history_type, using)
        return reason or _context.get().reason or None


def set_history_origin(sender, history_instance, **kwargs) -> None:
    """``pre_create_historical_record`` receiver: copy the origin onto the row."""
    if hasattr(history_instance, "history_origin"):
        history_instance.history_origin = _context.get().origin[:255]
