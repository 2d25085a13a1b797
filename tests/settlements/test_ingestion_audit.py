"""Ledger ingestion puts every batch of new transactions on the audit trail: one entry,
one INSERT, proving exactly the created rows by a keyed digest."""

import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import audit, selectors, trail, trailcheck
from core.models import AuditEntry
from core.services import system_user
from merchants import services as merchant_services
from merchants.models import Merchant
from settlements.models import Transaction
from settlements.services import ingestion
from tests.factories.merchants import MerchantFactory
from tests.factories.settlements import TransactionItemFactory, TransactionSourceFactory
from tests.settlements.ledger_trail import (
    batch_entries,
    proven_ids,
    stored_digest,
    stored_objects_digest,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def merchant(admin1):
    merchant = MerchantFactory(status=Merchant.Status.ONBOARDING)
    return merchant_services.merchant_activate(merchant=merchant, actor=admin1, reason="test")


def test_a_webhook_batch_writes_one_entry_per_batch_covering_its_new_rows_in_one_insert(
    merchant,
):
    # given
    source = TransactionSourceFactory(code="acme-pay", name="Acme Pay")
    system = system_user()
    items = [
        TransactionItemFactory(merchant=merchant.pk, card_fingerprint=f"fp-secret-{n}")
        for n in range(30)
    ]
    since = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    # when
    with (
        audit.acting_as(system, origin="webhook acme-pay"),
        CaptureQueriesContext(connection) as queries,
    ):
        report = ingestion.transactions_ingest(actor=system, source=source, items=items)
    # then: one entry, written by one INSERT (SQLite); PostgreSQL streams it by COPY
    assert report.created == 30
    inserts = [q for q in queries.captured_queries if 'INSERT INTO "core_auditentry"' in q["sql"]]
    assert len(inserts) == (0 if connection.vendor == "postgresql" else 1)
    entry = AuditEntry.objects.filter(id__gt=since).get()
    assert entry.action == "create"
    assert entry.model == "settlements.transaction"
    assert entry.object_label == "30 transactions from acme-pay"
    assert entry.changes == {
        "rows": [None, 30],
        "source": [None, "acme-pay"],
        "merchants": [None, 1],
    }
    assert entry.merchant_id == merchant.pk
    assert (entry.actor_kind, entry.actor_label) == ("api_key", "acme-pay")
    assert entry.origin == "webhook acme-pay"
    # it proves exactly the created rows
    assert entry.row_model == "settlements.transaction"
    assert proven_ids(entry) == sorted(report.created_ids)
    assert sorted(report.created_ids) == sorted(Transaction.objects.values_list("pk", flat=True))
    assert (entry.row_first, entry.row_last) == (min(report.created_ids), max(report.created_ids))
    # and names no secret: the rows are proven by digest, not copied
    assert "fp-secret" not in json.dumps([entry.changes, entry.object_label, entry.reason])
    trail.seal()
    assert trailcheck.verify().intact


def _change_behind_the_service(pk: int, **values) -> None:
    """An UPDATE the application never makes. On PostgreSQL the ledger's
    trigger refuses it; as a superuser with triggers switched off it lands."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        try:
            Transaction.objects.filter(pk=pk).update(**values)
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = DEFAULT")


def test_the_batch_digest_is_recomputed_from_the_stored_rows_and_a_changed_amount_breaks_it(
    merchant, finance1
):
    # given
    source = TransactionSourceFactory(code="acme-pay", name="Acme Pay")
    items = [TransactionItemFactory(merchant=merchant.pk, amount=f"{n}.50") for n in range(1, 6)]
    report = ingestion.transactions_ingest(actor=finance1, source=source, items=items)
    entry = batch_entries().get()
    # then: the digest taken at ingestion is that of the rows as stored
    assert entry.row_digest == stored_digest(entry)
    assert entry.row_digest == stored_objects_digest(entry)
    # when: one amount is changed in the database
    changed = report.created_ids[2]
    _change_behind_the_service(changed, amount=Decimal("3.51"))
    # then
    assert Transaction.objects.get(pk=changed).amount == Decimal("3.51")
    assert stored_digest(entry) != entry.row_digest
    assert stored_objects_digest(entry) != entry.row_digest


def test_items_already_in_the_ledger_make_no_new_entries(merchant, finance1):
    source = TransactionSourceFactory(code="acme-pay", name="Acme Pay")
    items = [TransactionItemFactory(merchant=merchant.pk) for _ in range(3)]
    ingestion.transactions_ingest(actor=finance1, source=source, items=items)
    before = AuditEntry.objects.count()
    report = ingestion.transactions_ingest(actor=finance1, source=source, items=items)
    assert report.already_present == 3
    assert AuditEntry.objects.count() == before


def test_a_transactions_record_history_finds_the_batch_entry_that_proves_it(
    merchant, finance1, compliance1
):
    source = TransactionSourceFactory(code="span-pay")
    first = ingestion.transactions_ingest(
        actor=finance1, source=source, items=[TransactionItemFactory(merchant=merchant.pk)]
    )
    second = ingestion.transactions_ingest(
        actor=finance1,
        source=source,
        items=[TransactionItemFactory(merchant=merchant.pk) for _ in range(5)],
    )
    entries = list(batch_entries(reason__startswith="ingest span-pay"))
    assert len(entries) == 2

    def history_of(pk: int) -> list[int]:
        return list(
            selectors.audit_record_history(
                user=compliance1, model="settlements.Transaction", object_id=str(pk)
            ).values_list("id", flat=True)
        )

    assert history_of(first.created_ids[0]) == [entries[0].pk]
    for pk in (second.created_ids[0], second.created_ids[2], second.created_ids[-1]):
        assert history_of(pk) == [entries[1].pk]
    assert history_of(max(second.created_ids) + 1) == []
    assert history_of(0) == []
