"""Exports of an approved run: payout CSV, ERP journal CSV, statement PDFs."""

import csv
import hashlib
import io
import re
import threading
import zlib
from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.context_processors import PermWrapper
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models.functions import Length
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.urls import reverse

from core.exceptions import DomainError, TransitionError
from core.models import SensitiveAccess
from merchants.models import BankAccount, Partner
from settlements.models import (
    Adjustment,
    SettlementExport,
    SettlementRun,
    Statement,
    StatementLine,
)
from settlements.services import exports
from tests.conftest import restore_roles
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory, PartnerFactory

pytestmark = pytest.mark.django_db

Kind = SettlementExport.Kind
Status = SettlementRun.Status


# ---------------------------------------------------------------------------
# A run built by hand (the calculation is not under test here)
# ---------------------------------------------------------------------------


def make_run(*, prepared_by, currency: str = "HKD") -> SettlementRun:
    return SettlementRun.objects.create(
        period_start=date(2026, 10, 1),
        period_end=date(2026, 10, 31),
        currency=currency,
        status=Status.CALCULATED,
        prepared_by=prepared_by,
    )


def add_statement(
    run: SettlementRun,
    partner: Partner,
    *,
    payable: str,
    lines: tuple = (),
    adjustments: str = "0",
    carried_in: str = "0",
    carried_out: str = "0",
    reference: str | None = None,
) -> Statement:
    """``lines``: (merchant, volume, basis, share, negative_spread) tuples."""
    lines_total = sum((Decimal(share) for _m, _v, _b, share, _n in lines), Decimal(0))
    statement = Statement.objects.create(
        run=run,
        partner=partner,
        currency=run.currency,
        lines_total=lines_total,
        adjustments_total=Decimal(adjustments),
        carried_in=Decimal(carried_in),
        total=Decimal(payable) + Decimal(carried_out),
        payable=Decimal(payable),
        carried_out=Decimal(carried_out),
        has_negative_spread=any(n for *_rest, n in lines),
        reference=f"RS-{run.pk}-{partner.pk}" if reference is None else reference,
    )
    for merchant, volume, basis, share, negative in lines:
        StatementLine.objects.create(
            statement=statement,
            merchant=merchant,
            role=StatementLine.Role.SPREAD if negative else StatementLine.Role.REFERRER,
            volume=Decimal(volume),
            basis=Decimal(basis),
            tier_from=Decimal("0"),
            partner_rate_bps=Decimal("1000"),
            rate_bps=Decimal("0") if negative else Decimal("1000"),
            share=Decimal(share),
            negative_spread=negative,
        )
    return statement


def approve(run: SettlementRun) -> SettlementRun:
    # A queryset update: the approval service is the lead's, and frozen-run
    # guards would refuse statements added after approval.
    SettlementRun.objects.filter(pk=run.pk).update(status=Status.APPROVED)
    run.refresh_from_db()
    return run


def bank_account(partner: Partner, *, currency="HKD", number="004123456789012", primary=True):
    return BankAccount.objects.create(
        partner=partner,
        account_holder=f"{partner.name} Ltd",
        bank_name="HSBC Hong Kong" if currency == "HKD" else "HSBC Singapore",
        swift_code="HSBCHKHHXXX",
        country="HK",
        currency=currency,
        account_number=number,
        account_number_last4=number[-4:],
        account_hash=hashlib.sha256(number.encode()).hexdigest(),
        is_primary=primary,
    )


