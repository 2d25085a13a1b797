"""compliance1 reviews one merchant's audit trail: opens it from the navigation,
filters to the merchant (other merchants have entries too), reads an update's
before/after, goes back and exports the filtered trail as CSV."""

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.models import AuditEntry
from merchants import services as merchant_services
from tests.browser.session import sign_in
from tests.conftest import restore_roles
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module", autouse=True)
def _roles_left_in_place(django_db_blocker):
    """Put the role groups back once this module's flushes are done: a later
    transactional test that does not call ``restore_roles`` itself expects
    them as the migrations left them."""
    yield
    with django_db_blocker.unblock():
        restore_roles()


def test_compliance_filters_a_merchants_trail_reads_a_diff_and_exports_it(browser, live_server):
    # given: two merchants with history of their own, written through the services
    restore_roles()
    UserFactory(username="compliance1", roles=["compliance"])
    sales1 = UserFactory(username="sales1", roles=["sales"])
    sales2 = UserFactory(username="sales2", roles=["sales"])
    lotus = MerchantFactory(owner=sales1, trading_name="Lotus Tea")
    merchant_services.merchant_update(
        merchant=lotus, actor=sales1, trading_name="Lotus Teahouse", reason="rebrand"
    )
    merchant_services.contact_create(actor=sales1, merchant=lotus, name="Ada Wong", title="CFO")
    harbour = MerchantFactory(owner=sales2, trading_name="Silver Harbour")
    merchant_services.merchant_update(
        merchant=harbour, actor=sales2, trading_name="Harbour Pay", reason="renamed"
    )
    lotus_ids = set(AuditEntry.objects.filter(merchant_id=lotus.pk).values_list("id", flat=True))
    update = AuditEntry.objects.get(merchant_id=lotus.pk, action=AuditEntry.Action.UPDATE)
    assert len(lotus_ids) >= 4
    assert AuditEntry.objects.filter(merchant_id=harbour.pk).exists()

    # compliance1 opens the trail from the navigation: both merchants are on it
    page = sign_in(browser, live_server, "compliance1", width=1400)
    page.locator("nav").get_by_role("link", name="Audit trail").click()
    page.wait_for_url(re.compile(r"/audit/$"))
    table = page.get_by_test_id("audit-table")
    expect(table).to_contain_text("Harbour Pay")
    expect(table).to_contain_text("Lotus Teahouse")
    expect(page.get_by_test_id("verification-panel")).to_contain_text("Signing key fingerprint")

    # filters to Lotus: only its entries remain (the merchant, its grants, its contact)
    page.get_by_label("Merchant id").fill(str(lotus.pk))
    page.get_by_test_id("apply-filters").click()
    page.wait_for_url(re.compile(rf"merchant={lotus.pk}"))
    rows = page.get_by_test_id("audit-row")
    expect(rows).to_have_count(len(lotus_ids))
    shown = {int(row.get_attribute("data-entry")) for row in rows.all()}
    assert shown == lotus_ids
    assert {row.get_attribute("data-merchant") for row in rows.all()} == {str(lotus.pk)}
    expect(table).not_to_contain_text("Harbour")
    expect(table).to_contain_text("Ada Wong")

    # opens the update and reads what changed
    page.locator(f'[data-testid=audit-row][data-entry="{update.pk}"]').get_by_test_id(
        "audit-entry-link"
    ).click()
    page.wait_for_url(re.compile(rf"/audit/entries/{update.pk}/$"))
    diff = page.get_by_test_id("audit-diff-row")
    expect(diff).to_have_count(1)
    expect(diff).to_contain_text("trading_name")
    expect(diff.get_by_test_id("audit-before")).to_have_text("Lotus Tea")
    expect(diff.get_by_test_id("audit-after")).to_have_text("Lotus Teahouse")
    expect(page.get_by_test_id("audit-reason")).to_have_text("rebrand")

    # goes back to the filtered list and exports it
    page.go_back()
    page.wait_for_url(re.compile(rf"merchant={lotus.pk}"))
    expect(page.get_by_test_id("audit-row")).to_have_count(len(lotus_ids))
    with page.expect_download() as download_info:
        page.get_by_test_id("export-csv").click()
    download = download_info.value
    assert re.fullmatch(r"audit-trail-\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename)
    content = Path(download.path()).read_text(encoding="utf-8-sig")
    exported = list(csv.DictReader(io.StringIO(content)))
    assert {int(r["id"]) for r in exported} == lotus_ids
    assert {r["merchant_id"] for r in exported} == {str(lotus.pk)}
    assert "Lotus Teahouse" in content
    assert "Harbour" not in content

    # and the export itself is on the trail
    export = AuditEntry.objects.get(action=AuditEntry.Action.EXPORT)
    assert export.actor_label == "compliance1"
    assert export.changes["entries"] == [None, len(lotus_ids)]
    page.context.close()


def test_merchant_page_loads_its_audit_tab_when_shown(browser, live_server):
    # given: a merchant with a contact, and another merchant
    restore_roles()
    UserFactory(username="compliance1", roles=["compliance"])
    sales1 = UserFactory(username="sales1", roles=["sales"])
    lotus = MerchantFactory(owner=sales1, trading_name="Lotus Tea")
    merchant_services.contact_create(actor=sales1, merchant=lotus, name="Ada Wong", title="CFO")
    MerchantFactory(owner=sales1, trading_name="Silver Harbour")
    page = sign_in(browser, live_server, "compliance1", width=1400)
    page.goto(lotus.get_absolute_url())
    assert page.get_by_test_id("merchant-audit-table").count() == 0  # not fetched yet

    # when: compliance1 opens the Audit tab
    page.get_by_test_id("tab-audit").click()

    # then: the merchant's latest entries arrive, its contact's among them
    tab = page.get_by_test_id("merchant-audit-table")
    expect(tab).to_contain_text("Ada Wong")
    expect(tab).not_to_contain_text("Silver Harbour")
    page.get_by_test_id("full-audit-trail").click()
    page.wait_for_url(re.compile(rf"/audit/\?merchant={lotus.pk}$"))
    expect(page.get_by_test_id("audit-row")).to_have_count(
        AuditEntry.objects.filter(merchant_id=lotus.pk).count()
    )
    page.context.close()


def test_compliance_sees_the_checkpoint_and_an_entrys_seal_and_proof(browser, live_server):
    # given: activity, then a verification that seals it and writes a checkpoint
    from core import services as core_services
    from core import trail

    restore_roles()
    UserFactory(username="compliance1", roles=["compliance"])
    sales1 = UserFactory(username="sales1", roles=["sales"])
    lotus = MerchantFactory(owner=sales1, trading_name="Lotus Tea")
    merchant_services.merchant_update(
        merchant=lotus, actor=sales1, trading_name="Lotus Teahouse", reason="rebrand"
    )
    update = AuditEntry.objects.get(merchant_id=lotus.pk, action=AuditEntry.Action.UPDATE)
    result = core_services.audit_verify()
    assert result.intact, result.problems
    seal = trail.seal_of(update)
    assert seal is not None

    # the panel names the last checkpoint and where checkpoints live
    page = sign_in(browser, live_server, "compliance1", width=1400)
    page.goto("/audit/")
    expect(page.get_by_test_id("verification-result")).to_have_text("Chain intact")
    expect(page.get_by_test_id("checkpoint")).to_contain_text(f"seal {result.head_seal}")
    expect(page.get_by_test_id("checkpoint-location")).to_contain_text("FileSystemStorage")
    page.screenshot(path=str(Path(_shots()) / "audit-list.png"), full_page=True)

    # the entry shows its MAC, the seal that chains it and the history row it proves
    page.goto(f"/audit/entries/{update.pk}/")
    expect(page.get_by_test_id("audit-mac")).to_have_text(update.mac)
    expect(page.get_by_test_id("audit-seal")).to_contain_text(str(seal.seq))
    expect(page.get_by_test_id("audit-rows")).to_contain_text("merchants.historicalmerchant")
    page.screenshot(path=str(Path(_shots()) / "audit-entry.png"), full_page=True)

    # and reads at phone width without sideways scrolling
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/audit/entries/{update.pk}/")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.screenshot(path=str(Path(_shots()) / "audit-entry-390.png"), full_page=True)


def _shots() -> str:
    import os
    import tempfile

    where = os.environ.get("PAYCRM_SCREENSHOTS") or tempfile.mkdtemp(prefix="paycrm-shots-")
    Path(where).mkdir(parents=True, exist_ok=True)
    return where
