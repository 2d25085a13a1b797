from celery import shared_task


@shared_task
def merchant_transfer_owner(
    *, merchant_ids: list[int], new_owner_id: int, actor_id: int, reason: str = ""
) -> int:
    """Move merchants to another owner in the background; returns how many moved."""
    from core import audit
    from core.models import User
    from merchants import services

    actor = User.objects.get(pk=actor_id)
    new_owner = User.objects.get(pk=new_owner_id)
    with audit.acting_as(actor, origin="task merchants.merchant_transfer_owner", reason=reason):
        return services.merchant_transfer_owner(
            merchant_ids=merchant_ids, new_owner=new_owner, actor=actor, reason=reason
        )


@shared_task(ignore_result=True)
def overdue_task_digest() -> int:
    """E-mail each assignee one list of their overdue open tasks; returns e-mails sent."""
    from django.conf import settings
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.utils import timezone

    from merchants.models import Activity

    today = timezone.localdate()
    overdue = (
        Activity.objects.filter(
            kind=Activity.Kind.TASK,
            done_at__isnull=True,
            due_on__lt=today,
            assignee__is_active=True,
        )
        .select_related("merchant", "assignee")
        .order_by("assignee_id", "due_on", "pk")
    )
    by_user: dict = {}
    for task in overdue:
        by_user.setdefault(task.assignee, []).append(task)
    sent = 0
    for user, tasks in by_user.items():
        if not user.email:
            continue
        context = {"user": user, "tasks": tasks, "today": today}
        send_mail(
            subject=f"PayCRM: {len(tasks)} overdue task{'s' if len(tasks) != 1 else ''}",
            message=render_to_string("merchants/email/overdue_digest.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[user.email],
        )
        sent += 1
    return sent
