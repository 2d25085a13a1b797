"""Two OS processes send the same transactions at once: each is stored once.

The unique (source, external_id) decides, not a read before the write: the
second INSERT ... ON CONFLICT waits for the first transaction and then skips
its rows. Real processes with their own connections, as two gunicorn workers
or a worker and the webhook would be.
"""

import hashlib
import hmac
import json
import multiprocessing
import time

import pytest
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from core import audit, trail, trailcheck
from core import services as core_services
from merchants import services as merchant_services
from merchants.models import Merchant
from settlements.models import Transaction, TransactionSource, WebhookEvent
from settlements.services import ingestion
from tests.conftest import wait_for
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory
from tests.factories.settlements import TransactionItemFactory, TransactionSourceFactory
from tests.settlements.ledger_trail import batch_entries, proven_ids

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

FORK = multiprocessing.get_context("fork")
SECRET = "whsec_concurrency_test"


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs two PostgreSQL connections; set DATABASE_URL to run")


@pytest.fixture
def source():
    return TransactionSourceFactory(code="race-pay", webhook_secret=SECRET)


@pytest.fixture
def merchant():
    admin = UserFactory(username="race_admin")
    merchant = MerchantFactory(status=Merchant.Status.ONBOARDING)
    return merchant_services.merchant_activate(merchant=merchant, actor=admin, reason="test")


def _ledger_ids(source) -> list[int]:
    return sorted(Transaction.objects.filter(source=source).values_list("pk", flat=True))


def _verified_after_sealing(timeout: float = 60.0) -> trailcheck.Verification:
    """Seal what the processes committed, then check the trail.

    The sealer covers the transactions older than the oldest one still
    running anywhere on the server (transaction ids are cluster-wide), so a
    test run beside this one on the same PostgreSQL may hold sealing back for
    a moment: seal again until nothing is pending or the timeout passes.
    """

    def nothing_pending() -> bool:
        trail.seal()
        return trailcheck.verify().pending == 0

    wait_for(nothing_pending, timeout=timeout, interval=0.5)
    return trailcheck.verify()


def _release_connections() -> None:
    """Close every connection and pool, so that a fork shares no socket."""
    connections.close_all()
    for conn in connections.all():
        close_pool = getattr(conn, "close_pool", None)
        if close_pool is not None:
            close_pool()


def _run_in_two_processes(target, *args) -> list:
    _release_connections()
    barrier, results = FORK.Barrier(2), FORK.Queue()
    processes = [
        FORK.Process(target=target, args=(barrier, results, index, *args)) for index in range(2)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert [p.exitcode for p in processes] == [0, 0], outcomes
    return outcomes


def _ingest_child(barrier, results, index: int, source_id: int, batches: list[list]) -> None:
    # Nothing is open after _release_connections; this only makes sure.
    connections.close_all()
    try:
        source = TransactionSource.objects.get(pk=source_id)
        system = core_services.system_user()
        barrier.wait(timeout=20)
        with audit.acting_as(system, origin="test race"):
            report = ingestion.transactions_ingest(
                actor=system, source=source, items=batches[index]
            )
        results.put(("ok", report.created, report.already_present, report.rejected))
    except Exception as exc:  # reported to the parent, which fails the test
        results.put(("error", repr(exc), 0, 0))
    finally:
        _release_connections()


def test_the_same_batch_from_two_processes_is_stored_once(source, merchant):
    # given
    items = [TransactionItemFactory(merchant=merchant.pk) for _ in range(200)]
    # when
    outcomes = _run_in_two_processes(_ingest_child, source.pk, [items, items])
    # then
    assert [o[0] for o in outcomes] == ["ok", "ok"], outcomes
    assert sum(o[1] for o in outcomes) == 200
    assert sum(o[2] for o in outcomes) == 200
    assert sum(o[3] for o in outcomes) == 0
    assert Transaction.objects.filter(source=source).count() == 200
    # one batch entry, from the process that created the rows, proving them all
    entry = batch_entries().get()
    assert proven_ids(entry) == _ledger_ids(source)
    assert entry.changes["rows"] == [None, 200]
    verification = _verified_after_sealing()
    assert verification.intact, verification.problems
    assert verification.pending == 0  # every committed entry is sealed


def test_overlapping_batches_from_two_processes_do_not_deadlock(source, merchant):
    # Half of each batch is shared, in the opposite order: rows are inserted
    # sorted, so the processes wait for each other instead of deadlocking.
    shared = [TransactionItemFactory(merchant=merchant.pk) for _ in range(100)]
    first = shared + [TransactionItemFactory(merchant=merchant.pk) for _ in range(100)]
    second = [TransactionItemFactory(merchant=merchant.pk) for _ in range(100)] + shared[::-1]
    outcomes = _run_in_two_processes(_ingest_child, source.pk, [first, second])
    assert [o[0] for o in outcomes] == ["ok", "ok"], outcomes
    assert sum(o[1] for o in outcomes) == 300
    assert sum(o[2] for o in outcomes) == 100
    assert Transaction.objects.filter(source=source).count() == 300
    # one entry per process, each for the rows it created, together every row once
    entries = list(batch_entries())
    assert sorted(e.changes["rows"][1] for e in entries) == sorted(o[1] for o in outcomes)
    proven = [pk for e in entries for pk in proven_ids(e)]
    assert sorted(proven) == _ledger_ids(source)
    verification = _verified_after_sealing()
    assert verification.intact, verification.problems
    assert verification.pending == 0  # every committed entry is sealed


def _webhook_child(barrier, results, index: int, body: bytes, signature: str) -> None:
    connections.close_all()
    try:
        client = Client()
        barrier.wait(timeout=20)
        response = client.post(
            reverse("gateway-webhook"),
            body,
            content_type="application/json",
            headers={"PayCRM-Signature": signature},
        )
        results.put(("ok", response.status_code, response.json()["status"], 0))
    except Exception as exc:
        results.put(("error", repr(exc), "", 0))
    finally:
        _release_connections()


def test_one_event_delivered_twice_at_once_is_processed_once(source, merchant):
    # given
    item = TransactionItemFactory(merchant=merchant.pk)
    body = json.dumps(
        {"id": "evt_race", "source": "race-pay", "type": "transaction", "data": item}
    ).encode()
    t = int(time.time())
    digest = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    core_services.system_user()  # created up front: not part of the race
    # when
    outcomes = _run_in_two_processes(_webhook_child, body, f"t={t},v1={digest}")
    # then
    assert sorted((o[1], o[2]) for o in outcomes) == [(200, "duplicate"), (201, "created")]
    assert Transaction.objects.filter(source=source).count() == 1
    assert WebhookEvent.objects.filter(source=source, event_id="evt_race").count() == 1
    assert proven_ids(batch_entries().get()) == _ledger_ids(source)
    verification = _verified_after_sealing()
    assert verification.intact, verification.problems
    assert verification.pending == 0  # every committed entry is sealed
