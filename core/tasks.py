from celery import shared_task
from django.core.management import call_command


@shared_task(ignore_result=True)
def clear_expired_sessions() -> None:
    # Idle sessions end after 15 minutes; this removes their rows.
    call_command("clearsessions")
