"""Settlement API: runs with their actions, statements, adjustments; agreements."""

import json
from decimal import Decimal

import pytest

from settlements.models import RevenueShareAgreement, SettlementRun
from tests.factories.core import UserFactory
from tests.factories.merchants import PartnerFactory
from tests.settlements.runs_setup import build_world

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/settlements/runs/"


@pytest.fixture
def world(finance1):
    return build_world(actor=finance1)


def create_run(client, **overrides):
    body = {"period_start": "2026-10-01", "period_end": "2026-10-31", "currency": "HKD"}
    return client.post(RUNS, {**body, **overrides}, format="json")


def test_finance_runs_the_whole_cycle_through_the_api(
    api, world, finance1, finance2, django_capture_on_commit_callbacks
):
    # given
    prep, checker = api(finance1), api(finance2)
    created = create_run(prep)
    assert created.status_code == 201, created.json()
    run_id = created.json()["id"]
    # when
    with django_capture_on_commit_callbacks(execute=True):
        queued = prep.post(f"{RUNS}{run_id}/calculate/")
    assert queued.status_code == 202
    calculated = prep.get(f"{RUNS}{run_id}/").json()
    assert calculated["status"] == "calculated"
    assert calculated["total_basis"] == "3050.0000"
    statements = prep.get(f"{RUNS}{run_id}/statements/").json()
    payable = {s["partner_name"]: s["payable"] for s in statements["results"]}
    assert payable == {"Master Agent": "1000.0000", "Sub Agent": "220.0000"}
    assert prep.post(f"{RUNS}{run_id}/submit/").json()["status"] == "submitted"
    approved = checker.post(f"{RUNS}{run_id}/approve/", {"comment": "ok"}, format="json")
    # then
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "approved"
    assert [a["approver"] for a in approved.json()["approvals"]] == ["finance2"]


def test_invalid_transitions_answer_409_with_the_reason(api, world, finance1):
    client = api(finance1)
    run_id = create_run(client).json()["id"]
    response = client.post(f"{RUNS}{run_id}/submit/")
    assert response.status_code == 409
    assert "calculated" in response.json()["detail"]
    response = client.post(f"{RUNS}{run_id}/approve/", {}, format="json")
    assert response.status_code == 409


def test_preparer_cannot_approve_through_the_api(
    api, world, finance1, django_capture_on_commit_callbacks
):
    client = api(finance1)
    run_id = create_run(client).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{RUNS}{run_id}/calculate/")
    client.post(f"{RUNS}{run_id}/submit/")
    response = client.post(f"{RUNS}{run_id}/approve/", {}, format="json")
    assert response.status_code == 400
    assert "prepared" in response.json()["non_field_errors"][0]
    assert SettlementRun.objects.get(pk=run_id).status == "submitted"


def test_approved_run_cannot_change_through_the_api(
    api, world, finance1, finance2, django_capture_on_commit_callbacks
):
    client = api(finance1)
    run_id = create_run(client).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{RUNS}{run_id}/calculate/")
    client.post(f"{RUNS}{run_id}/submit/")
    api(finance2).post(f"{RUNS}{run_id}/approve/", {}, format="json")
    body = {"partner": world.sub.pk, "amount": "10.00", "reason": "late bonus"}
    assert client.post(f"{RUNS}{run_id}/adjustments/", body, format="json").status_code == 409
    assert client.post(f"{RUNS}{run_id}/calculate/").status_code == 409
    assert client.post(f"{RUNS}{run_id}/reject/", {"reason": "x"}, format="json").status_code == 409
    # No write method exists on a run.
    assert client.patch(f"{RUNS}{run_id}/", {"currency": "USD"}, format="json").status_code == 405
    assert client.delete(f"{RUNS}{run_id}/").status_code == 405


def test_adjustment_amount_with_too_many_decimals_is_refused(
    api, world, finance1, django_capture_on_commit_callbacks
):
    client = api(finance1)
    run_id = create_run(client).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{RUNS}{run_id}/calculate/")
    body = {"partner": world.sub.pk, "amount": "10.005", "reason": "bonus"}
    response = client.post(f"{RUNS}{run_id}/adjustments/", body, format="json")
    assert response.status_code == 400
    assert "amount" in response.json()
    body["amount"] = "10.50"
    response = client.post(f"{RUNS}{run_id}/adjustments/", body, format="json")
    assert response.status_code == 201
    assert client.get(f"{RUNS}{run_id}/").json()["total_adjustments"] == "10.5000"


