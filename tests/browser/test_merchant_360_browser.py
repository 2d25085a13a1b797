"""Sales works a merchant in the browser: contact, call, document, timeline."""

import os
import re

import pytest

from tests.browser.session import sign_in_on
from tests.conftest import restore_roles
from tests.factories.merchants import MerchantFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_sales_user_adds_contact_logs_call_uploads_document_and_sees_the_timeline(
    page, sales1, tmp_path
):
    merchant = MerchantFactory(owner=sales1, legal_name="Jade Dumpling House Limited")
    sign_in_on(page, sales1, "/merchants/")

    page.get_by_role("link", name="Jade Dumpling House Limited").click()
    page.wait_for_url(re.compile(rf"/merchants/{merchant.pk}/$"))

    # a contact
    page.get_by_test_id("tab-contacts").click()
    page.get_by_test_id("add-contact").click()
    form = page.locator("#tab-contacts form")
    form.get_by_label("Name").fill("Ada Wong")
    form.get_by_label("Job title").fill("Finance Director")
    form.get_by_label("E-mail").fill("ada@jade-dumplings.example")
    form.get_by_role("button", name="Add contact").click()
    page.wait_for_url(re.compile(r"\?tab=contacts$"))
    assert "Ada Wong" in page.get_by_test_id("contacts-table").inner_text()

    # a call
    page.get_by_test_id("tab-timeline").click()
    page.get_by_test_id("add-activity").click()
    form = page.locator("#tab-timeline form")
    form.get_by_label("Kind").select_option("call")
    form.get_by_label("Subject").fill("Intro call with Ada")
    form.get_by_label("Details").fill("Wants FPS and Octopus at the counter.")
    form.get_by_role("button", name="Log").click()
    page.wait_for_url(re.compile(r"\?tab=timeline$"))

    # a document
    pdf = tmp_path / "business-registration.pdf"
    pdf.write_bytes(PDF)
    page.get_by_test_id("tab-documents").click()
    page.get_by_test_id("add-document").click()
    form = page.locator("#tab-documents form").last
    form.get_by_label("Type").select_option("business_registration")
    form.get_by_label("File").set_input_files(str(pdf))
    form.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r"\?tab=documents$"))
    assert "business-registration.pdf" in page.get_by_test_id("documents-table").inner_text()

    # everything on one timeline, newest first
    page.get_by_test_id("tab-timeline").click()
    timeline = page.get_by_test_id("timeline").inner_text()
    assert "Document uploaded: business-registration.pdf" in timeline
    assert "Intro call with Ada" in timeline
    assert "Contact added: Ada Wong" in timeline
    assert (
        timeline.index("Document uploaded")
        < timeline.index("Intro call")
        < timeline.index("Contact added")
    )


def test_compliance_suspends_a_merchant_with_a_reason_and_sees_it_on_the_page(
    page, sales1, compliance1
):
    from merchants import services

    restore_roles()  # an earlier transactional test's flush removed the role grants
    merchant = MerchantFactory(owner=sales1, legal_name="Coral Travel Limited", status="onboarding")
    services.merchant_activate(merchant=merchant, actor=compliance1, reason="approved")
    sign_in_on(page, compliance1, f"/merchants/{merchant.pk}/")

    # without a reason: refused, the reason field says why
    page.get_by_test_id("status-change").locator("summary").click()
    page.get_by_label("New status").select_option("suspended")
    page.get_by_test_id("status-submit").click()
    page.get_by_text("Say why the merchant's status changes.").wait_for()
    # with one: suspended, and the page says so
    page.get_by_test_id("status-change").get_by_label("Reason").fill("Chargeback ratio over 1.5%")
    page.get_by_test_id("status-submit").click()
    page.get_by_text("Status changed.").wait_for()
    merchant.refresh_from_db()
    assert merchant.status == "suspended"
    # the risk level, beside it
    page.get_by_test_id("risk-change").locator("summary").click()
    page.get_by_label("Risk level", exact=True).select_option("high")
    page.get_by_test_id("risk-change").get_by_label("Reason").fill("Chargebacks")
    page.get_by_test_id("risk-submit").click()
    page.get_by_text("Risk level set.").wait_for()
    merchant.refresh_from_db()
    assert merchant.risk_level == "high"
    if shots := os.environ.get("PAYCRM_SCREENSHOTS"):  # to look at the page by hand
        page.get_by_test_id("status-change").locator("summary").click()
        page.screenshot(path=f"{shots}/merchant-status.png", full_page=False)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=f"{shots}/merchant-status-390.png", full_page=False)
