"""Onboarding API: permission-filtered, decisions with 409 for invalid moves."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from merchants import services as merchant_services
from onboarding import services
from onboarding.models import Application
from onboarding.standard import standard_steps
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _workflow(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    admin = UserFactory(username="ad1", roles=["admin"])
    definition = services.definition_create(
        actor=admin, key="standard", name="Standard", steps=standard_steps()
    )
    services.definition_publish(actor=admin, definition=definition)


def _ready_merchant(owner):
    merchant = MerchantFactory(owner=owner)
    reviewer = UserFactory(roles=["compliance"])
    for doc_type in ("business_registration", "owner_id"):
        document = merchant_services.document_upload(
            actor=owner, merchant=merchant, doc_type=doc_type,
            upload=SimpleUploadedFile(f"{doc_type}.pdf", b"%PDF-1.4\n%%EOF\n"),
        )  # fmt: skip
        merchant_services.document_review(actor=reviewer, document=document, status="accepted")
    return merchant


def test_sales_creates_and_submits_then_the_submitter_gets_409_deciding(
    api, sales1, django_capture_on_commit_callbacks
):
    merchant = _ready_merchant(sales1)
    client = api(sales1)
    created = client.post(
        "/api/v1/onboarding/applications/", {"merchant": merchant.pk}, format="json"
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        submitted = client.post(f"/api/v1/onboarding/applications/{pk}/submit/")
    assert submitted.json()["status"] == "in_review"
    assert submitted.json()["current_step"]["name"] == "Sales review"
    refused = client.post(
        f"/api/v1/onboarding/applications/{pk}/decisions/", {"kind": "approve"}, format="json"
    )
    assert refused.status_code == 409
    assert "submitted this application" in refused.json()["detail"]
    again = client.post(f"/api/v1/onboarding/applications/{pk}/submit/")
    assert again.status_code == 409
    detail = client.get(f"/api/v1/onboarding/applications/{pk}/").json()
    assert {c["kind"] for c in detail["compliance_checks"]} == {
        "sanctions", "documents", "high_risk", "shared_bank",
    }  # fmt: skip


def test_other_sales_users_cannot_see_or_open_applications(api, sales1, sales2):
    merchant = _ready_merchant(sales1)
    application = services.application_create(actor=sales1, merchant=merchant)
    client = api(sales2)
    assert client.get("/api/v1/onboarding/applications/").json()["count"] == 0
    assert client.get(f"/api/v1/onboarding/applications/{application.pk}/").status_code == 404
    response = client.post(
        "/api/v1/onboarding/applications/", {"merchant": merchant.pk}, format="json"
    )
    assert response.status_code == 404
    assert Application.objects.count() == 1


def test_decisions_move_the_application_and_wrong_group_is_403(api, sales1):
    merchant = _ready_merchant(sales1)
    application = services.application_create(actor=sales1, merchant=merchant)
    services.application_submit(actor=sales1, application=application)
    peer = UserFactory(roles=["sales"])
    onboarding = UserFactory(roles=["onboarding"])
    url = f"/api/v1/onboarding/applications/{application.pk}/decisions/"
    assert api(onboarding).post(url, {"kind": "approve"}, format="json").status_code == 403
    ok = api(peer).post(url, {"kind": "approve", "comment": "Met the owner"}, format="json")
    assert ok.status_code == 201
    assert ok.json()["decided_by"] == peer.username
    info = api(onboarding).post(
        url, {"kind": "request_info", "items": ["Lease agreement"]}, format="json"
    )
    assert info.status_code == 201
    application.refresh_from_db()
    assert application.status == "info_requested"
    missing_items = api(onboarding).post(url, {"kind": "reject"}, format="json")
    assert missing_items.status_code == 409  # not waiting for a decision now


def test_awaiting_me_filter_and_workflows_are_readable(api, sales1):
    merchant = _ready_merchant(sales1)
    application = services.application_create(actor=sales1, merchant=merchant)
    services.application_submit(actor=sales1, application=application)
    peer = UserFactory(roles=["sales"])
    onboarding = UserFactory(roles=["onboarding"])
    assert api(peer).get("/api/v1/onboarding/applications/?awaiting=me").json()["count"] == 1
    assert api(onboarding).get("/api/v1/onboarding/applications/?awaiting=me").json()["count"] == 0
    workflows = api(onboarding).get("/api/v1/onboarding/workflows/").json()
    steps = workflows["results"][0]["steps"]
    assert steps[3]["approvals_required"] == 2
    assert "risk_level = high" in steps[3]["condition_text"]
    assert api(UserFactory()).get("/api/v1/onboarding/workflows/").status_code == 403