def test_create_refuses_bad_input_naming_the_field(api, finance1):
    client = api(finance1)
    response = create_run(client, currency="XYZ")
    assert response.status_code == 400
    assert "currency" in response.json()
    response = create_run(client, period_end="2026-09-01")
    assert response.status_code == 400
    assert "non_field_errors" in response.json() or "period_end" in response.json()


def test_other_roles_cannot_see_or_act_on_runs(api, world, finance1, sales1, compliance1):
    run_id = create_run(api(finance1)).json()["id"]
    sales = api(sales1)
    assert sales.get(RUNS).json()["results"] == []
    assert sales.get(f"{RUNS}{run_id}/").status_code == 404
    assert sales.post(f"{RUNS}{run_id}/calculate/").status_code == 404
    assert create_run(sales, period_start="2026-09-01", period_end="2026-09-30").status_code == 403
    # Compliance reads runs but cannot act on them.
    compliance = api(compliance1)
    assert compliance.get(f"{RUNS}{run_id}/").status_code == 200
    assert compliance.post(f"{RUNS}{run_id}/calculate/").status_code == 403


def test_partner_agreements_list_and_create(api, world, finance1, sales1):
    client = api(finance1)
    url = f"/api/v1/partners/{world.sub.pk}/agreements/"
    listed = client.get(url).json()
    assert [a["basis"] for a in listed] == ["fee"]
    assert listed[0]["tiers"] == [{"from_volume": "0.0000", "rate_bps": "2000.0000"}]
    # an overlapping agreement is refused with the field named
    body = {
        "basis": "fee", "tier_mode": "whole", "currency": "HKD", "valid_from": "2026-06-01",
        "tiers": [{"from_volume": "0", "rate_bps": "2500"}],
    }  # fmt: skip
    response = client.post(url, body, format="json")
    assert response.status_code == 400
    assert "valid_from" in response.json()
    # a partner elsewhere in the tree gets one
    other = PartnerFactory(name="Independent")
    response = client.post(f"/api/v1/partners/{other.pk}/agreements/", body, format="json")
    assert response.status_code == 201, response.json()
    assert RevenueShareAgreement.objects.filter(partner=other).count() == 1
    # a basis that differs from the path is refused
    child = PartnerFactory(name="Child", parent=other)
    response = client.post(
        f"/api/v1/partners/{child.pk}/agreements/", {**body, "basis": "volume"}, format="json"
    )
    assert response.status_code == 400
    assert "basis" in response.json()
    # sales see partners but not agreements
    assert api(sales1).get(url).status_code == 404


def test_run_api_is_in_the_schema(api, finance1):
    schema = api(finance1).get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    for action in ("calculate", "submit", "approve", "reject", "export", "statements"):
        assert f"/api/v1/settlements/runs/{{id}}/{action}/" in paths
    assert "/api/v1/partners/{partner_pk}/agreements/" in paths


def test_a_user_without_a_second_factor_is_refused(client, finance1):
    client.force_login(UserFactory(username="nofactor", roles=["finance"]))
    assert client.get(RUNS).status_code == 403


def test_amounts_leave_as_strings(api, world, finance1):
    run = create_run(api(finance1)).json()
    assert isinstance(run["total_payable"], str)
    assert Decimal(run["total_payable"]) == 0


def test_head_never_reaches_a_write_handler(
    api, world, finance1, django_capture_on_commit_callbacks
):
    """Issue 12 finding 3: HEAD with a JSON body created an adjustment (201)."""
    from settlements.models import Adjustment

    client = api(finance1)
    run_id = create_run(client).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{RUNS}{run_id}/calculate/")
    body = {"partner": world.sub.pk, "amount": "10.50", "reason": "bonus"}
    response = client.generic(
        "HEAD", f"{RUNS}{run_id}/adjustments/", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200
    assert not Adjustment.objects.exists()


def test_no_api_operation_serves_a_read_and_a_write_with_one_handler():
    """The class of finding 3: a handler that branches on request.method lets
    HEAD (mapped to the GET handler) fall into the write branch."""
    from config import api_urls

    shared = []
    for pattern in api_urls.urlpatterns:
        actions = getattr(pattern.callback, "actions", None) or {}
        read = actions.get("get")
        for method in ("post", "put", "patch", "delete"):
            if read and actions.get(method) == read:
                shared.append(f"{pattern.pattern} {method.upper()} → {read}")
    assert shared == []
