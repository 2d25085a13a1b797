"""Notifications: step waiting, information requested, outcome, SLA reminders."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from core.models import Notification
from onboarding import services, tasks
from onboarding.standard import standard_steps
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(db):
    admin = UserFactory(username="ad1", roles=["admin"], email="ad1@paycrm.test")
    definition = services.definition_create(
        actor=admin, key="standard", name="Standard", steps=standard_steps()
    )
    services.definition_publish(actor=admin, definition=definition)
    return admin


def test_the_deciding_group_is_told_and_sales_hears_of_information_requests(
    admin, sales1, web, django_capture_on_commit_callbacks
):
    peer = UserFactory(roles=["sales"], email="peer@paycrm.test")
    sales1.email = "s1@paycrm.test"
    sales1.save()
    application = services.application_create(actor=sales1, merchant=MerchantFactory(owner=sales1))
    with django_capture_on_commit_callbacks(execute=True):
        services.application_submit(actor=sales1, application=application)
    waiting = Notification.objects.get(user=peer)
    assert "Sales review" in waiting.title
    assert not Notification.objects.filter(user=sales1).exists()  # the submitter decides nothing
    assert any(m.to == ["peer@paycrm.test"] for m in mail.outbox)

    with django_capture_on_commit_callbacks(execute=True):
        services.decision_record(
            actor=peer, application=application, kind="request_info", items=["Shop lease"]
        )
    told = Notification.objects.get(user=sales1)
    assert "Information requested" in told.title
    assert "Shop lease" in told.body
    page = web(sales1).get(reverse("core:notifications")).content.decode()
    assert "Information requested" in page
    assert 'data-testid="unread-count">1<' in page
    web(sales1).post(reverse("core:notifications"))
    assert not Notification.objects.filter(user=sales1, read_at__isnull=True).exists()


def test_sla_reminder_then_escalation_once_each(admin, sales1):
    peer = UserFactory(roles=["sales"])
    application = services.application_create(actor=sales1, merchant=MerchantFactory(owner=sales1))
    services.application_submit(actor=sales1, application=application)
    Notification.objects.all().delete()
    start = timezone.now()
    with time_machine.travel(start + timedelta(hours=10)):
        assert tasks.sla_reminders.apply().get() == 0
    with time_machine.travel(start + timedelta(hours=25)):
        assert tasks.sla_reminders.apply().get() == 1
        assert tasks.sla_reminders.apply().get() == 0  # not twice
    assert "Overdue" in Notification.objects.get(user=peer).title
    with time_machine.travel(start + timedelta(hours=49)):
        assert tasks.sla_reminders.apply().get() == 1
    assert "Escalation" in Notification.objects.get(user=admin).title
    application.refresh_from_db()
    assert application.sla_reminded_round == 2
    assert application.history.first().history_origin == "task onboarding.sla_reminders"
