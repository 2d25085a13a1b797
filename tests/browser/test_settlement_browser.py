"""A settlement run from creation to the bank's payout file, across two finance users:
finance1 creates the October 2026 HKD run, calculates and submits it; finance2 (four
eyes) approves it, exports it and downloads the payout CSV. A second test watches the
run page follow a calculation in progress and reload when it ends."""

import csv
import io
import re
from pathlib import Path

import pytest

from merchants import services as merchant_services
from settlements.models import SettlementRun
from tests.browser.session import sign_in
from tests.conftest import restore_roles
from tests.factories.core import UserFactory
from tests.settlements.runs_setup import OCT_END, OCT_START, build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RUN_URL = re.compile(r"/settlements/runs/\d+/$")


def _payout_accounts(world) -> None:
    """A primary HKD payout account per partner: the export refuses a run without them."""
    admin = UserFactory(username="admin1", roles=["admin"])
    for partner, number in ((world.master, "004-123-456789012"), (world.sub, "024-456-987654")):
        merchant_services.bank_account_create(
            actor=admin,
            partner=partner,
            account_number=number,
            account_holder=f"{partner.name} Limited",
            bank_name="Harbour Bank",
            country="HK",
            currency="HKD",
            is_primary=True,
        )


def test_run_is_created_calculated_submitted_approved_and_paid_out(browser, live_server):
    # given: the hand-checked October world, committed for the live server
    restore_roles()
    finance1 = UserFactory(username="finance1", roles=["finance"])
    finance2 = UserFactory(username="finance2", roles=["finance"])
    world = build_world(actor=finance1)
    _payout_accounts(world)

    # finance1 opens Settlements from the navigation and creates the run
    preparer = sign_in(browser, live_server, "finance1")
    # Substring match: the icon font's glyph is part of the link's accessible name.
    preparer.locator("nav").get_by_role("link", name="Settlements").click()
    preparer.wait_for_url(re.compile(r"/settlements/runs/$"))
    preparer.get_by_test_id("new-run").click()
    preparer.get_by_label("Period start").fill(OCT_START.isoformat())
    preparer.get_by_label("Period end").fill(OCT_END.isoformat())
    preparer.get_by_label("Currency").select_option("HKD")
    preparer.get_by_test_id("create-run").click()
    preparer.wait_for_url(RUN_URL)
    run_url = preparer.url
    assert preparer.get_by_test_id("run-status").inner_text() == "Draft"

    # calculates it: without a broker the task finishes within the request
    preparer.get_by_test_id("calculate").click()
    preparer.wait_for_url(RUN_URL)
    assert preparer.get_by_test_id("run-status").inner_text() == "Calculated"
    assert preparer.get_by_text("The run is calculated.").is_visible()
    assert preparer.get_by_test_id("total-payable").inner_text() == "1,220.00 HKD"
    assert "= basis" in preparer.get_by_test_id("basis-check").inner_text()
    statements = preparer.get_by_test_id("statements-table")
    assert "Master Agent" in statements.inner_text()
    assert "Sub Agent" in statements.inner_text()

    # and submits it, confirming in the dialog
    preparer.get_by_test_id("submit").click()
    preparer.get_by_test_id("confirm-submit").click()
    preparer.wait_for_url(RUN_URL)
    assert preparer.get_by_test_id("run-status").inner_text() == "Submitted for approval"
    # four eyes: the preparer is offered no Approve and told why
    assert preparer.get_by_test_id("approve").count() == 0
    assert "You prepared this run" in preparer.get_by_test_id("approve-blocked").inner_text()

    # finance2 approves with a comment
    approver = sign_in(browser, live_server, "finance2")
    approver.goto(run_url)
    approver.get_by_test_id("approve").click()
    approver.get_by_label("Comment").fill("Ties to the October ledger")
    approver.get_by_test_id("confirm-approve").click()
    approver.wait_for_url(RUN_URL)
    assert approver.get_by_test_id("run-status").inner_text() == "Approved"
    assert str(finance2) in approver.get_by_test_id("run-approvals").inner_text()

    # then exports it and downloads the payout file
    approver.get_by_test_id("run-export").click()
    approver.wait_for_url(RUN_URL)
    with approver.expect_download() as download_info:
        approver.get_by_test_id("export-payout_csv").click()
    download = download_info.value
    assert download.suggested_filename.endswith("-payout.csv")
    content = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = {row["partner_name"]: row for row in csv.DictReader(io.StringIO(content))}
    assert set(rows) == {"Master Agent", "Sub Agent"}
    assert (rows["Master Agent"]["amount"], rows["Master Agent"]["currency"]) == ("1000.00", "HKD")
    assert (rows["Sub Agent"]["amount"], rows["Sub Agent"]["currency"]) == ("220.00", "HKD")
    assert rows["Master Agent"]["account_number"] == "004123456789012"

    run = SettlementRun.objects.get()
    assert run.status == SettlementRun.Status.EXPORTED
    assert list(run.approvals.values_list("approver__username", "comment")) == [
        ("finance2", "Ties to the October ledger")
    ]
    for page in (preparer, approver):
        page.context.close()


def test_run_page_follows_a_calculation_and_reloads_when_it_ends(browser, live_server):
    # given: a run the worker is calculating (no broker here, so it is set up directly)
    restore_roles()
    finance1 = UserFactory(username="finance1", roles=["finance"])
    run = SettlementRun.objects.create(
        period_start=OCT_START,
        period_end=OCT_END,
        currency="HKD",
        prepared_by=finance1,
        status=SettlementRun.Status.CALCULATING,
        progress=40,
        progress_note="Adding up transactions",
    )
    page = sign_in(browser, live_server, "finance1")
    page.goto(run.get_absolute_url())
    progress = page.get_by_test_id("run-progress")
    assert "Adding up transactions" in progress.inner_text()
    assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "40"

    # when: the worker moves on, the poll picks it up within a second or so
    SettlementRun.objects.filter(pk=run.pk).update(progress=80, progress_note="Writing statements")
    page.wait_for_function(
        "() => document.querySelector('[role=progressbar]')?.getAttribute('aria-valuenow') === '80'"
    )
    # and when it finishes, the page reloads and shows the outcome
    SettlementRun.objects.filter(pk=run.pk).update(
        status=SettlementRun.Status.CALCULATED, progress=100
    )
    page.wait_for_function(
        "() => document.querySelector('[data-testid=run-status]')?.textContent === 'Calculated'"
    )
    assert page.get_by_test_id("run-progress").count() == 0
    page.context.close()