def build_world(preparer) -> dict:
    """An approved HKD run: two partners paid, one carrying forward (zero payable)."""
    run = make_run(prepared_by=preparer)
    jade, lotus, zero = (
        PartnerFactory(name="Jade Agents"),
        PartnerFactory(name="Lotus Referrals"),
        PartnerFactory(name="Small Fry"),
    )
    m1 = MerchantFactory(legal_name="Golden Dragon Limited")
    m2 = MerchantFactory(legal_name="金龍茶餐廳有限公司")
    m3 = MerchantFactory(legal_name="Coral Pharmacy")
    add_statement(
        run,
        jade,
        payable="1234.57",
        lines=((m1, "60000.00", "1200.00", "1200.00", False), (m2, "5000", "100", "0", True)),
        adjustments="-50.00",
        carried_in="84.57",
    )
    add_statement(
        run, lotus, payable="0.01", lines=((m3, "10.00", "0.10", "0.01", False),), reference=""
    )
    add_statement(run, zero, payable="0", carried_out="12.30")
    Adjustment.objects.create(
        run=run,
        partner=jade,
        amount=Decimal("-50.00"),
        reason="Chargeback fee",
        created_by=preparer,
    )
    bank_account(jade, number="004123456789012")
    bank_account(lotus, number="024987654321098")
    return {"run": approve(run), "jade": jade, "lotus": lotus, "zero": zero}


@pytest.fixture
def world(finance2):
    return build_world(finance2)


def parse_csv(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(bytes(content).decode("utf-8"))))


def pdf_text(content: bytes) -> bytes:
    """The decompressed content streams of a PDF, enough to look for printed text."""
    out = []
    for raw in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", bytes(content), re.S):
        try:
            out.append(zlib.decompress(raw))
        except zlib.error:
            out.append(raw)
    return b"\n".join(out)


# ---------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [Status.DRAFT, Status.CALCULATING, Status.CALCULATED, Status.SUBMITTED, Status.REJECTED],
)
def test_export_is_refused_before_approval(finance1, finance2, status):
    # given
    run = make_run(prepared_by=finance2)
    SettlementRun.objects.filter(pk=run.pk).update(status=status)
    # when / then
    with pytest.raises(TransitionError, match="Only an approved run"):
        exports.settlement_run_export(run=run, actor=finance1)
    run.refresh_from_db()
    assert run.status == status
    assert not SettlementExport.objects.exists()


@pytest.mark.parametrize("user", ["sales1", "compliance1"])
def test_export_needs_the_export_permission(world, user, request):
    actor = request.getfixturevalue(user)
    with pytest.raises(PermissionDenied):
        exports.settlement_run_export(run=world["run"], actor=actor)
    world["run"].refresh_from_db()
    assert world["run"].status == Status.APPROVED
    assert not SettlementExport.objects.exists()


def test_export_is_refused_when_a_paid_partner_has_no_payout_account(world, finance1):
    # given: Lotus is owed 0.01 but its only account is not primary
    BankAccount.objects.filter(partner=world["lotus"]).update(is_primary=False)
    # when / then
    with pytest.raises(DomainError, match="Lotus Referrals") as caught:
        exports.settlement_run_export(run=world["run"], actor=finance1)
    # the partner carrying forward (nothing payable) needs no account
    assert "Small Fry" not in caught.value.message
    assert "Jade Agents" not in caught.value.message
    world["run"].refresh_from_db()
    assert world["run"].status == Status.APPROVED
    assert not SettlementExport.objects.exists()
    assert not SensitiveAccess.objects.exists()


def test_export_is_refused_when_a_payable_has_more_decimals_than_the_currency(finance1, finance2):
    run = make_run(prepared_by=finance2)
    partner = PartnerFactory()
    add_statement(run, partner, payable="10.005")
    bank_account(partner)
    with pytest.raises(DomainError, match="more decimals"):
        exports.settlement_run_export(run=approve(run), actor=finance1)
    assert not SettlementExport.objects.exists()


# ---------------------------------------------------------------------------
# The first export and the next ones
# ---------------------------------------------------------------------------


def test_first_export_stores_payout_journal_and_a_pdf_per_statement(world, finance1):
    # when
    files = exports.settlement_run_export(run=world["run"], actor=finance1)
    # then
    run = world["run"]
    run.refresh_from_db()
    assert run.status == Status.EXPORTED
    kinds = defaultdict(list)
    for export in files:
        kinds[export.kind].append(export)
    assert len(kinds[Kind.PAYOUT_CSV]) == 1
    assert len(kinds[Kind.JOURNAL_CSV]) == 1
    # every statement, the zero-payable one included
    assert {e.statement.partner.name for e in kinds[Kind.STATEMENT_PDF]} == {
        "Jade Agents",
        "Lotus Referrals",
        "Small Fry",
    }
    assert SettlementExport.objects.filter(run=run).count() == 5
    for export in files:
        assert export.sha256 == hashlib.sha256(bytes(export.content)).hexdigest()
        assert export.created_by == finance1
    assert kinds[Kind.PAYOUT_CSV][0].content_type.startswith("text/csv")
    assert kinds[Kind.STATEMENT_PDF][0].content_type == "application/pdf"


