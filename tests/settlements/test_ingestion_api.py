"""Ledger API: batch ingestion (every door's rights) and the cursor-paginated list."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from rest_framework.test import APIClient

from merchants import services as merchant_services
from merchants.models import Merchant
from settlements.models import Transaction
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory
from tests.factories.settlements import (
    TransactionFactory,
    TransactionItemFactory,
    TransactionSourceFactory,
)
from tests.settlements.ledger_trail import batch_entries, proven_ids

pytestmark = pytest.mark.django_db

BATCH = "/api/v1/transactions/batch/"
LIST = "/api/v1/transactions/"
HK = ZoneInfo("Asia/Hong_Kong")


@pytest.fixture
def source():
    return TransactionSourceFactory(code="acme-pay")


@pytest.fixture
def merchant(admin1):
    merchant = MerchantFactory(status=Merchant.Status.ONBOARDING)
    return merchant_services.merchant_activate(merchant=merchant, actor=admin1, reason="test")


def _items(merchant, n, **fields):
    return [TransactionItemFactory(merchant=merchant.pk, **fields) for _ in range(n)]


# ---------------------------------------------------------------------------
# Batch
# ---------------------------------------------------------------------------


def test_finance_sends_a_batch_and_gets_counts_and_field_errors(api, finance1, source, merchant):
    # given
    items = [*_items(merchant, 3), TransactionItemFactory(merchant=merchant.pk, amount=1.5)]
    items.append(
        TransactionItemFactory(merchant=merchant.pk, kind="refund", amount="-1", currency="HKX")
    )
    # when
    response = api(finance1).post(BATCH, {"source": "acme-pay", "items": items}, format="json")
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["already_present"], body["rejected"]) == (3, 0, 2)
    assert {(e["index"], e["field"]) for e in body["errors"]} == {
        (3, "amount"),
        (4, "currency"),
    }
    assert all(e["message"] for e in body["errors"])
    assert Transaction.objects.count() == 3
    entry = batch_entries().get()
    assert entry.actor == finance1
    assert entry.origin.startswith("api ")
    assert proven_ids(entry) == sorted(Transaction.objects.values_list("pk", flat=True))


def test_the_same_batch_sent_twice_is_stored_once(api, finance1, source, merchant):
    client = api(finance1)
    payload = {"source": "acme-pay", "items": _items(merchant, 25)}
    client.post(BATCH, payload, format="json")
    response = client.post(BATCH, payload, format="json")
    assert response.json() == {"created": 0, "already_present": 25, "rejected": 0, "errors": []}
    assert Transaction.objects.count() == 25


def test_admins_may_ingest_too(api, admin1, source, merchant):
    response = api(admin1).post(
        BATCH, {"source": "acme-pay", "items": _items(merchant, 1)}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["created"] == 1


@pytest.mark.parametrize("role", ["sales", "compliance", "risk", "onboarding"])
def test_users_without_add_transaction_get_403_on_batch(api, source, merchant, role):
    user = UserFactory(roles=[role])
    response = api(user).post(
        BATCH, {"source": "acme-pay", "items": _items(merchant, 1)}, format="json"
    )
    assert response.status_code == 403
    assert not Transaction.objects.exists()


def test_anonymous_callers_get_403_on_batch(source, merchant):
    response = APIClient().post(
        BATCH, {"source": "acme-pay", "items": _items(merchant, 1)}, format="json"
    )
    assert response.status_code == 403


def test_an_unknown_or_inactive_source_is_a_400_naming_source(api, finance1, source, merchant):
    client = api(finance1)
    response = client.post(BATCH, {"source": "nope", "items": []}, format="json")
    assert response.status_code == 400
    assert "source" in response.json()
    source.is_active = False
    source.save()
    response = client.post(
        BATCH, {"source": "acme-pay", "items": _items(merchant, 1)}, format="json"
    )
    assert response.status_code == 400
    assert "source" in response.json()
    assert not Transaction.objects.exists()


def test_more_than_a_thousand_items_is_a_400_naming_items(api, finance1, source, merchant):
    items = _items(merchant, 1001)
    response = api(finance1).post(BATCH, {"source": "acme-pay", "items": items}, format="json")
    assert response.status_code == 400
    assert "items" in response.json()
    assert not Transaction.objects.exists()


@pytest.mark.parametrize("body", [{"source": "acme-pay"}, {"source": "acme-pay", "items": {}}])
def test_items_must_be_a_list(api, finance1, source, body):
    response = api(finance1).post(BATCH, body, format="json")
    assert response.status_code == 400
    assert "items" in response.json()


# ---------------------------------------------------------------------------
# List and retrieve
# ---------------------------------------------------------------------------


def _at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 10, day, hour, 0, tzinfo=HK)


def test_the_list_is_newest_first_with_money_as_strings(api, finance1, source, merchant):
    # given
    older = TransactionFactory(source=source, merchant=merchant, occurred_at=_at(1))
    yen = TransactionFactory(
        source=source,
        merchant=merchant,
        occurred_at=_at(3),
        currency="JPY",
        amount=Decimal("2500"),
        fee=Decimal("75"),
        cost=Decimal("0"),
    )
    newer = TransactionFactory(source=source, merchant=merchant, occurred_at=_at(5))
    # when
    body = api(finance1).get(LIST).json()
    # then
    assert [r["id"] for r in body["results"]] == [newer.pk, yen.pk, older.pk]
    first = body["results"][0]
    assert (first["amount"], first["fee"], first["cost"]) == ("100.00", "2.50", "1.00")
    assert (first["source"], first["merchant"], first["kind"]) == (
        "acme-pay",
        merchant.pk,
        "payment",
    )
    assert first["merchant_name"] == str(merchant)
    assert (body["results"][1]["amount"], body["results"][1]["fee"]) == ("2500", "75")


def test_cursor_pages_cover_every_row_once_even_with_equal_times(api, finance1, source, merchant):
    # given: 7 transactions at one instant and 5 at others
    same = [
        TransactionFactory(source=source, merchant=merchant, occurred_at=_at(9)) for _ in "1234567"
    ]
    others = [
        TransactionFactory(source=source, merchant=merchant, occurred_at=_at(d))
        for d in (2, 4, 6, 8, 10)
    ]
    client = api(finance1)
    # when
    seen, url = [], f"{LIST}?page_size=3"
    while url:
        body = client.get(url).json()
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
    # then
    assert len(seen) == len(set(seen)) == 12
    assert seen[0] == others[-1].pk  # the 10th, newest
    assert seen[1:8] == sorted((t.pk for t in same), reverse=True)


def test_the_list_filters(api, finance1, source, merchant, admin1):
    # given
    other_source = TransactionSourceFactory(code="other-pay")
    other_merchant = merchant_services.merchant_activate(
        merchant=MerchantFactory(status=Merchant.Status.ONBOARDING), actor=admin1, reason="t"
    )
    a = TransactionFactory(source=source, merchant=merchant, occurred_at=_at(1), external_id="ch_a")
    b = TransactionFactory(
        source=other_source,
        merchant=other_merchant,
        occurred_at=_at(2, 23),
        kind="refund",
        amount=Decimal("-5"),
        currency="USD",
        customer_ref="cus_777",
    )
    c = TransactionFactory(source=source, merchant=merchant, occurred_at=_at(3, 0))
    client = api(finance1)

    def ids(query: str) -> list[int]:
        return [r["id"] for r in client.get(f"{LIST}?{query}").json()["results"]]

    # then
    assert ids(f"merchant={other_merchant.pk}") == [b.pk]
    assert ids("kind=refund") == [b.pk]
    assert ids("source=other-pay") == [b.pk]
    assert ids("currency=usd") == [b.pk]
    assert ids("date_from=2026-10-02&date_to=2026-10-02") == [b.pk]  # whole local day
    assert ids("date_from=2026-10-03") == [c.pk]
    assert ids("q=ch_a") == [a.pk]
    assert ids("q=777") == [b.pk]


def test_retrieve_one_transaction(api, finance1, source, merchant):
    tx = TransactionFactory(source=source, merchant=merchant)
    response = api(finance1).get(f"{LIST}{tx.pk}/")
    assert response.status_code == 200
    assert response.json()["external_id"] == tx.external_id
    assert api(finance1).get(f"{LIST}{tx.pk + 1000}/").status_code == 404


def test_users_without_view_transaction_get_403(api, sales1, source, merchant):
    tx = TransactionFactory(source=source, merchant=merchant)
    client = api(sales1)
    assert client.get(LIST).status_code == 403
    assert client.get(f"{LIST}{tx.pk}/").status_code == 403


@pytest.mark.parametrize("count", [3, 40])
def test_the_list_runs_a_constant_number_of_queries(
    api, finance1, source, merchant, admin1, count, django_assert_num_queries
):
    merchants = [merchant] + [
        merchant_services.merchant_activate(
            merchant=MerchantFactory(status=Merchant.Status.ONBOARDING), actor=admin1, reason="t"
        )
        for _ in range(2)
    ]
    for n in range(count):
        TransactionFactory(source=source, merchant=merchants[n % 3])
    client = api(finance1)
    client.get(LIST)
    # session, user, device, user and group permissions, the page of rows
    # (merchant and source joined), session save in a savepoint: any page size
    with django_assert_num_queries(9):
        response = client.get(f"{LIST}?page_size=50")
    assert len(response.json()["results"]) == count
