"""One application from draft to approved across four people, with an information
request round trip: sales1 submits, sales2 does the sales review, onboarding1 checks
documents and asks for more, sales1 resubmits, compliance1 does KYB, onboarding1
approves the contract."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from merchants import services as merchant_services
from onboarding import services
from onboarding.standard import standard_steps
from tests.browser.session import sign_in
from tests.conftest import restore_roles
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _decide(page, url, kind, items=""):
    page.goto(url)
    page.locator("#id_kind").select_option(kind)
    if items:
        page.locator("#id_items").fill(items)
    page.get_by_test_id("record-decision").click()
    page.wait_for_url(re.compile(r"/onboarding/applications/\d+/$"))


def test_application_walks_from_draft_to_approved(browser, live_server):
    restore_roles()
    admin = UserFactory(username="admin1", roles=["admin"])
    sales1 = UserFactory(username="sales1", roles=["sales"])
    UserFactory(username="sales2", roles=["sales"])
    UserFactory(username="onboarding1", roles=["onboarding"])
    UserFactory(username="compliance1", roles=["compliance"])
    definition = services.definition_create(
        actor=admin, key="standard", name="Standard", steps=standard_steps()
    )
    services.definition_publish(actor=admin, definition=definition)
    merchant = MerchantFactory(owner=sales1, legal_name="Jade Dumpling House Limited")
    for doc_type in ("business_registration", "owner_id"):
        merchant_services.document_upload(
            actor=sales1, merchant=merchant, doc_type=doc_type,
            upload=SimpleUploadedFile(f"{doc_type}.pdf", b"%PDF-1.4\n%%EOF\n"),
        )  # fmt: skip

    # sales1 opens and submits the application
    sales = sign_in(browser, live_server, "sales1")
    sales.goto(merchant.get_absolute_url())
    sales.get_by_test_id("start-onboarding").click()
    sales.get_by_test_id("submit-application").click()
    sales.wait_for_url(re.compile(r"/onboarding/applications/\d+/$"))
    url = sales.url
    assert "Sales review" in sales.get_by_test_id("current-step").inner_text()

    # sales2 (not the submitter) does the sales review from the queue
    peer = sign_in(browser, live_server, "sales2")
    peer.goto("/onboarding/")
    peer.get_by_test_id("queue-table").get_by_role("link").first.click()
    _decide(peer, url, "approve")

    # onboarding1 accepts the documents, then asks for more
    onboarding = sign_in(browser, live_server, "onboarding1")
    onboarding.goto(f"{merchant.get_absolute_url()}?tab=documents")
    for _ in range(2):
        onboarding.get_by_role("button", name="Accept").first.click()
        onboarding.wait_for_url(re.compile(r"\?tab=documents$"))
    _decide(onboarding, url, "request_info", items="Signed shop lease")

    # sales1 sees the checklist and resubmits
    sales.goto(url)
    assert "Signed shop lease" in sales.get_by_test_id("requested-items").first.inner_text()
    sales.get_by_test_id("resubmit-application").click()
    sales.wait_for_url(re.compile(r"/onboarding/applications/\d+/$"))
    assert "Document check" in sales.get_by_test_id("current-step").inner_text()

    _decide(onboarding, url, "approve")
    compliance = sign_in(browser, live_server, "compliance1")
    _decide(compliance, url, "approve")
    _decide(onboarding, url, "approve")

    assert onboarding.get_by_test_id("application-status").inner_text() == "Approved"
    sales.goto(merchant.get_absolute_url())
    assert sales.get_by_test_id("mid").inner_text() == f"MHK{merchant.pk:08d}"
    for page in (sales, peer, onboarding, compliance):
        page.context.close()
