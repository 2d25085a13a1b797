"""Every write records who made it and from where: page, API, task, command."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from core.models import User
from merchants import tasks
from merchants.models import Merchant, MerchantUserObjectPermission
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db


def test_page_write_records_the_signed_in_user_and_web_origin(web, sales1):
    merchant = MerchantFactory(owner=sales1)
    response = web(sales1).post(
        reverse("merchants:edit", args=[merchant.pk]),
        {
            "legal_name": "Renamed Limited",
            "registration_number": merchant.registration_number,
            "country": "HK",
            "business_type": "private_company",
            "mcc": "5812",
            "expected_monthly_volume": "1000",
            "volume_currency": "HKD",
            "status": "lead",
            "risk_level": "medium",
        },
        REMOTE_ADDR="192.0.2.10",
    )
    assert response.status_code == 302
    latest = merchant.history.first()
    assert latest.legal_name == "Renamed Limited"
    assert latest.history_user == sales1
    assert latest.history_origin == "web 192.0.2.10"


def test_api_write_records_the_user_and_api_origin(api, sales1):
    response = api(sales1).post(
        "/api/v1/merchants/",
        {
            "legal_name": "Api Made Limited",
            "registration_number": "77777777",
            "country": "HK",
            "business_type": "private_company",
            "mcc": "5411",
        },
        format="json",
        REMOTE_ADDR="192.0.2.11",
    )
    assert response.status_code == 201, response.json()
    merchant = Merchant.objects.get(pk=response.json()["id"])
    created = merchant.history.get(history_type="+")
    assert created.history_user == sales1
    assert created.history_origin == "api 192.0.2.11"
    grants = MerchantUserObjectPermission.history.filter(content_object=merchant)
    assert grants.count() == 2
    assert {g.history_user for g in grants} == {sales1}


def test_task_outside_a_request_records_its_actor(admin1, sales1, sales2):
    # given: a task run by the worker has no request around it
    merchant = MerchantFactory(owner=sales1)
    # when: run in this process (apply), whatever broker is configured
    moved = tasks.merchant_transfer_owner.apply(
        kwargs={
            "merchant_ids": [merchant.pk],
            "new_owner_id": sales2.pk,
            "actor_id": admin1.pk,
            "reason": "handover",
        }
    ).get()
    # then
    assert moved == 1
    latest = merchant.history.first()
    assert latest.owner_id == sales2.pk
    assert latest.history_user == admin1
    assert latest.history_origin == "task merchants.merchant_transfer_owner"
    assert latest.history_change_reason == "handover"


def test_management_command_records_the_system_actor():
    Group.objects.get_or_create(name="sales")
    call_command("seed_demo", merchants=4, stdout=open("/dev/null", "w"))  # noqa: SIM115
    system = User.objects.get(username="system")
    rows = Merchant.history.all()
    assert rows.count() >= 4
    assert {r.history_origin for r in rows} == {"command seed_demo"}
    assert all(r.history_user is not None for r in rows)
    assert User.history.filter(username="sales1").first().history_user == system


def test_seed_demo_runs_twice_without_duplicating():
    call_command("seed_demo", merchants=4, stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("seed_demo", merchants=4, stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Merchant.objects.count() == 4
    assert User.objects.filter(username__in=["sales1", "sales2", "finance2"]).count() == 3


def test_group_membership_changes_are_on_record(admin1):
    user = UserFactory()
    finance = Group.objects.get(name="finance")
    from core import audit

    with audit.acting_as(admin1, origin="test"):
        user.groups.add(finance)
    latest = user.history.first()
    assert finance.pk in [g.group_id for g in latest.groups.all()]
    assert latest.history_user == admin1
