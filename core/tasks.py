from celery import shared_task
from django.core.management import call_command


@shared_task(ignore_result=True)
def clear_expired_sessions() -> None:
    # Idle sessions end after 15 minutes; this removes their rows.
    call_command("clearsessions")


@shared_task(ignore_result=True)
def audit_trail_seal() -> int:
    """Seal audit entries the quick seal after each commit left: a writer that
    died between commit and seal, or one whose transaction outlasted the
    quick seal's window."""
    from core import trail

    return trail.seal(full=True)
