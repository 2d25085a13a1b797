from celery import shared_task
from django.core.management import call_command


@shared_task(ignore_result=True)
def clear_expired_sessions() -> None:
    # Idle sessions end after 15 minutes; this removes their rows.
    call_command("clearsessions")


@shared_task(ignore_result=True)
def audit_trail_seal() -> int:
    """Seal audit entries no sealer after a commit took: a writer that died
    between commit and seal, or one that ended while a long one still ran."""
    from core import trail

    return trail.seal()


@shared_task(ignore_result=True)
def audit_trail_checkpoint() -> str:
    """Check the seals since the last checkpoint and sign a new one."""
    from core import services

    return services.audit_checkpoint(reason="scheduled")