def test_exporting_again_returns_the_stored_files(world, finance1, finance2):
    first = exports.settlement_run_export(run=world["run"], actor=finance1)
    # when: another finance user exports the exported run
    again = exports.settlement_run_export(run=world["run"], actor=finance2)
    # then
    assert [(e.pk, e.sha256) for e in again] == [(e.pk, e.sha256) for e in first]
    assert SettlementExport.objects.count() == len(first)
    assert {e.created_by for e in again} == {finance1}


def test_history_names_the_exporter(world, finance1):
    files = exports.settlement_run_export(run=world["run"], actor=finance1)
    export_history = SettlementExport.history.filter(history_type="+")
    assert export_history.count() == len(files)
    assert {h.history_user for h in export_history} == {finance1}
    last = world["run"].history.order_by("-history_id").first()
    assert (last.status, last.history_user, last.history_change_reason) == (
        Status.EXPORTED,
        finance1,
        "exported",
    )


# ---------------------------------------------------------------------------
# The files
# ---------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_exports_at_once_store_one_set_of_files():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are only meaningful on PostgreSQL; set DATABASE_URL to run")
    restore_roles()  # an earlier transactional test's flush removed them
    exporters = [UserFactory(username=f"exp{i}", roles=["finance"]) for i in range(2)]
    run = build_world(UserFactory(username="prep", roles=["finance"]))["run"]
    barrier = threading.Barrier(2)
    results: list = []

    def export(user):
        try:
            barrier.wait(timeout=10)
            files = exports.settlement_run_export(run=run, actor=user)
            results.append(sorted(e.pk for e in files))
        except Exception as exc:  # reported by the assertions below
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=export, args=(u,)) for u in exporters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # the second waited for the first's lock, then found the run exported
    assert len(results) == 2
    assert results[0] == results[1]
    assert SettlementExport.objects.filter(run=run).count() == 5
    run.refresh_from_db()
    assert run.status == Status.EXPORTED


def _file(files, kind):
    return next(e for e in files if e.kind == kind)


def test_payout_csv_pays_each_partner_exactly_what_its_statement_says(world, finance1):
    # when
    files = exports.settlement_run_export(run=world["run"], actor=finance1)
    rows = parse_csv(_file(files, Kind.PAYOUT_CSV).content)
    # then: one row per statement with an amount payable
    assert [r["partner_name"] for r in rows] == ["Jade Agents", "Lotus Referrals"]
    payable = world["run"].statements.filter(payable__gt=0)
    assert sum(Decimal(r["amount"]) for r in rows) == sum(s.payable for s in payable)
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal("1234.58")
    jade, lotus = rows
    assert jade["amount"] == "1234.57"
    assert lotus["amount"] == "0.01"
    assert jade["account_number"] == "004123456789012"  # in full: the bank needs it
    assert jade["swift_code"] == "HSBCHKHHXXX"
    assert jade["currency"] == "HKD"
    assert jade["partner_id"] == str(world["jade"].pk)
    assert jade["reference"] == f"RS-{world['run'].pk}-{world['jade'].pk}"
    # an empty reference is built the same way
    assert lotus["reference"] == f"RS-{world['run'].pk}-{world['lotus'].pk}"


def test_payout_reads_are_recorded_per_account(world, finance1):
    exports.settlement_run_export(run=world["run"], actor=finance1)
    reads = SensitiveAccess.objects.filter(reason="payout export")
    accounts = BankAccount.objects.filter(partner__in=[world["jade"], world["lotus"]])
    assert sorted(int(r.object_id) for r in reads) == sorted(a.pk for a in accounts)
    assert {(r.user, r.object_label, r.field) for r in reads} == {
        (finance1, "merchants.bankaccount", "account_number")
    }


