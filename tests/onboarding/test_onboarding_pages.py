"""Onboarding pages: start, submit, decide, information request round trip, queue."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

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


def test_sales_starts_and_submits_deciders_work_the_queue(
    web, sales1, django_capture_on_commit_callbacks
):
    merchant = MerchantFactory(owner=sales1)
    reviewer = UserFactory(roles=["compliance"])
    for doc_type in ("business_registration", "owner_id"):
        document = merchant_services.document_upload(
            actor=sales1, merchant=merchant, doc_type=doc_type,
            upload=SimpleUploadedFile(f"{doc_type}.pdf", b"%PDF-1.4\n%%EOF\n"),
        )  # fmt: skip
        merchant_services.document_review(actor=reviewer, document=document, status="accepted")
    client = web(sales1)
    response = client.post(reverse("onboarding:start", args=[merchant.pk]))
    application = Application.objects.get()
    assert response["Location"] == reverse("onboarding:application", args=[application.pk])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("onboarding:action", args=[application.pk, "submit"]))
    page = client.get(reverse("onboarding:application", args=[application.pk])).content.decode()
    assert "Sales review" in page
    assert 'data-testid="record-decision"' not in page  # the submitter may not decide

    peer = UserFactory(roles=["sales"])
    queue = web(peer).get(reverse("onboarding:queue")).content.decode()
    assert merchant.legal_name in queue
    web(peer).post(reverse("onboarding:decide", args=[application.pk]), {"kind": "approve"})
    onboarding = UserFactory(roles=["onboarding"])
    web(onboarding).post(
        reverse("onboarding:decide", args=[application.pk]),
        {"kind": "request_info", "items": "Lease agreement\nShop photo"},
    )
    application.refresh_from_db()
    assert application.status == "info_requested"
    page = client.get(reverse("onboarding:application", args=[application.pk])).content.decode()
    assert "Lease agreement" in page
    client.post(reverse("onboarding:action", args=[application.pk, "resubmit"]))
    application.refresh_from_db()
    assert (application.status, application.current_step.name) == ("in_review", "Document check")
    merchant_page = client.get(merchant.get_absolute_url()).content.decode()
    assert f"Onboarding #{application.pk}" in merchant_page


def test_other_sales_cannot_open_a_draft_application(web, sales1, sales2):
    merchant = MerchantFactory(owner=sales1)
    application = services.application_create(actor=sales1, merchant=merchant)
    url = reverse("onboarding:application", args=[application.pk])
    assert web(sales2).get(url).status_code == 404
    assert web(sales2).post(reverse("onboarding:start", args=[merchant.pk])).status_code == 404


def test_round_trip_shows_on_the_merchant_page_and_timeline_and_queue_views(web, sales1):
    merchant = MerchantFactory(owner=sales1)
    application = services.application_create(actor=sales1, merchant=merchant)
    services.application_submit(actor=sales1, application=application)
    peer = UserFactory(roles=["sales"])
    client = web(peer)
    client.post(reverse("onboarding:action", args=[application.pk, "claim"]))
    mine = client.get(reverse("onboarding:queue"), {"view": "mine"}).content.decode()
    assert merchant.legal_name in mine
    other = UserFactory(roles=["sales"])
    assert (
        merchant.legal_name
        not in web(other).get(reverse("onboarding:queue"), {"view": "mine"}).content.decode()
    )
    assert (
        merchant.legal_name
        not in client.get(reverse("onboarding:queue"), {"view": "overdue"}).content.decode()
    )

    services.decision_record(
        actor=peer, application=application, kind="request_info", items=["VAT certificate"]
    )
    page = web(sales1).get(merchant.get_absolute_url()).content.decode()
    checklist = page[page.index('data-testid="info-checklist"') :]
    assert "VAT certificate" in checklist[:600]
    services.application_resubmit(actor=sales1, application=application)
    timeline = web(sales1).get(merchant.get_absolute_url()).content.decode()
    timeline = timeline[timeline.index('data-testid="timeline"') :]
    assert "information requested at Sales review" in timeline
    assert "application resubmitted" in timeline
    application.refresh_from_db()
    assert application.assignee is None  # a new visit of the step starts unassigned
