"""Tell people things: an in-app notification per user, and an e-mail after commit."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from django.utils import timezone

from core import audit
from core.models import Notification, User


def notify(
    *, users: Iterable[User], title: str, body: str = "", url: str = "", email: bool = True
) -> list[Notification]:
    """One notification per distinct active user; e-mails go out once the
    transaction commits (none if it rolls back)."""
    recipients = {u.pk: u for u in users if u is not None and u.is_active}.values()
    created = []
    for user in recipients:
        notification = Notification(user=user, title=title[:200], body=body, url=url)
        notification.save()
        created.append(notification)
    if email:
        messages = [
            (title, f"{body}\n\n{url}".strip(), settings.DEFAULT_FROM_EMAIL, [u.email])
            for u in recipients
            if u.email
        ]
        if messages:
            transaction.on_commit(lambda: send_mass_mail(messages, fail_silently=False))
    return created


@transaction.atomic
def mark_read(*, user: User, notification_ids: list[int] | None = None) -> int:
    qs = Notification.objects.select_for_update().filter(user=user, read_at__isnull=True)
    if notification_ids is not None:
        qs = qs.filter(pk__in=notification_ids)
    count = 0
    for notification in qs:
        notification.read_at = timezone.now()
        audit.stamp(notification, actor=user)
        notification.save(update_fields=["read_at", "updated_at"])
        count += 1
    return count