def test_payout_prefers_the_primary_account_in_the_run_currency(finance1, finance2):
    # given: one partner with primary USD and HKD accounts, one with USD only
    run = make_run(prepared_by=finance2)
    both, usd_only = PartnerFactory(name="A Both"), PartnerFactory(name="B Usd Only")
    add_statement(run, both, payable="100.00")
    add_statement(run, usd_only, payable="200.00")
    bank_account(both, currency="USD", number="111111111111")
    bank_account(both, currency="HKD", number="004222222222222")
    bank_account(both, currency="HKD", number="004333333333333", primary=False)
    bank_account(usd_only, currency="USD", number="444444444444")
    # when
    files = exports.settlement_run_export(run=approve(run), actor=finance1)
    # then
    rows = {r["partner_name"]: r for r in parse_csv(_file(files, Kind.PAYOUT_CSV).content)}
    assert rows["A Both"]["account_number"] == "004222222222222"
    assert rows["B Usd Only"]["account_number"] == "444444444444"


def test_amounts_have_exactly_the_currency_minor_digits(finance1, finance2):
    run = make_run(prepared_by=finance2, currency="JPY")
    partner = PartnerFactory()
    add_statement(run, partner, payable="123457")
    bank_account(partner, currency="JPY")
    files = exports.settlement_run_export(run=approve(run), actor=finance1)
    (row,) = parse_csv(_file(files, Kind.PAYOUT_CSV).content)
    assert row["amount"] == "123457"
    journal = parse_csv(_file(files, Kind.JOURNAL_CSV).content)
    assert {r["debit"] for r in journal} == {"123457", "0"}


def test_journal_balances_per_partner_and_in_total(world, finance1, settings):
    # given: the ERP's own account codes
    settings.SETTLEMENT_JOURNAL_EXPENSE_ACCOUNT = "6210"
    settings.SETTLEMENT_JOURNAL_PAYABLE_ACCOUNT = "2150"
    # when
    files = exports.settlement_run_export(run=world["run"], actor=finance1)
    rows = parse_csv(_file(files, Kind.JOURNAL_CSV).content)
    # then: two legs per paid statement
    assert len(rows) == 4
    per_reference = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for row in rows:
        per_reference[row["reference"]][0] += Decimal(row["debit"])
        per_reference[row["reference"]][1] += Decimal(row["credit"])
        assert row["journal_date"] == "2026-10-31"
        assert row["currency"] == "HKD"
    assert all(debit == credit for debit, credit in per_reference.values())
    assert sum(Decimal(r["debit"]) for r in rows) == sum(Decimal(r["credit"]) for r in rows)
    assert sum(Decimal(r["debit"]) for r in rows) == Decimal("1234.58")
    expense = [r for r in rows if Decimal(r["debit"]) > 0]
    payable = [r for r in rows if Decimal(r["credit"]) > 0]
    assert {(r["account_code"], r["account_name"]) for r in expense} == {
        ("6210", "Revenue share expense")
    }
    assert {(r["account_code"], r["account_name"]) for r in payable} == {
        ("2150", "Partner payables")
    }


def test_journal_uses_default_account_codes(world, finance1, settings):
    del settings.SETTLEMENT_JOURNAL_EXPENSE_ACCOUNT
    del settings.SETTLEMENT_JOURNAL_PAYABLE_ACCOUNT
    files = exports.settlement_run_export(run=world["run"], actor=finance1)
    rows = parse_csv(_file(files, Kind.JOURNAL_CSV).content)
    assert {r["account_code"] for r in rows} == {"6100", "2100"}


def test_statement_pdf_shows_lines_adjustments_and_totals(world, finance1):
    files = exports.settlement_run_export(run=world["run"], actor=finance1)
    pdfs = {e.statement.partner.name: e for e in files if e.kind == Kind.STATEMENT_PDF}
    for export in pdfs.values():
        assert bytes(export.content).startswith(b"%PDF")
    text = pdf_text(pdfs["Jade Agents"].content)
    assert b"Jade Agents" in text
    assert f"RS-{world['run'].pk}-{world['jade'].pk}".encode() in text
    assert b"Golden Dragon Limited" in text
    assert b"60,000.00" in text
    assert b"Chargeback fee" in text
    assert b"1,234.57 HKD" in text
    # the Chinese name cannot be printed with a built-in font: replaced, flagged
    assert b"?" * len("金龍茶餐廳有限公司") + b" *" in text
    assert b"Negative spread" in text
    # the carried-forward statement is there too
    assert b"12.30 HKD" in pdf_text(pdfs["Small Fry"].content)


