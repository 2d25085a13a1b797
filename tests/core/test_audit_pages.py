"""The audit trail pages: list with filters and keyset pages, one entry, one
record's history, the merchant 360 tab and the two exports. Compliance reads
them; everyone else gets 403 at every door."""

import csv
import datetime as dt
import io
import json

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core import evidence, services, trail
from core.models import AuditEntry
from merchants import services as merchant_services
from merchants.models import Contact
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db

ACCOUNT_NUMBER = "004-987-654321098"
HK = dt.timezone(dt.timedelta(hours=8))


def _entries(response) -> list[AuditEntry]:
    return list(response.context["entries"])


def _csv_rows(response) -> tuple[str, list[dict]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return text, list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def two_merchants(sales1, sales2):
    """Entries for two merchants by two people: creates, grants, an update, a contact."""
    mine = MerchantFactory(owner=sales1, legal_name="Golden Dragon Trading Limited")
    merchant_services.merchant_update(
        merchant=mine, actor=sales1, trading_name="Golden Dragon", reason="rebrand"
    )
    merchant_services.contact_create(actor=sales1, merchant=mine, name="Ada Wong", title="CFO")
    theirs = MerchantFactory(owner=sales2, legal_name="Silver Harbour Limited")
    merchant_services.merchant_update(
        merchant=theirs, actor=sales2, trading_name="Silver", reason="shorter"
    )
    return mine, theirs


# ---------------------------------------------------------------------------
# Doors
# ---------------------------------------------------------------------------


def test_compliance_sees_the_trail_and_the_verification_panel(web, compliance1, two_merchants):
    response = web(compliance1).get(reverse("core:audit"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Golden Dragon" in page
    assert "Silver" in page
    assert 'data-testid="verification-panel"' in page
    assert "Never verified" in page
    assert evidence.fingerprint() in page
    assert "manage.py verify_audit_trail" in page


def test_panel_shows_the_last_verification(web, compliance1, two_merchants):
    result = services.audit_verify(actor=compliance1)
    response = web(compliance1).get(reverse("core:audit"))
    panel = response.content.decode()
    assert "Chain intact" in panel
    verification = response.context["verification"]
    assert verification["intact"] is True
    assert verification["result"]["entries"] == result.entries
    assert verification["result"]["pending"] == result.pending


def test_sales_gets_403_at_every_door(web, sales1, two_merchants):
    mine, _theirs = two_merchants
    entry = AuditEntry.objects.filter(merchant_id=mine.pk).first()
    client = web(sales1)
    for url in (
        reverse("core:audit"),
        reverse("core:audit_entry", args=[entry.pk]),
        reverse("core:audit_record", args=["merchants.merchant", mine.pk]),
        reverse("core:audit_merchant_tab", args=[mine.pk]),
    ):
        assert client.get(url).status_code == 403, url
    for name in ("core:audit_export_csv", "core:audit_export_bundle"):
        assert client.post(reverse(name), {"merchant": mine.pk}).status_code == 403, name
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.EXPORT).exists()


def test_exports_refuse_get(web, compliance1):
    client = web(compliance1)
    assert client.get(reverse("core:audit_export_csv")).status_code == 405
    assert client.get(reverse("core:audit_export_bundle")).status_code == 405


def test_navigation_offers_the_trail_to_compliance_only(web, compliance1, sales1):
    def nav(user):
        items = web(user).get(reverse("home")).context["nav_items"]
        return {str(i["label"]): i for i in items}

    audit = nav(compliance1)["Audit trail"]
    assert (audit["url"], audit["icon"]) == (reverse("core:audit"), "shield-check")
    assert "Audit trail" not in nav(sales1)


# ---------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------


def test_merchant_filter_keeps_the_merchant_and_its_records(web, compliance1, two_merchants):
    mine, _theirs = two_merchants
    response = web(compliance1).get(reverse("core:audit"), {"merchant": mine.pk})
    entries = _entries(response)
    assert {e.merchant_id for e in entries} == {mine.pk}
    assert {"merchants.merchant", "merchants.contact"} <= {e.model for e in entries}
    assert "Silver" not in response.content.decode()
    # the form shows the filter it applied
    assert f'value="{mine.pk}"' in response.content.decode()


def test_action_actor_and_model_filters(web, compliance1, sales2, two_merchants):
    _mine, theirs = two_merchants
    client = web(compliance1)

    updates = _entries(client.get(reverse("core:audit"), {"action": "update", "merchant": ""}))
    assert updates
    assert {e.action for e in updates} == {"update"}

    by_sales2 = _entries(client.get(reverse("core:audit"), {"actor": "sales2"}))
    assert by_sales2
    assert {e.actor_id for e in by_sales2} == {sales2.pk}
    assert {e.merchant_id for e in by_sales2 if e.merchant_id} == {theirs.pk}

    contacts = _entries(client.get(reverse("core:audit"), {"model": "merchants.contact"}))
    assert [e.object_label for e in contacts] == [str(Contact.objects.get())]


def test_date_range_filter_uses_local_days(web, compliance1, sales1):
    # given: one merchant made on 1 March (local), one on 3 March
    with time_machine.travel(dt.datetime(2026, 3, 1, 9, 0, tzinfo=HK), tick=False):
        early = MerchantFactory(owner=sales1)
    with time_machine.travel(dt.datetime(2026, 3, 3, 23, 30, tzinfo=HK), tick=False):
        late = MerchantFactory(owner=sales1)
    client = web(compliance1)

    def merchants(**params):
        entries = _entries(client.get(reverse("core:audit"), params))
        return {e.merchant_id for e in entries if e.merchant_id}

    assert merchants(date_from="2026-03-01", date_to="2026-03-01") == {early.pk}
    assert merchants(date_from="2026-03-02", date_to="2026-03-03") == {late.pk}
    assert merchants(date_from="2026-03-01", date_to="2026-03-03") == {early.pk, late.pk}
    assert merchants(date_to="2026-02-28") == set()


def test_free_text_search(web, compliance1, two_merchants):
    mine, theirs = two_merchants
    client = web(compliance1)
    found = _entries(client.get(reverse("core:audit"), {"q": "rebrand"}))  # a reason
    assert [(e.action, e.merchant_id) for e in found] == [("update", mine.pk)]
    found = _entries(client.get(reverse("core:audit"), {"q": "silver"}))  # a record's name
    assert {e.merchant_id for e in found} == {theirs.pk}


def test_htmx_filter_swaps_only_the_results(web, compliance1, two_merchants):
    mine, _theirs = two_merchants
    response = web(compliance1).get(
        reverse("core:audit"),
        {"merchant": mine.pk},
        headers={"HX-Request": "true", "HX-Target": "audit-results"},
    )
    body = response.content.decode()
    assert "<html" not in body
    assert 'data-testid="audit-table"' in body
    # the exports carry the filters the results show
    assert f'name="merchant" value="{mine.pk}"' in body


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------


def _bulk(n: int, **fields) -> None:
    now = timezone.now()
    # Through the trail's writer: an entry must arrive with its id and MAC.
    trail.append_many(
        [
            AuditEntry(
                **{
                    "created_at": now,
                    "actor_label": "loader",
                    "action": AuditEntry.Action.UPDATE,
                    "model": "merchants.merchant",
                    "object_id": str(i),
                    "object_label": f"Merchant {i}",
                    "merchant_id": i,
                    "origin": "command load",
                    "changes": {"status": ["lead", "onboarding"], "mcc": ["5812", "5814"]},
                    **fields,
                }
            )
            for i in range(n)
        ]
    )


def test_older_pages_carry_the_filters_and_never_repeat(web, compliance1):
    for i in range(120):  # every other entry a creation, which the filter leaves out
        _bulk(1, action="create" if i % 2 == 0 else "update")
    client = web(compliance1)
    url = f"{reverse('core:audit')}?action=update&model=merchants.merchant"
    seen: list[int] = []
    pages = 0
    while url:
        response = client.get(url)
        ids = [e.pk for e in _entries(response)]
        seen += ids
        pages += 1
        older = response.context["older_url"]
        if older:
            assert "action=update" in older
        assert ('data-testid="newest-page"' in response.content.decode()) == (pages > 1)
        url = reverse("core:audit") + older if older else ""
    assert pages == 2
    assert len(seen) == len(set(seen)) == 60
    assert seen == sorted(seen, reverse=True)
    updates = AuditEntry.objects.filter(action="update", model="merchants.merchant")
    assert set(updates.values_list("id", flat=True)) == set(seen)


@pytest.mark.parametrize("entries", [5, 60])
def test_list_runs_a_constant_number_of_queries(
    web, compliance1, entries, django_assert_num_queries
):
    _bulk(entries)
    services.audit_verify(actor=compliance1)
    client = web(compliance1)
    client.get(reverse("core:audit"))
    # session (read, save), user, device, permissions (2), the page of entries,
    # the last verification, notifications, the user's groups in the navbar
    with django_assert_num_queries(12):
        response = client.get(reverse("core:audit"))
    assert response.status_code == 200
    # the actor filter looks the account up once
    with django_assert_num_queries(13):
        client.get(reverse("core:audit"), {"actor": "loader", "action": "update"})
    assert len(_entries(response)) == min(AuditEntry.objects.count(), 50)


def test_entry_page_shows_the_diff_and_the_chain(web, compliance1, two_merchants):
    mine, _theirs = two_merchants
    update = AuditEntry.objects.get(merchant_id=mine.pk, action="update")
    client = web(compliance1)

    response = client.get(reverse("core:audit_entry", args=[update.pk]))
    page = response.content.decode()
    assert response.context["diff"] == [("trading_name", mine.trading_name, "Golden Dragon")]
    assert "rebrand" in page
    assert update.mac in page
    assert "historicalmerchant" in page  # the history row it proves
    # Sealed once its transaction and every older one ended: inside this
    # test's transaction that happens on SQLite only (one writer at a time).
    trail.seal()
    seal = trail.seal_of(update)
    page = client.get(reverse("core:audit_entry", args=[update.pk])).content.decode()
    if connection.vendor == "postgresql":
        assert seal is None
        assert "Not sealed yet" in page
    else:
        assert "Not sealed yet" not in page
        assert f'<span class="font-monospace">{seal.seq}</span>' in page


def test_entry_diff_shows_before_and_after(web, compliance1, sales1):
    merchant = MerchantFactory(owner=sales1, trading_name="Lotus Tea")
    merchant_services.merchant_update(
        merchant=merchant, actor=sales1, trading_name="Lotus Teahouse"
    )
    update = AuditEntry.objects.get(merchant_id=merchant.pk, action="update")
    response = web(compliance1).get(reverse("core:audit_entry", args=[update.pk]))
    assert response.context["diff"] == [("trading_name", "Lotus Tea", "Lotus Teahouse")]
    page = response.content.decode()
    assert "Lotus Tea<" in page
    assert "Lotus Teahouse<" in page


def test_unknown_entry_is_404(web, compliance1):
    assert web(compliance1).get(reverse("core:audit_entry", args=[999_999])).status_code == 404


def test_record_page_shows_the_history_oldest_first(web, compliance1, sales1):
    merchant = MerchantFactory(owner=sales1, trading_name="Lotus Tea")
    merchant_services.merchant_update(
        merchant=merchant, actor=sales1, trading_name="Lotus Teahouse"
    )
    merchant_services.merchant_update(
        merchant=merchant, actor=sales1, trading_name="Lotus", reason="shorter name"
    )
    response = web(compliance1).get(
        reverse("core:audit_record", args=["merchants.merchant", merchant.pk])
    )
    entries = list(response.context["page"])
    assert [e.pk for e in entries] == sorted(e.pk for e in entries)
    assert entries[0].action == "create"
    updates = [e.diff for e in entries if e.action == "update"]
    assert updates == [
        [("trading_name", "Lotus Tea", "Lotus Teahouse")],
        [("trading_name", "Lotus Teahouse", "Lotus")],
    ]
    page = response.content.decode()
    assert "shorter name" in page
    assert page.index("Lotus Teahouse<") < page.index("shorter name")
    assert response.context["object_label"] == "Lotus"


def test_field_named_like_a_dict_method_still_shows(web, compliance1):
    entry = AuditEntry(
        action="update",
        model="onboarding.informationrequest",
        object_id="1",
        changes={"items": [["a"], ["a", "b"]], "note": [None, "x"]},
    )
    trail.append_many([entry])
    response = web(compliance1).get(reverse("core:audit_entry", args=[entry.pk]))
    assert response.context["diff"] == [("items", ["a"], ["a", "b"]), ("note", None, "x")]
    assert response.status_code == 200


# ---------------------------------------------------------------------------
# Merchant 360 tab
# ---------------------------------------------------------------------------


def test_merchant_page_offers_the_audit_tab_to_compliance_without_querying_it(
    web, compliance1, sales1, two_merchants
):
    mine, _theirs = two_merchants
    with CaptureQueriesContext(connection) as queries:
        page = web(compliance1).get(mine.get_absolute_url()).content.decode()
    assert 'data-testid="tab-audit"' in page
    assert reverse("core:audit_merchant_tab", args=[mine.pk]) in page
    assert not any("core_auditentry" in q["sql"] for q in queries.captured_queries)

    assert (
        'data-testid="tab-audit"' not in web(sales1).get(mine.get_absolute_url()).content.decode()
    )


def test_merchant_tab_lists_the_merchants_entries(web, compliance1, two_merchants):
    mine, _theirs = two_merchants
    response = web(compliance1).get(reverse("core:audit_merchant_tab", args=[mine.pk]))
    entries = response.context["entries"]
    assert entries
    assert {e.merchant_id for e in entries} == {mine.pk}
    assert "merchants.contact" in {e.model for e in entries}
    page = response.content.decode()
    assert f"{reverse('core:audit')}?merchant={mine.pk}" in page
    assert "Full audit trail" in page
    assert "<html" not in page


# ---------------------------------------------------------------------------
# Exports
# ---------------------------------------------------------------------------


def test_csv_export_has_the_filtered_entries_without_secrets_and_is_recorded(
    web, compliance1, sales1, two_merchants
):
    mine, _theirs = two_merchants
    merchant_services.bank_account_create(
        actor=UserFactory(username="admin1", roles=["admin"]),
        merchant=mine,
        account_number=ACCOUNT_NUMBER,
        account_holder="Golden Dragon Trading Limited",
        bank_name="Harbour Bank",
        country="HK",
        currency="HKD",
    )
    expected = set(AuditEntry.objects.filter(merchant_id=mine.pk).values_list("id", flat=True))

    response = web(compliance1).post(reverse("core:audit_export_csv"), {"merchant": mine.pk})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-trail-')
    text, rows = _csv_rows(response)
    assert {int(r["id"]) for r in rows} == expected
    assert {r["merchant_id"] for r in rows} == {str(mine.pk)}
    bank = [r for r in rows if r["model"] == "merchants.bankaccount" and r["action"] == "create"]
    assert len(bank) == 1
    assert json.loads(bank[0]["changes"])["account_number"] == [None, trail.MASK]
    for secret in (ACCOUNT_NUMBER, ACCOUNT_NUMBER.replace("-", "")):
        assert secret not in text
    export = AuditEntry.objects.get(action=AuditEntry.Action.EXPORT)
    assert export.actor_id == compliance1.pk
    assert export.model == "core.auditentry"
    assert export.changes == {
        "filters": [None, f"merchant={mine.pk}"],
        "entries": [None, len(expected)],
    }
    assert export.origin.startswith("web ")


def test_csv_export_of_everything_leaves_out_its_own_entry(web, compliance1, two_merchants):
    response = web(compliance1).post(reverse("core:audit_export_csv"))
    _text, rows = _csv_rows(response)
    export = AuditEntry.objects.get(action=AuditEntry.Action.EXPORT)
    assert str(export.pk) not in {r["id"] for r in rows}
    assert len(rows) == AuditEntry.objects.exclude(pk=export.pk).count()
    assert export.changes["filters"] == [None, "all"]


def test_signed_bundle_verifies_and_is_recorded(web, compliance1, two_merchants):
    mine, _theirs = two_merchants
    sealed = AuditEntry.objects.filter(merchant_id=mine.pk).count()

    response = web(compliance1).post(reverse("core:audit_export_bundle"), {"merchant": mine.pk})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-evidence-')
    check = evidence.verify_bundle(response.content)
    assert check.ok, check.problems
    assert check.entries == sealed
    bundle = json.loads(response.content)
    assert {e["merchant_id"] for e in bundle["entries"]} == {mine.pk}
    assert bundle["generated_by"] == "compliance1"
    export = AuditEntry.objects.get(action=AuditEntry.Action.EXPORT)
    assert export.changes["entries"] == [None, sealed]


def test_bundle_over_the_limit_is_refused_with_a_message(
    web, compliance1, two_merchants, monkeypatch
):
    mine, _theirs = two_merchants
    monkeypatch.setattr(evidence, "BUNDLE_LIMIT", 2)
    client = web(compliance1)
    response = client.post(reverse("core:audit_export_bundle"), {"merchant": mine.pk})
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('core:audit')}?merchant={mine.pk}"
    page = client.get(response["Location"]).content.decode()
    assert "More than 2 entries match these filters" in page
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.EXPORT).exists()
