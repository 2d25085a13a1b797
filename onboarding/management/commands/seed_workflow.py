"""Publish the standard onboarding workflow when none is published yet."""

from django.core.management.base import BaseCommand

from core import audit
from core.models import User
from core.services import system_user
from onboarding import services
from onboarding.models import WorkflowDefinition
from onboarding.standard import standard_steps


class Command(BaseCommand):
    help = "Create and publish the standard onboarding workflow if none is published."

    def handle(self, *args, **options) -> None:
        if WorkflowDefinition.objects.filter(key="standard", status="published").exists():
            self.stdout.write("Standard onboarding workflow already published.")
            return
        actor = User.objects.filter(groups__name="admin", is_active=True).order_by("pk").first()
        actor = actor or system_user()
        with audit.acting_as(actor, origin="command seed_workflow", reason="standard workflow"):
            definition = services.definition_create(
                actor=actor, key="standard", name="Standard onboarding", steps=standard_steps()
            )
            services.definition_publish(actor=actor, definition=definition)
        self.stdout.write(self.style.SUCCESS(f"Published {definition}."))
