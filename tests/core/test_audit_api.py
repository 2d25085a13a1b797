"""/api/v1/audit/entries/: compliance reads the trail with the page's filters."""

import pytest
from django.db import connection

from core import trail
from core.models import AuditEntry
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit/entries/"


def _bulk(n: int, **fields) -> None:
    # Through the trail's writer: an entry must arrive with its id and MAC.
    trail.append_many(
        [
            AuditEntry(
                action="update",
                model="merchants.merchant",
                object_id=str(i),
                object_label=f"Bulk {i}",
                **fields,
            )
            for i in range(n)
        ]
    )


def test_compliance_lists_the_trail_newest_first_with_filters(api, compliance1, sales1):
    mine = MerchantFactory(
        owner=sales1, legal_name="Harbour Noodles Limited", trading_name="Harbour Noodles Limited"
    )
    MerchantFactory(owner=sales1, legal_name="Other Trading Limited")
    trail.seal()
    client = api(compliance1)
    everything = client.get(URL).json()["results"]
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True)
    only = client.get(URL, {"merchant": mine.pk}).json()["results"]
    assert only
    assert {e["merchant_id"] for e in only} == {mine.pk}
    created = client.get(URL, {"merchant": mine.pk, "action": "create"}).json()["results"]
    [entry] = created
    assert entry["object_label"] == "Harbour Noodles Limited"
    assert entry["changes"]["legal_name"] == [None, "Harbour Noodles Limited"]
    # sealed once its transaction ended: on PostgreSQL not inside this test's
    assert entry["sealed"] is (connection.vendor == "sqlite")
    assert entry["mac"] == AuditEntry.objects.get(pk=entry["id"]).mac
    assert len(entry["mac"]) == 64
    by_text = client.get(URL, {"q": "harbour noodles"}).json()["results"]
    assert {e["object_label"] for e in by_text} == {"Harbour Noodles Limited"}
    detail = client.get(f"{URL}{entry['id']}/").json()
    assert detail["mac"] == entry["mac"]


def test_cursor_pages_do_not_repeat_or_skip(api, compliance1):
    _bulk(7)
    client = api(compliance1)
    first = client.get(URL, {"page_size": 3, "model": "merchants.merchant"}).json()
    seen = [e["id"] for e in first["results"]]
    page = first
    while page["next"]:
        page = client.get(page["next"]).json()
        seen += [e["id"] for e in page["results"]]
    assert len(seen) == len(set(seen)) == 7
    assert "count" not in first  # no COUNT(*) over millions


@pytest.mark.parametrize("n", [5, 60])
def test_list_runs_a_constant_number_of_queries(api, compliance1, n, django_assert_num_queries):
    _bulk(n)
    client = api(compliance1)
    # 9 as before, plus the head seal once for every entry's "sealed"
    with django_assert_num_queries(10):
        response = client.get(URL, {"model": "merchants.merchant"})
    assert len(response.json()["results"]) == min(n, 50)


def test_others_are_refused(api, sales1, finance1, admin1):
    MerchantFactory(owner=sales1)
    entry = AuditEntry.objects.first()
    for user in (sales1, finance1, admin1):
        client = api(user)
        assert client.get(URL).status_code == 403
        assert client.get(f"{URL}{entry.pk}/").status_code == 403


def test_entries_cannot_be_written_through_the_api(api, compliance1, sales1):
    MerchantFactory(owner=sales1)
    entry = AuditEntry.objects.first()
    client = api(compliance1)
    assert client.post(URL, {"action": "create"}, format="json").status_code == 405
    for method in (client.put, client.patch, client.delete):
        assert method(f"{URL}{entry.pk}/", {}, format="json").status_code == 405
    assert AuditEntry.objects.filter(pk=entry.pk, object_label=entry.object_label).exists()


def test_the_endpoint_is_in_the_schema(api, compliance1):
    schema = api(compliance1).get("/api/schema/", {"format": "json"}).json()
    listing = schema["paths"]["/api/v1/audit/entries/"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {
        "actor",
        "action",
        "model",
        "object_id",
        "merchant",
        "date_from",
        "date_to",
        "q",
    } <= names
    assert "/api/v1/audit/entries/{id}/" in schema["paths"]


def _at(when, n: int, **fields) -> list[AuditEntry]:
    entries = [
        AuditEntry(created_at=when, action="update", model="m.m", object_id=str(i), **fields)
        for i in range(n)
    ]
    trail.append_many(entries)
    return entries


def test_a_date_range_keeps_every_entry_of_its_days_and_no_other(compliance1):
    import datetime as dt

    from django.utils import timezone

    from core.selectors import AuditFilters, audit_entry_list

    day = dt.date(2026, 3, 10)
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    end = start + dt.timedelta(days=2)
    before = _at(start - dt.timedelta(microseconds=1), 2)
    # a batch's entries share one time; the first of them and the last
    # moment of the range both belong
    inside = _at(start, 5) + _at(end - dt.timedelta(microseconds=1), 3)
    after = _at(end, 2)
    qs = audit_entry_list(
        user=compliance1, filters=AuditFilters(date_from=day, date_to=day + dt.timedelta(days=1))
    )
    assert set(qs.values_list("id", flat=True)) == {e.pk for e in inside}
    only_from = audit_entry_list(user=compliance1, filters=AuditFilters(date_from=day))
    assert set(only_from.values_list("id", flat=True)) == {e.pk for e in inside + after}
    only_to = audit_entry_list(user=compliance1, filters=AuditFilters(date_to=day))
    assert set(only_to.values_list("id", flat=True)) == {e.pk for e in before + inside[:5]}
    empty = audit_entry_list(user=compliance1, filters=AuditFilters(date_from=dt.date(2030, 1, 1)))
    assert not empty.exists()


def test_the_actor_filter_finds_people_and_webhook_sources(compliance1, sales1):
    from core.selectors import AuditFilters, audit_entry_list

    mine = _at("2026-03-10T10:00:00+00:00", 2, actor=sales1, actor_label="sales1")
    hooks = _at("2026-03-10T10:00:00+00:00", 3, actor_label="acme-pay", actor_kind="api_key")
    people = audit_entry_list(user=compliance1, filters=AuditFilters(actor="sales1"))
    assert set(people.values_list("id", flat=True)) == {e.pk for e in mine}
    source = audit_entry_list(user=compliance1, filters=AuditFilters(actor="acme-pay"))
    assert set(source.values_list("id", flat=True)) == {e.pk for e in hooks}
    assert not audit_entry_list(user=compliance1, filters=AuditFilters(actor="nobody")).exists()
