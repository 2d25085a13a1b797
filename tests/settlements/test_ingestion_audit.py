"""Ledger ingestion puts every new transaction on the audit trail, one INSERT per batch."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import audit, trail
from core.models import AuditEntry
from core.services import system_user
from merchants import services as merchant_services
from merchants.models import Merchant
from settlements.models import Transaction
from settlements.services import ingestion
from tests.factories.merchants import MerchantFactory
from tests.factories.settlements import TransactionItemFactory, TransactionSourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def merchant(admin1):
    merchant = MerchantFactory(status=Merchant.Status.ONBOARDING)
    return merchant_services.merchant_activate(merchant=merchant, actor=admin1, reason="test")


def test_a_webhook_batch_writes_one_entry_per_new_row_in_one_insert(merchant):
    source = TransactionSourceFactory(code="acme-pay", name="Acme Pay")
    system = system_user()
    items = [
        TransactionItemFactory(merchant=merchant.pk, card_fingerprint=f"fp-secret-{n}")
        for n in range(30)
    ]
    since = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with (
        audit.acting_as(system, origin="webhook acme-pay"),
        CaptureQueriesContext(connection) as queries,
    ):
        report = ingestion.transactions_ingest(actor=system, source=source, items=items)
    assert report.created == 30
    inserts = [q for q in queries.captured_queries if 'INSERT INTO "core_auditentry"' in q["sql"]]
    # one INSERT for the batch (SQLite); PostgreSQL streams the batch by COPY
    assert len(inserts) == (0 if connection.vendor == "postgresql" else 1)
    entries = list(AuditEntry.objects.filter(id__gt=since).order_by("id"))
    assert len(entries) == 30
    stored = dict(Transaction.objects.values_list("external_id", "pk"))
    for entry in entries:
        assert entry.action == "create"
        assert entry.model == "settlements.transaction"
        assert entry.merchant_id == merchant.pk
        assert entry.actor_kind == "api_key"
        assert entry.actor_label == "acme-pay"
        assert entry.origin == "webhook acme-pay"
    by_label = {e.object_label: e for e in entries}
    for item in items:
        entry = by_label[f"acme-pay {item['external_id']}"]
        assert entry.object_id == str(stored[item["external_id"]])
        assert entry.changes["amount"] == [None, "100.00"]
        assert entry.changes["card_fingerprint"] == [None, trail.MASK]
    trail.seal()
    assert trail.verify().intact


def test_items_already_in_the_ledger_make_no_new_entries(merchant, finance1):
    source = TransactionSourceFactory(code="acme-pay", name="Acme Pay")
    items = [TransactionItemFactory(merchant=merchant.pk) for _ in range(3)]
    ingestion.transactions_ingest(actor=finance1, source=source, items=items)
    before = AuditEntry.objects.count()
    report = ingestion.transactions_ingest(actor=finance1, source=source, items=items)
    assert report.already_present == 3
    assert AuditEntry.objects.count() == before