def test_pdf_text_replaces_what_the_font_cannot_print():
    assert exports.pdf_text("Zürich €5 — ok") == "Zürich €5 — ok"
    assert exports.pdf_text("Dvořák Łódź") == "Dvorák ?ódz"
    assert exports.pdf_text("金龍 Ltd") == "?? Ltd"


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------


def test_finance_downloads_a_stored_file(world, finance1, web):
    files = exports.settlement_run_export(run=world["run"], actor=finance1)
    journal = _file(files, Kind.JOURNAL_CSV)
    # when
    response = web(finance1).get(
        reverse("settlements:export-download", args=[world["run"].pk, journal.pk])
    )
    # then
    assert response.status_code == 200
    assert response.content == bytes(journal.content)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{journal.filename}"'
    assert "no-store" in response["Cache-Control"]


def test_downloading_the_payout_file_is_a_recorded_read(world, finance1, finance2, web):
    files = exports.settlement_run_export(run=world["run"], actor=finance1)
    payout = _file(files, Kind.PAYOUT_CSV)
    response = web(finance2).get(
        reverse("settlements:export-download", args=[world["run"].pk, payout.pk])
    )
    assert response.status_code == 200
    read = SensitiveAccess.objects.get(reason="payout export download")
    assert (read.user, read.object_label, read.object_id) == (
        finance2,
        "settlements.settlementexport",
        str(payout.pk),
    )
    assert read.ip_address == "127.0.0.1"


def test_compliance_reads_statements_but_not_the_payout_file(world, finance1, compliance1, web):
    files = exports.settlement_run_export(run=world["run"], actor=finance1)
    client = web(compliance1)
    payout = _file(files, Kind.PAYOUT_CSV)
    journal = _file(files, Kind.JOURNAL_CSV)
    url = reverse("settlements:export-download", args=[world["run"].pk, payout.pk])
    assert client.get(url).status_code == 403
    assert not SensitiveAccess.objects.filter(user=compliance1).exists()
    url = reverse("settlements:export-download", args=[world["run"].pk, journal.pk])
    assert client.get(url).status_code == 200


def test_sales_gets_404_for_a_download(world, finance1, sales1, web):
    files = exports.settlement_run_export(run=world["run"], actor=finance1)
    url = reverse("settlements:export-download", args=[world["run"].pk, files[0].pk])
    assert web(sales1).get(url).status_code == 404


def test_download_of_another_runs_file_is_404(world, finance1, finance2, web):
    files = exports.settlement_run_export(run=world["run"], actor=finance1)
    other = make_run(prepared_by=finance2)
    url = reverse("settlements:export-download", args=[other.pk, files[0].pk])
    assert web(finance1).get(url).status_code == 404


def test_sales_gets_404_when_exporting(world, sales1, web):
    response = web(sales1).post(reverse("settlements:run-export", args=[world["run"].pk]))
    assert response.status_code == 404
    assert not SettlementExport.objects.exists()


def test_compliance_may_not_export(world, compliance1, web):
    response = web(compliance1).post(reverse("settlements:run-export", args=[world["run"].pk]))
    assert response.status_code == 403
    assert not SettlementExport.objects.exists()


def test_export_page_exports_and_returns_to_the_run(world, finance1, web):
    response = web(finance1).post(reverse("settlements:run-export", args=[world["run"].pk]))
    assert response.status_code == 302
    assert response["Location"] == world["run"].get_absolute_url()
    world["run"].refresh_from_db()
    assert world["run"].status == Status.EXPORTED
    assert SettlementExport.objects.filter(run=world["run"]).count() == 5
    # the run page lists the files through the exports partial
    html = web(finance1).get(response["Location"]).content.decode()
    payout = SettlementExport.objects.get(run=world["run"], kind=Kind.PAYOUT_CSV)
    download = reverse("settlements:export-download", args=[world["run"].pk, payout.pk])
    assert f'href="{download}" data-testid="export-payout_csv"' in html


