"""Publish the standard onboarding workflow when none is published yet, and give
the demo a few applications in flight (when there are demo users and none exist)."""

from django.core.management.base import BaseCommand
from django.test.utils import override_settings

from core import audit
from core.models import User
from core.services import system_user
from merchants.models import Merchant
from onboarding import services
from onboarding.models import Application, WorkflowDefinition
from onboarding.standard import standard_steps

DEMO_USERS = ("sales1", "sales2", "onboarding1")


class Command(BaseCommand):
    help = "Create and publish the standard onboarding workflow if none is published."

    def handle(self, *args, **options) -> None:
        if WorkflowDefinition.objects.filter(key="standard", status="published").exists():
            self.stdout.write("Standard onboarding workflow already published.")
        else:
            self._publish()
        self._demo_applications()

    def _demo_applications(self, count: int = 12) -> None:
        """Applications for merchants in onboarding: submitted, some past the sales
        review, some waiting for information — so queues and charts have content."""
        users = {u.username: u for u in User.objects.filter(username__in=DEMO_USERS)}
        if len(users) < len(DEMO_USERS) or Application.objects.exists():
            return
        merchants = (
            Merchant.objects.filter(status=Merchant.Status.ONBOARDING)
            .select_related("owner")
            .order_by("pk")[:count]
        )
        made = 0
        # Demo notifications stay in the app; no console e-mails during `make run`.
        quiet = override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
        quiet.enable()
        for i, merchant in enumerate(merchants):
            owner = merchant.owner
            reviewer = users["sales2"] if owner.username == "sales1" else users["sales1"]
            with audit.acting_as(owner, origin="command seed_workflow", reason="demo application"):
                application = services.application_create(actor=owner, merchant=merchant)
                services.application_submit(actor=owner, application=application)
                if i % 3:
                    services.decision_record(
                        actor=reviewer, application=application, kind="approve",
                        comment="Known to the team",
                    )  # fmt: skip
                if i % 3 and i % 4 == 3:  # past the sales review
                    services.decision_record(
                        actor=users["onboarding1"], application=application,
                        kind="request_info", items=["Signed shop lease", "Latest bank statement"],
                    )  # fmt: skip
            made += 1
        quiet.disable()
        self.stdout.write(f"{made} demo applications in flight.")

    def _publish(self) -> None:
        actor = User.objects.filter(groups__name="admin", is_active=True).order_by("pk").first()
        actor = actor or system_user()
        with audit.acting_as(actor, origin="command seed_workflow", reason="standard workflow"):
            definition = services.definition_create(
                actor=actor, key="standard", name="Standard onboarding", steps=standard_steps()
            )
            services.definition_publish(actor=actor, definition=definition)
        self.stdout.write(self.style.SUCCESS(f"Published {definition}."))
