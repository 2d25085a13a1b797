"""Celery entry points for settlements: ids in, services do the work."""

from celery import shared_task

from core import audit


@shared_task(acks_late=True)
def settlement_run_calculate(*, run_id: int, actor_id: int) -> str:
    """Calculate a run. Safe to deliver twice: a run no longer calculating is left alone."""
    from core.models import User
    from settlements.services import runs

    actor = User.objects.get(pk=actor_id)
    with audit.acting_as(actor, origin="task settlements.settlement_run_calculate"):
        run = runs.settlement_run_compute(run_id=run_id, actor=actor)
    return run.status
