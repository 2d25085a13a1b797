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
