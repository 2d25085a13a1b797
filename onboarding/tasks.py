from celery import shared_task


@shared_task
def application_run_checks(*, application_id: int, actor_id: int) -> list[str]:
    """Run the compliance checks of a submitted application; returns their statuses."""
    from core import audit
    from core.models import User
    from onboarding import checks
    from onboarding.models import Application

    actor = User.objects.get(pk=actor_id)
    application = Application.objects.get(pk=application_id)
    with audit.acting_as(actor, origin="task onboarding.application_run_checks"):
        results = checks.application_run_checks(application=application, actor=actor)
    return [f"{c.kind}:{c.status}" for c in results]


@shared_task(ignore_result=True)
def sla_reminders() -> int:
    """Remind a step's group when its SLA has passed; escalate at twice the SLA."""
    from core.services import system_user
    from onboarding import services

    return services.sla_follow_up(actor=system_user())
