"""Transaction list page and CSV import (dry run, report per row, confirm)."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from merchants import services as merchant_services
from merchants.models import Merchant
from settlements import forms_ledger
from settlements.models import Transaction
from tests.factories.merchants import MerchantFactory
from tests.factories.settlements import TransactionFactory, TransactionSourceFactory
from tests.settlements.ledger_trail import batch_entries, proven_ids

pytestmark = pytest.mark.django_db

HK = ZoneInfo("Asia/Hong_Kong")
LIST = reverse("settlements:transactions")
IMPORT = reverse("settlements:transaction-import")


@pytest.fixture
def source():
    return TransactionSourceFactory(code="acme-pay", name="Acme Pay")


@pytest.fixture
def merchant(admin1):
    merchant = MerchantFactory(status=Merchant.Status.ONBOARDING, trading_name="Jade Noodles")
    return merchant_services.merchant_activate(merchant=merchant, actor=admin1, reason="test")


def _at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 10, day, hour, 0, tzinfo=HK)


# ---------------------------------------------------------------------------
# List
# ---------------------------------------------------------------------------


def test_finance_sees_transactions_with_amounts_in_their_currency(web, finance1, source, merchant):
    # given
    TransactionFactory(
        source=source,
        merchant=merchant,
        external_id="ch_yen",
        currency="JPY",
        amount=Decimal("125000"),
        fee=Decimal("3125"),
        cost=Decimal("0"),
    )
    TransactionFactory(
        source=source,
        merchant=merchant,
        external_id="re_1",
        kind="refund",
        amount=Decimal("-1250.5"),
    )
    # when
    response = web(finance1).get(LIST)
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "ch_yen" in html
    assert "125,000 <span" in html  # no decimals for yen
    assert "-1,250.50 <span" in html
    assert 'data-kind="refund"' in html
    assert "Jade Noodles" in html
    assert html.count('class="text-end text-nowrap font-monospace" data-testid="amount"') == 2


def test_compliance_may_read_the_ledger_but_not_import(web, compliance1, source, merchant):
    client = web(compliance1)
    assert client.get(LIST).status_code == 200
    assert b"import-transactions" not in client.get(LIST).content
    assert client.get(IMPORT).status_code == 403


def test_sales_users_cannot_see_the_pages(web, sales1, source, merchant):
    TransactionFactory(source=source, merchant=merchant)
    client = web(sales1)
    assert client.get(LIST).status_code == 403
    assert client.get(IMPORT).status_code == 403


def test_the_list_filters_and_the_pager_keeps_them(web, finance1, source, merchant):
    # given
    other = TransactionSourceFactory(code="other-pay", name="Other Pay")
    for n in range(55):
        TransactionFactory(
            source=source, merchant=merchant, occurred_at=_at(1) + timedelta(minutes=n)
        )
    TransactionFactory(
        source=other,
        merchant=merchant,
        external_id="ch_usd",
        currency="USD",
        occurred_at=_at(20, 23),
        customer_ref="cus_42",
    )
    TransactionFactory(
        source=source,
        merchant=merchant,
        external_id="cb_1",
        kind="chargeback",
        amount=Decimal("-10"),
        occurred_at=_at(21),
    )
    client = web(finance1)

    def shown(query: str) -> int:
        return client.get(f"{LIST}?{query}").context["page"].paginator.count

    # then
    assert shown("") == 57
    assert shown("kind=chargeback") == 1
    assert shown("source=other-pay") == 1
    assert shown("currency=usd") == 1
    assert shown("q=cus_42") == 1
    assert shown("date_from=2026-10-20&date_to=2026-10-20") == 1
    assert shown("date_from=2026-10-21") == 1
    page = client.get(f"{LIST}?source=acme-pay&kind=payment")
    assert page.context["page"].paginator.num_pages == 2
    assert "?source=acme-pay&amp;kind=payment&amp;page=2" in page.content.decode()
    second = client.get(f"{LIST}?source=acme-pay&kind=payment&page=2")
    assert len(second.context["page"].object_list) == 5


def test_an_htmx_filter_request_gets_only_the_rows(web, finance1, source, merchant):
    TransactionFactory(source=source, merchant=merchant)
    response = web(finance1).get(
        LIST, headers={"HX-Request": "true", "HX-Target": "transaction-results"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="transaction-table"' in html
    assert "<html" not in html  # no page frame around it
    assert "navbar" not in html


@pytest.mark.parametrize("count", [3, 60])
def test_the_list_page_runs_a_constant_number_of_queries(
    web, finance1, source, merchant, admin1, count, django_assert_num_queries
):
    merchants = [merchant] + [
        merchant_services.merchant_activate(
            merchant=MerchantFactory(status=Merchant.Status.ONBOARDING), actor=admin1, reason="t"
        )
        for _ in range(2)
    ]
    for n in range(count):
        TransactionFactory(source=source, merchant=merchants[n % 3])
    client = web(finance1)
    client.get(LIST)
    # session, user, device, user and group permissions, sources for the
    # filter, count, page rows (merchant and source joined), navigation
    # (unread notifications, groups), session save: the same at any size
    with django_assert_num_queries(13):
        response = client.get(LIST)
    assert len(response.context["page"].object_list) == min(count, 50)


# ---------------------------------------------------------------------------
# CSV import
# ---------------------------------------------------------------------------

HEADER = "external_id,merchant,mid,kind,amount,fee,currency,occurred_at,payer_email\n"


def _when() -> str:
    return (timezone.now() - timedelta(days=1)).astimezone(HK).isoformat(timespec="seconds")


def _csv(*lines: str, header: str = HEADER) -> SimpleUploadedFile:
    return SimpleUploadedFile("transactions.csv", (header + "".join(lines)).encode())


def _good(merchant, n: int) -> str:
    return f"ch_{n},{merchant.pk},,payment,{n}.50,0.30,HKD,{_when()},\n"


def _dry_run(client, upload, only_valid=False, source="acme-pay"):
    data = {"source": source, "file": upload}
    if only_valid:
        data["only_valid"] = "on"
    return client.post(IMPORT, data)


def _confirm(client, response, only_valid=False):
    data = {
        "source": response.context["source"].code,
        "payload": response.context["payload"],
        "confirm": "on",
    }
    if only_valid:
        data["only_valid"] = "on"
    return client.post(IMPORT, data)


def test_the_import_page_shows_the_form(web, finance1, source):
    response = web(finance1).get(IMPORT)
    assert response.status_code == 200
    assert b"Check the file (dry run)" in response.content


def test_a_dry_run_writes_nothing_and_reports_every_problem_per_line(
    web, finance1, source, merchant
):
    # given
    upload = _csv(
        _good(merchant, 1),
        f"ch_2,{merchant.pk},,refund,5.00,0.001,HKD,{_when()},nope\n",  # line 3: three problems
        _good(merchant, 3),
        "ch_4,,MXX0,payment,1.00,,HKD,2026-10-01T10:00:00,\n",  # line 5: mid, naive time
    )
    # when
    response = _dry_run(web(finance1), upload)
    # then
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.rows, report.valid, report.invalid_rows) == (4, 2, 2)
    assert not report.written
    assert {(e.line, e.column) for e in report.errors} == {
        (3, "amount"),
        (3, "fee"),
        (3, "payer_email"),
        (5, "mid"),
        (5, "occurred_at"),
    }
    assert len(report.preview) == 2
    html = response.content.decode()
    assert 'data-testid="import-errors"' in html
    assert "Some rows are invalid" in html
    assert not Transaction.objects.exists()


def test_confirming_writes_the_rows_through_the_service(web, finance1, source, merchant):
    # given
    client = web(finance1)
    dry = _dry_run(client, _csv(*(_good(merchant, n) for n in range(1, 4))))
    assert dry.context["report"].valid == 3
    assert not Transaction.objects.exists()
    # when
    done = _confirm(client, dry)
    # then
    report = done.context["report"]
    assert report.written
    assert (report.created, report.already_present) == (3, 0)
    assert Transaction.objects.filter(source=source).count() == 3
    assert Transaction.objects.get(external_id="ch_2").amount == Decimal("2.50")
    entry = batch_entries().get()
    assert entry.actor == finance1
    assert entry.origin.startswith("web ")
    assert proven_ids(entry) == sorted(Transaction.objects.values_list("pk", flat=True))
    assert b"3 stored" in done.content


def test_importing_the_same_file_again_counts_already_present(web, finance1, source, merchant):
    client = web(finance1)
    lines = [_good(merchant, n) for n in range(1, 4)]
    _confirm(client, _dry_run(client, _csv(*lines)))
    dry = _dry_run(client, _csv(*lines, _good(merchant, 9)))
    assert dry.context["report"].already_present == 3
    done = _confirm(client, dry)
    assert (done.context["report"].created, done.context["report"].already_present) == (1, 3)
    assert Transaction.objects.count() == 4


def test_bad_rows_block_the_import_unless_only_valid_is_chosen(web, finance1, source, merchant):
    client = web(finance1)
    lines = [_good(merchant, 1), f"ch_bad,{merchant.pk},,payment,1.001,,HKD,{_when()},\n"]
    refused = _confirm(client, _dry_run(client, _csv(*lines)))
    assert not refused.context["report"].written
    assert not Transaction.objects.exists()

    dry = _dry_run(client, _csv(*lines), only_valid=True)
    done = _confirm(client, dry, only_valid=True)
    report = done.context["report"]
    assert report.written
    assert report.created == 1
    assert [(e.line, e.column) for e in report.errors] == [(3, "amount")]
    assert list(Transaction.objects.values_list("external_id", flat=True)) == ["ch_1"]


def test_a_large_file_is_written_in_batches(web, finance1, source, merchant):
    # given
    lines = [_good(merchant, n) for n in range(1, 2502)]
    client = web(finance1)
    # when
    done = _confirm(client, _dry_run(client, _csv(*lines)))
    # then: three batches of at most a thousand rows, one entry each
    assert done.context["report"].created == 2501
    assert Transaction.objects.count() == 2501
    entries = list(batch_entries())
    assert [e.changes["rows"][1] for e in entries] == [1000, 1000, 501]
    proven = [pk for e in entries for pk in proven_ids(e)]
    assert sorted(proven) == sorted(Transaction.objects.values_list("pk", flat=True))


def test_a_tampered_confirmation_is_refused(web, finance1, source, merchant):
    client = web(finance1)
    dry = _dry_run(client, _csv(_good(merchant, 1)))
    response = client.post(
        IMPORT,
        {"source": "acme-pay", "payload": dry.context["payload"] + "x", "confirm": "on"},
    )
    assert response.status_code == 400
    assert not Transaction.objects.exists()


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("external_id,merchant,kind,amount,currency,occurred_at,colour\n", "Unknown column"),
        ("external_id,merchant,kind,amount,occurred_at\n", "currency"),
        ("external_id,kind,amount,currency,occurred_at\n", "merchant / mid"),
    ],
)
def test_a_file_with_wrong_columns_is_refused(web, finance1, source, header, fragment):
    response = _dry_run(web(finance1), _csv("x\n", header=header))
    assert response.status_code == 400
    assert fragment in " ".join(response.context["form"].errors["file"])


def test_files_over_the_limits_are_refused(web, finance1, source, merchant, monkeypatch):
    client = web(finance1)
    monkeypatch.setattr(forms_ledger, "MAX_ROWS", 2)
    response = _dry_run(client, _csv(*(_good(merchant, n) for n in range(3))))
    assert response.status_code == 400
    assert "At most 2 rows" in response.content.decode()
    monkeypatch.setattr(forms_ledger, "MAX_BYTES", 100)
    response = _dry_run(client, _csv(*(_good(merchant, n) for n in range(2))))
    assert response.status_code == 400
    assert "10 MB" in response.content.decode()


def test_a_file_that_is_not_utf8_is_refused(web, finance1, source):
    upload = SimpleUploadedFile("t.csv", (HEADER + "ch_1,é\n").encode("latin-1"))
    response = _dry_run(web(finance1), upload)
    assert response.status_code == 400
    assert "UTF-8" in response.content.decode()


def test_an_inactive_source_cannot_be_chosen(web, finance1, source, merchant):
    source.is_active = False
    source.save()
    response = _dry_run(web(finance1), _csv(_good(merchant, 1)))
    assert response.status_code == 400
    assert "source" in response.context["form"].errors
