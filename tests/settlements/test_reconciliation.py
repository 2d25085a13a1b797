"""Reconciliation of a gateway settlement report against the ledger."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.exceptions import DomainError
from settlements.models import Reconciliation, ReconciliationItem, Transaction
from settlements.services import reconciliation as services
from tests.factories.settlements import TransactionFactory, TransactionSourceFactory

pytestmark = pytest.mark.django_db

HK = ZoneInfo("Asia/Hong_Kong")
Outcome = ReconciliationItem.Outcome
HEADER = "external_id,amount,fee,currency,date\n"


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=HK)


@pytest.fixture
def source(db):
    return TransactionSourceFactory(code="gw", name="Gateway")


def tx(source, external_id, *, amount="100.00", fee="2.50", currency="HKD", when=None, **kw):
    return TransactionFactory(
        source=source,
        external_id=external_id,
        amount=Decimal(amount),
        fee=Decimal(fee),
        currency=currency,
        occurred_at=when or at(15),
        **kw,
    )


def report(*rows: str, header: str = HEADER) -> str:
    return header + "".join(f"{r}\n" for r in rows)


def upload(actor, source, text, filename="report.csv"):
    return services.reconciliation_upload(actor=actor, source=source, filename=filename, text=text)


def items(rec: Reconciliation) -> dict[str, ReconciliationItem]:
    return {i.external_id: i for i in rec.items.all()}


# ---------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------


def test_each_outcome_is_found(finance1, source):
    # given: the ledger
    tx(source, "tx_match")
    tx(source, "tx_amount")
    tx(source, "tx_fee")
    tx(source, "tx_currency", currency="USD")
    tx(source, "tx_ledger_only", when=at(16))
    tx(source, "tx_early", when=at(1))  # named by the report, outside its dates
    tx(source, "tx_later", when=at(20))  # outside the report's dates: none of its business
    # when: the gateway reports 15-16 October
    rec = upload(
        finance1,
        source,
        report(
            "tx_match,100.00,2.50,HKD,2026-10-15",
            "tx_amount,90.00,2.50,HKD,2026-10-15",
            "tx_fee,100.00,2.60,HKD,2026-10-15",
            "tx_currency,100.00,2.50,HKD,2026-10-15",
            "tx_report_only,50.00,1.00,HKD,2026-10-16",
            "tx_early,100.00,2.50,HKD,2026-10-16",
        ),
    )
    # then
    found = items(rec)
    assert {k: v.outcome for k, v in found.items()} == {
        "tx_match": Outcome.MATCHED,
        "tx_early": Outcome.MATCHED,
        "tx_amount": Outcome.AMOUNT_MISMATCH,
        "tx_fee": Outcome.AMOUNT_MISMATCH,
        "tx_currency": Outcome.AMOUNT_MISMATCH,
        "tx_report_only": Outcome.MISSING_IN_LEDGER,
        "tx_ledger_only": Outcome.MISSING_IN_REPORT,
    }
    assert (rec.row_count, rec.matched, rec.mismatched) == (6, 2, 3)
    assert (rec.missing_in_ledger, rec.missing_in_report) == (1, 1)
    assert (rec.date_from.isoformat(), rec.date_to.isoformat()) == ("2026-10-15", "2026-10-16")
    assert (rec.uploaded_by, rec.filename, rec.source) == (finance1, "report.csv", source)
    # the detail says what differs, with both values
    assert found["tx_amount"].detail == "amount: report 90.00, ledger 100.00"
    assert found["tx_fee"].detail == "fee: report 2.60, ledger 2.50"
    assert found["tx_currency"].detail == "currency: report HKD, ledger USD"
    assert found["tx_match"].detail == ""
    # links to the ledger, and the report's side as reported
    assert found["tx_match"].transaction.external_id == "tx_match"
    assert found["tx_report_only"].transaction is None
    assert found["tx_report_only"].report_amount == Decimal("50.00")
    assert found["tx_ledger_only"].report_amount is None
    assert found["tx_ledger_only"].transaction.external_id == "tx_ledger_only"


def test_several_differences_are_all_named(finance1, source):
    tx(source, "tx_1", amount="100.00", fee="2.50", currency="USD")
    rec = upload(finance1, source, report("tx_1,99.99,2.49,HKD,2026-10-15"))
    assert items(rec)["tx_1"].detail == (
        "amount: report 99.99, ledger 100.00; fee: report 2.49, ledger 2.50; "
        "currency: report HKD, ledger USD"
    )


def test_the_report_window_is_in_local_days(finance1, source, settings):
    settings.TIME_ZONE = "Asia/Hong_Kong"
    tx(source, "tx_reported", when=at(15))
    tx(source, "tx_late_evening", when=at(16, 23, 59))  # 15:59 UTC on the 16th
    tx(source, "tx_next_midnight", when=at(17, 0, 0))  # still the 16th in UTC
    tx(source, "tx_early_morning", when=at(15, 0, 0))  # the 14th in UTC
    tx(source, "tx_day_before", when=at(14, 23, 59))
    rec = upload(
        finance1,
        source,
        report("tx_reported,100.00,2.50,HKD,2026-10-15", "tx_x,1.00,0,HKD,2026-10-16"),
    )
    missing = set(rec.items.filter(outcome=Outcome.MISSING_IN_REPORT).values_list("external_id"))
    assert missing == {("tx_late_evening",), ("tx_early_morning",)}


def test_only_settled_ledger_transactions_are_expected_in_the_report(finance1, source):
    tx(source, "tx_settled")
    tx(source, "tx_pending", status=Transaction.Status.PENDING)
    tx(source, "tx_failed", status=Transaction.Status.FAILED)
    rec = upload(finance1, source, report("tx_other,1.00,0.00,HKD,2026-10-15"))
    missing = rec.items.filter(outcome=Outcome.MISSING_IN_REPORT)
    assert [i.external_id for i in missing] == ["tx_settled"]


def test_other_sources_are_not_compared(finance1, source):
    other = TransactionSourceFactory(code="other")
    tx(other, "tx_1")
    tx(other, "tx_2")
    rec = upload(finance1, source, report("tx_1,100.00,2.50,HKD,2026-10-15"))
    assert items(rec)["tx_1"].outcome == Outcome.MISSING_IN_LEDGER
    assert rec.missing_in_report == 0


def test_refunds_compare_with_their_sign(finance1, source):
    tx(source, "rf_1", amount="-40.00", fee="0", kind=Transaction.Kind.REFUND)
    rec = upload(finance1, source, report("rf_1,-40.00,0.00,HKD,2026-10-15"))
    assert items(rec)["rf_1"].outcome == Outcome.MATCHED


def test_columns_may_come_in_any_order_with_extra_ones(finance1, source):
    tx(source, "tx_1")
    text = report(
        "HKD,2026-10-15,x,tx_1,2.50,100.00",
        header="Currency, Date ,merchant,External_ID,fee,amount\n",
    )
    rec = upload(finance1, source, text)
    assert items(rec)["tx_1"].outcome == Outcome.MATCHED


def test_history_names_the_uploader(finance1, source):
    tx(source, "tx_1")
    rec = upload(
        finance1, source, report("tx_1,100.00,2.50,HKD,2026-10-15", "tx_2,1,0,HKD,2026-10-15")
    )
    history = ReconciliationItem.history.filter(reconciliation_id=rec.pk)
    assert history.count() == 2
    assert {(h.history_user, h.history_change_reason) for h in history} == {(finance1, "uploaded")}
    assert rec.history.get().history_user == finance1


def test_the_ledger_is_read_without_a_query_per_row(finance1, source):
    def queries(n: int) -> int:
        for i in range(n):
            tx(source, f"q{n}_{i}")
        rows = [f"q{n}_{i},100.00,2.50,HKD,2026-10-15" for i in range(n)]
        rows.append(f"q{n}_absent,1.00,0,HKD,2026-10-15")  # looked up by id as well
        with CaptureQueriesContext(connection) as captured:
            upload(finance1, source, report(*rows))
        return len(captured)

    queries(1)  # the first call also loads the actor's permissions
    assert queries(3) == queries(40)


def test_report_ids_beyond_one_batch_are_all_looked_up(finance1, source, monkeypatch):
    monkeypatch.setattr(services, "ID_BATCH", 2)
    for i in range(5):
        tx(source, f"old_{i}", when=at(1))
    rows = [f"old_{i},100.00,2.50,HKD,2026-10-15" for i in range(5)]
    rec = upload(finance1, source, report(*rows))
    assert rec.matched == 5


# ---------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------


def test_malformed_rows_refuse_the_whole_file_with_line_and_column(finance1, source):
    tx(source, "tx_ok")
    text = report(
        "tx_ok,100.00,2.50,HKD,2026-10-15",
        "tx_2,abc,2.50,HKD,2026-10-15",
        ",100.00,2.50,HKD,2026-10-15",
        "tx_4,100.00,2.50,XYZ,15/10/2026",
        "tx_ok,100.00,2.50,HKD,2026-10-15",
        "tx_6,100.001,,HKD,2026-10-15",
        "tx_7,NaN,0,HKD,2026-10-15",
    )
    with pytest.raises(services.ReportRejected) as caught:
        upload(finance1, source, text)
    found = {(e.line, e.column) for e in caught.value.errors}
    assert found == {
        (3, "amount"),
        (4, "external_id"),
        (5, "currency"),
        (5, "date"),
        (6, "external_id"),
        (7, "amount"),
        (7, "fee"),
        (8, "amount"),
    }
    messages = {(e.line, e.column): e.message for e in caught.value.errors}
    assert messages[(3, "amount")] == "“abc” is not a number."
    assert messages[(6, "external_id")] == "Same external id as line 2."
    assert "decimal places" in messages[(7, "amount")]
    assert "YYYY-MM-DD" in messages[(5, "date")]
    assert "6 row(s)" in caught.value.message
    assert not Reconciliation.objects.exists()
    assert not ReconciliationItem.objects.exists()


def test_missing_columns_are_named(finance1, source):
    with pytest.raises(services.ReportRejected, match=r"lacks the column.*fee, date"):
        upload(finance1, source, report("tx_1,100.00,HKD", header="external_id,amount,currency\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), (HEADER, "no rows"), (HEADER + "\n\n", "no rows")],
)
def test_empty_reports_are_refused(finance1, source, text, message):
    with pytest.raises(services.ReportRejected, match=message):
        upload(finance1, source, text)


def test_too_many_rows_are_refused(finance1, source, monkeypatch):
    monkeypatch.setattr(services, "MAX_ROWS", 3)
    rows = [f"tx_{i},1.00,0,HKD,2026-10-15" for i in range(4)]
    with pytest.raises(services.ReportRejected, match="At most 3 rows"):
        upload(finance1, source, report(*rows))


def test_too_large_or_not_utf8_files_are_refused(monkeypatch):
    monkeypatch.setattr(services, "MAX_BYTES", 10)
    with pytest.raises(services.ReportRejected, match="larger than 10 MB"):
        services.decode(b"x" * 11)
    monkeypatch.undo()
    with pytest.raises(services.ReportRejected, match="not UTF-8"):
        services.decode("tx,1,0,HKD,2026-10-15".encode("utf-16"))
    assert services.decode("\ufeffexternal_id".encode()) == "external_id"


@pytest.mark.parametrize("user", ["sales1", "compliance1"])
def test_upload_needs_the_add_permission(request, source, user):
    with pytest.raises(PermissionDenied):
        upload(request.getfixturevalue(user), source, report("tx_1,1.00,0,HKD,2026-10-15"))
    assert not Reconciliation.objects.exists()


# ---------------------------------------------------------------------------
# Resolving
# ---------------------------------------------------------------------------


@pytest.fixture
def rec(finance1, source):
    tx(source, "tx_match")
    tx(source, "tx_amount")
    tx(source, "tx_ledger_only")
    return upload(
        finance1,
        source,
        report(
            "tx_match,100.00,2.50,HKD,2026-10-15",
            "tx_amount,90.00,2.50,HKD,2026-10-15",
            "tx_report_only,5.00,0,HKD,2026-10-15",
        ),
    )


def test_resolving_records_who_when_and_why(rec, finance2):
    item = items(rec)["tx_amount"]
    services.reconciliation_item_resolve(
        actor=finance2, item=item, note="  Gateway corrected on 20 Oct  "
    )
    item.refresh_from_db()
    assert item.resolved_by == finance2
    assert item.resolved_at is not None
    assert item.resolution_note == "Gateway corrected on 20 Oct"
    assert not item.needs_attention
    last = item.history.order_by("-history_id").first()
    assert (last.history_user, last.history_change_reason) == (finance2, "resolved")


@pytest.mark.parametrize("note", ["", "   "])
def test_resolving_needs_a_note(rec, finance2, note):
    item = items(rec)["tx_report_only"]
    with pytest.raises(ValidationError) as caught:
        services.reconciliation_item_resolve(actor=finance2, item=item, note=note)
    assert "note" in caught.value.message_dict
    item.refresh_from_db()
    assert item.resolved_at is None


def test_an_item_is_resolved_once(rec, finance1, finance2):
    item = items(rec)["tx_ledger_only"]
    services.reconciliation_item_resolve(actor=finance1, item=item, note="Late capture")
    with pytest.raises(DomainError, match="already resolved"):
        services.reconciliation_item_resolve(actor=finance2, item=item, note="Again")
    item.refresh_from_db()
    assert (item.resolved_by, item.resolution_note) == (finance1, "Late capture")


def test_a_matched_item_cannot_be_resolved(rec, finance1):
    with pytest.raises(DomainError, match="matched"):
        services.reconciliation_item_resolve(
            actor=finance1, item=items(rec)["tx_match"], note="Nothing to do"
        )


def test_resolving_needs_the_change_permission(rec, compliance1):
    with pytest.raises(PermissionDenied):
        services.reconciliation_item_resolve(
            actor=compliance1, item=items(rec)["tx_amount"], note="Seen"
        )


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------

LIST = "settlements:reconciliations"


def _file(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("october.csv", text.encode(), content_type="text/csv")


def test_finance_uploads_a_report_and_lands_on_its_page(web, finance1, source):
    tx(source, "tx_1")
    response = web(finance1).post(
        reverse(LIST),
        {"source": source.pk, "file": _file(report("tx_1,100.00,2.50,HKD,2026-10-15"))},
    )
    rec = Reconciliation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == rec.get_absolute_url()
    assert (rec.filename, rec.matched) == ("october.csv", 1)


def test_a_malformed_upload_shows_the_row_report_and_writes_nothing(web, finance1, source):
    response = web(finance1).post(
        reverse(LIST),
        {"source": source.pk, "file": _file(report("tx_1,1.00,0,HKD,2026-10-15", "tx_2,x,0,HKD,"))},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-testid="reconciliation-errors"' in html
    assert '<td>3</td><td class="font-monospace">amount</td>' in html
    assert '<td>3</td><td class="font-monospace">date</td>' in html
    assert not Reconciliation.objects.exists()


def test_upload_without_a_file_is_refused(web, finance1, source):
    response = web(finance1).post(reverse(LIST), {"source": source.pk})
    assert response.status_code == 400
    assert "file" in response.context["form"].errors


def test_list_shows_reports_and_upload_form_to_finance(web, rec, finance2):
    response = web(finance2).get(reverse(LIST))
    assert response.status_code == 200
    html = response.content.decode()
    assert rec.get_absolute_url() in html
    assert 'data-testid="reconciliation-upload"' in html


def test_compliance_sees_reports_but_cannot_upload(web, rec, compliance1, source):
    client = web(compliance1)
    response = client.get(reverse(LIST))
    assert response.status_code == 200
    assert 'data-testid="reconciliation-upload"' not in response.content.decode()
    response = client.post(
        reverse(LIST), {"source": source.pk, "file": _file(report("a,1,0,HKD,2026-10-15"))}
    )
    assert response.status_code == 403
    assert Reconciliation.objects.count() == 1


def test_sales_may_not_open_reconciliation(web, rec, sales1):
    client = web(sales1)
    assert client.get(reverse(LIST)).status_code == 403
    assert client.get(rec.get_absolute_url()).status_code == 404
    url = reverse("settlements:reconciliation-resolve", args=[rec.pk, items(rec)["tx_amount"].pk])
    assert client.post(url, {"note": "x"}).status_code == 404


def test_detail_opens_on_unresolved_items_and_filters_by_outcome(web, rec, finance1):
    client = web(finance1)
    response = client.get(rec.get_absolute_url())
    assert response.status_code == 200
    shown = {i.external_id for i in response.context["page"]}
    assert shown == {"tx_amount", "tx_report_only", "tx_ledger_only"}
    for show, expected in [
        ("matched", {"tx_match"}),
        ("amount_mismatch", {"tx_amount"}),
        ("missing_in_ledger", {"tx_report_only"}),
        ("missing_in_report", {"tx_ledger_only"}),
        ("all", {"tx_match", "tx_amount", "tx_report_only", "tx_ledger_only"}),
    ]:
        response = client.get(rec.get_absolute_url(), {"show": show})
        assert {i.external_id for i in response.context["page"]} == expected, show
    tabs = {key: count for key, _label, count in response.context["tabs"]}
    assert tabs == {
        "unresolved": 3,
        "amount_mismatch": 1,
        "missing_in_ledger": 1,
        "missing_in_report": 1,
        "matched": 1,
        "all": 4,
    }


def test_resolved_items_leave_the_unresolved_tab(web, rec, finance1):
    services.reconciliation_item_resolve(actor=finance1, item=items(rec)["tx_amount"], note="Fixed")
    response = web(finance1).get(rec.get_absolute_url())
    assert {i.external_id for i in response.context["page"]} == {"tx_report_only", "tx_ledger_only"}


def test_htmx_tab_switch_returns_the_items_partial(web, rec, finance1):
    response = web(finance1).get(
        rec.get_absolute_url(),
        {"show": "matched"},
        headers={"HX-Request": "true", "HX-Target": "reconciliation-items"},
    )
    assert response.status_code == 200
    first = response.templates[0].name
    assert first == "settlements/partials/reconciliation_items.html"
    assert "<html" not in response.content.decode()


def test_resolving_inline_with_htmx_swaps_the_row(web, rec, finance2):
    item = items(rec)["tx_amount"]
    url = reverse("settlements:reconciliation-resolve", args=[rec.pk, item.pk])
    response = web(finance2).post(
        url, {"note": "Gateway fee refund", "show": "unresolved"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith(f'<tr id="item-{item.pk}"')
    assert "Gateway fee refund" in html
    assert 'data-testid="resolved"' in html
    item.refresh_from_db()
    assert item.resolved_by == finance2


def test_resolving_inline_without_a_note_shows_why(web, rec, finance2):
    item = items(rec)["tx_amount"]
    url = reverse("settlements:reconciliation-resolve", args=[rec.pk, item.pk])
    response = web(finance2).post(url, {"note": ""}, headers={"HX-Request": "true"})
    # 200 so that htmx swaps the row with the message in it
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-field="note"' in html
    assert "Say how this difference was settled." in html
    item.refresh_from_db()
    assert item.resolved_at is None


def test_resolving_without_htmx_returns_to_the_same_tab(web, rec, finance2):
    item = items(rec)["tx_report_only"]
    url = reverse("settlements:reconciliation-resolve", args=[rec.pk, item.pk])
    response = web(finance2).post(url, {"note": "Refund booked late", "show": "missing_in_ledger"})
    assert response.status_code == 302
    assert response["Location"] == f"{rec.get_absolute_url()}?show=missing_in_ledger"
    item.refresh_from_db()
    assert item.resolution_note == "Refund booked late"


def test_resolving_a_matched_item_without_htmx_says_why(web, rec, finance2):
    item = items(rec)["tx_match"]
    url = reverse("settlements:reconciliation-resolve", args=[rec.pk, item.pk])
    response = web(finance2).post(url, {"note": "x"}, follow=True)
    assert "A matched item needs no resolution." in response.content.decode()


def test_compliance_may_not_resolve(web, rec, compliance1):
    item = items(rec)["tx_amount"]
    url = reverse("settlements:reconciliation-resolve", args=[rec.pk, item.pk])
    assert web(compliance1).post(url, {"note": "x"}).status_code == 403
    html = web(compliance1).get(rec.get_absolute_url()).content.decode()
    assert f'data-testid="resolve-{item.external_id}"' not in html


def test_an_item_of_another_reconciliation_is_404(web, rec, finance1, source):
    other = upload(finance1, source, report("zz_1,1.00,0,HKD,2026-10-01"))
    item = other.items.get()
    url = reverse("settlements:reconciliation-resolve", args=[rec.pk, item.pk])
    assert web(finance1).post(url, {"note": "x"}).status_code == 404


@pytest.mark.parametrize("size", [3, 30])
def test_detail_page_runs_a_constant_number_of_queries(
    web, finance1, source, size, django_assert_num_queries
):
    # given: a report with `size` rows of every outcome
    rows = []
    for i in range(size):
        tx(source, f"m{i}")
        tx(source, f"d{i}")
        tx(source, f"r{i}")
        rows += [f"m{i},100.00,2.50,HKD,2026-10-15", f"d{i},1.00,2.50,HKD,2026-10-15"]
        rows.append(f"l{i},3.00,0,HKD,2026-10-15")
    rec = upload(finance1, source, report(*rows))
    services.reconciliation_item_resolve(actor=finance1, item=rec.items.first(), note="ok")
    client = web(finance1)
    client.get(rec.get_absolute_url())  # warm the session and permission caches
    # when / then
    with django_assert_num_queries(14):
        response = client.get(rec.get_absolute_url(), {"show": "all"})
    assert response.status_code == 200
    assert len(response.context["page"]) == min(4 * size, 50)