def test_export_page_says_why_it_refused(world, finance1, web):
    BankAccount.objects.filter(partner=world["jade"]).delete()
    client = web(finance1)
    response = client.post(reverse("settlements:run-export", args=[world["run"].pk]))
    assert response.status_code == 302
    shown = [str(m) for m in response.wsgi_request._messages]
    assert any("Jade Agents" in m and "payout bank account" in m for m in shown)
    assert not SettlementExport.objects.exists()


def test_export_page_only_takes_posts(world, finance1, web):
    response = web(finance1).get(reverse("settlements:run-export", args=[world["run"].pk]))
    assert response.status_code == 405


def _render_partial(user, run):
    # As the run page includes it: ``perms`` and the CSRF token from its context.
    return render_to_string(
        "settlements/partials/run_exports.html",
        {
            "run": run,
            "exports": run.exports.select_related("created_by", "statement__partner")
            .defer("content")
            .annotate(size=Length("content")),
            "perms": PermWrapper(user),
            "csrf_token": "token",
        },
    )


def test_partial_offers_export_on_an_approved_run_to_exporters_only(world, finance1, compliance1):
    html = _render_partial(finance1, world["run"])
    assert 'data-testid="run-export"' in html
    assert reverse("settlements:run-export", args=[world["run"].pk]) in html
    assert "csrfmiddlewaretoken" in html
    assert 'data-testid="run-export"' not in _render_partial(compliance1, world["run"])


def test_partial_lists_the_files_with_download_links(world, finance1):
    files = exports.settlement_run_export(run=world["run"], actor=finance1)
    world["run"].refresh_from_db()
    html = _render_partial(finance1, world["run"])
    assert 'data-testid="run-export"' not in html  # exported: nothing to press
    for export in files:
        url = reverse("settlements:export-download", args=[world["run"].pk, export.pk])
        assert f'href="{url}"' in html
        assert export.filename in html
    assert html.count('data-testid="export-statement_pdf"') == 3
    assert html.count('data-testid="export-payout_csv"') == 1
    assert html.count('data-testid="export-journal_csv"') == 1
    payout = _file(files, Kind.PAYOUT_CSV)
    assert filesizeformat(len(bytes(payout.content))) in html
    assert payout.sha256[:12] in html
    assert "Small Fry" in html  # a statement PDF names its partner


def test_payout_and_journal_cells_a_spreadsheet_would_run_are_neutralised(world, finance1):
    """Issue 12 finding 9: a partner named like a formula reached the CSVs as is."""
    # given: names and account fields that a spreadsheet would evaluate
    Partner.objects.filter(pk=world["jade"].pk).update(name='=HYPERLINK("http://x.test","pay")')
    BankAccount.objects.filter(partner=world["lotus"]).update(
        account_holder="@SUM(A1:A9)", bank_name="+cmd|' /C calc'!A0"
    )
    # when
    files = exports.settlement_run_export(run=world["run"], actor=finance1)
    payout = parse_csv(_file(files, Kind.PAYOUT_CSV).content)
    journal = parse_csv(_file(files, Kind.JOURNAL_CSV).content)
    # then: each such cell starts with a quote; amounts stay plain numbers
    jade, lotus = sorted(payout, key=lambda r: r["amount"], reverse=True)
    assert jade["partner_name"] == '\'=HYPERLINK("http://x.test","pay")'
    assert lotus["account_holder"] == "'@SUM(A1:A9)"
    assert lotus["bank_name"] == "'+cmd|' /C calc'!A0"
    assert (jade["amount"], lotus["amount"]) == ("1234.57", "0.01")
    names = {r["partner_name"] for r in journal}
    assert '\'=HYPERLINK("http://x.test","pay")' in names
    assert not any(v[:1] in "=+@" for r in [*payout, *journal] for v in r.values())
