from celery import shared_task
from django.core.management import call_command


@shared_task(ignore_result=True)
def clear_expired_sessions() -> None:
    # Idle sessions end after 15 minutes; this removes their rows.
    call_command("clearsessions")


@shared_task(ignore_result=True)
def audit_trail_seal() -> int:
    """Seal audit entries a writer left unsealed (it died between commit and seal)."""
    from core import trail

    return trail.seal()
