"""The ledger's merchant and source references hold without per-row foreign keys.

Migration settlements/0007 replaced the two foreign keys (a lookup per row)
with a check per INSERT statement on PostgreSQL and a trigger per row on
SQLite; PostgreSQL also refuses deleting or renumbering a merchant or source
the ledger names. These tests go around the services with raw SQL, as an
import script or a mistaken hand in psql would.
"""

import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction

from core.models import User
from merchants.models import Merchant
from settlements.models import Transaction, TransactionSource
from tests.factories.merchants import MerchantFactory
from tests.factories.settlements import TransactionFactory, TransactionSourceFactory

COLUMNS = (
    "source_id, external_id, merchant_id, kind, status, amount, fee, cost, currency, "
    "payment_method, card_country, customer_ref, payer_email, payer_phone, card_fingerprint, "
    "occurred_at, created_at, updated_at"
)


def _copy_of(row: Transaction, *, external_id: str, merchant_id=None, source_id=None) -> None:
    """Insert a copy of ``row`` under another external id (and merchant or source)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO settlements_transaction ({COLUMNS}) "  # noqa: S608
            f"SELECT %s, %s, %s, {COLUMNS.split(', ', 3)[3]} "
            "FROM settlements_transaction WHERE id = %s",
            [source_id or row.source_id, external_id, merchant_id or row.merchant_id, row.pk],
        )


def _refused(write, match: str) -> None:
    with pytest.raises(IntegrityError, match=match), transaction.atomic():
        write()


@pytest.mark.django_db
def test_a_row_naming_a_missing_merchant_or_source_is_refused():
    row = TransactionFactory()
    missing = (Merchant.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    _refused(lambda: _copy_of(row, external_id="x1", merchant_id=missing), "does not exist")
    _refused(lambda: _copy_of(row, external_id="x2", source_id=missing), "does not exist")
    # an existing merchant and source are fine
    other = MerchantFactory()
    _copy_of(row, external_id="x3", merchant_id=other.pk)
    assert Transaction.objects.filter(external_id="x3", merchant=other).exists()
    assert not Transaction.objects.filter(external_id__in=["x1", "x2"]).exists()


@pytest.mark.django_db
def test_one_statement_with_one_bad_row_among_many_writes_none():
    row = TransactionFactory()
    missing = (Merchant.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    rest = COLUMNS.split(", ", 3)[3]
    one = f"SELECT source_id, %s, %s, {rest} FROM settlements_transaction WHERE id = %s"  # noqa: S608
    params = []
    for n in range(5):
        params += [f"many-{n}", missing if n == 3 else row.merchant_id, row.pk]
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO settlements_transaction ({COLUMNS}) " + " UNION ALL ".join([one] * 5),
            params,
        )
    assert not Transaction.objects.filter(external_id__startswith="many-").exists()


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the parent guards are PostgreSQL triggers; set DATABASE_URL to run")


def _sql(statement: str, params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.mark.django_db
@pytest.mark.usefixtures("postgres_only")
def test_a_merchant_or_source_the_ledger_names_cannot_be_deleted_or_renumbered():
    row = TransactionFactory()
    merchant, source = row.merchant_id, row.source_id
    for statement in (
        "DELETE FROM merchants_merchant WHERE id = %s",
        "UPDATE merchants_merchant SET id = id + 100000 WHERE id = %s",
    ):
        _refused(lambda s=statement: _sql(s, [merchant]), "named by ledger transactions")
    for statement in (
        "DELETE FROM settlements_transactionsource WHERE id = %s",
        "UPDATE settlements_transactionsource SET id = id + 100000 WHERE id = %s",
    ):
        _refused(lambda s=statement: _sql(s, [source]), "named by ledger transactions")
    assert Merchant.objects.filter(pk=merchant).exists()
    assert TransactionSource.objects.filter(pk=source).exists()
    # other changes to them go through
    _sql("UPDATE merchants_merchant SET trading_name = 'Renamed' WHERE id = %s", [merchant])
    unused = TransactionSourceFactory()
    _sql("DELETE FROM settlements_transactionsource WHERE id = %s", [unused.pk])
    assert not TransactionSource.objects.filter(pk=unused.pk).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres_only")
def test_a_merchant_deleted_while_an_insert_naming_it_is_open_waits_and_is_refused():
    owner = User.objects.create(username="owner-race")
    merchant = MerchantFactory(owner=owner)
    source = TransactionSourceFactory()
    row = TransactionFactory(merchant=merchant, source=source)
    other = MerchantFactory(owner=owner)
    outcome: list = []

    def delete_other() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SET lock_timeout = '20s'")
                cursor.execute("DELETE FROM merchants_merchant WHERE id = %s", [other.pk])
            outcome.append("deleted")
        except Exception as exc:  # reported below
            outcome.append(exc)
        finally:
            connections["default"].close()

    with transaction.atomic():
        _copy_of(row, external_id="race-1", merchant_id=other.pk)  # holds FOR KEY SHARE
        deleter = threading.Thread(target=delete_other)
        deleter.start()
        deleter.join(timeout=1)
        assert deleter.is_alive()  # waiting for the insert's lock
    deleter.join(timeout=30)
    assert len(outcome) == 1
    assert isinstance(outcome[0], IntegrityError), outcome
    assert "named by ledger transactions" in str(outcome[0])
    assert Merchant.objects.filter(pk=other.pk).exists()
    assert Transaction.objects.filter(external_id="race-1", merchant=other).exists()
