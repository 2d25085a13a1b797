"""The keyed digest an entry proves its rows with (``trail.values_digest``).

Ingestion digests the values it has just written; ``--records`` digests the
same rows read back from the database. Both must agree exactly, and any
change to a row, however it is arranged, must change the digest.
"""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import models
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from core import auditkeys, trail
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

KEY = auditkeys.current_id


class _Field(models.Field):
    """A stand-in column: only its attname, type and primary key matter."""


def _fields(*specs):
    out = []
    for name, field in specs:
        field.attname = name
        field.model = Transaction
        out.append(field)
    return out


TEXT_PAIR = _fields(
    ("id", models.BigAutoField(primary_key=True)),
    ("a", models.CharField()),
    ("b", models.CharField()),
)


def test_moving_characters_between_columns_changes_the_digest():
    one = trail.values_digest(TEXT_PAIR, [(1, "ab", "c")], KEY())
    other = trail.values_digest(TEXT_PAIR, [(1, "a", "bc")], KEY())
    assert one
    assert one != other


def test_moving_characters_between_rows_changes_the_digest():
    one = trail.values_digest(TEXT_PAIR, [(1, "ab", "x"), (2, "c", "x")], KEY())
    other = trail.values_digest(TEXT_PAIR, [(1, "a", "x"), (2, "bc", "x")], KEY())
    assert one != other


def test_empty_text_and_null_differ_but_an_all_null_column_is_left_out():
    with_empty = trail.values_digest(TEXT_PAIR, [(1, "a", "")], KEY())
    with_null = trail.values_digest(TEXT_PAIR, [(1, "a", None)], KEY())
    assert with_empty != with_null
    # A nullable column added later: rows written before it digest the same.
    narrow = _fields(("id", models.BigAutoField(primary_key=True)), ("a", models.CharField()))
    assert with_null == trail.values_digest(narrow, [(1, "a")], KEY())


def test_rows_are_taken_in_primary_key_order_whatever_the_order_given():
    rows = [(2, "b", "y"), (1, "a", "x")]
    assert trail.values_digest(TEXT_PAIR, rows, KEY()) == trail.values_digest(
        TEXT_PAIR, rows[::-1], KEY()
    )


def test_values_read_as_the_database_returns_them_digest_as_written():
    fields = _fields(
        ("id", models.BigAutoField(primary_key=True)),
        ("amount", models.DecimalField(max_digits=20, decimal_places=4)),
        ("at", models.DateTimeField()),
        ("flag", models.BooleanField()),
    )
    hong_kong = dt.timezone(dt.timedelta(hours=8))
    written = [(7, Decimal("12.5"), dt.datetime(2026, 3, 1, 20, 0, tzinfo=hong_kong), True)]
    read_back = [(7, Decimal("12.5000"), dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC), True)]
    assert trail.values_digest(fields, written, KEY()) == trail.values_digest(
        fields, read_back, KEY()
    )
    later = read_back[0][2] + dt.timedelta(microseconds=1)
    one_microsecond_later = [(7, Decimal("12.5"), later, True)]
    assert trail.values_digest(fields, one_microsecond_later, KEY()) != trail.values_digest(
        fields, written, KEY()
    )
    one_minor_unit_more = [(7, Decimal("12.5001"), *written[0][2:])]
    assert trail.values_digest(fields, one_minor_unit_more, KEY()) != trail.values_digest(
        fields, written, KEY()
    )


def test_the_digest_needs_the_key():
    rows = [(1, "a", "b")]
    mine = trail.values_digest(TEXT_PAIR, rows, KEY())
    with override_settings(AUDIT_SIGNING_KEY="", SECRET_KEY="another secret key for this test"):
        assert trail.values_digest(TEXT_PAIR, rows, auditkeys.current_id()) != mine
    assert trail.values_digest(TEXT_PAIR, rows, "unknownkey00") == ""


@pytest.mark.django_db
def test_ingestion_digest_equals_the_digest_of_the_stored_rows(finance1):
    """The digest ingestion computes from the values it sends is the one
    ``--records`` recomputes from the rows as PostgreSQL or SQLite stored them."""
    merchant = MerchantFactory()
    source = TransactionSourceFactory(code="digest-pay")
    items = [TransactionItemFactory(merchant=merchant.pk) for _ in range(30)]
    items[0]["amount"] = "10"  # no decimals: stored as 10.0000
    items[1]["occurred_at"] = "2026-03-01T20:00:00.123456+08:00"
    items[2]["customer_ref"] = "客戶-zoë"  # not ASCII
    report = ingestion.transactions_ingest(actor=finance1, source=source, items=items)
    assert report.created == 30
    (entry,) = batch_entries(reason__startswith="ingest digest-pay")
    assert proven_ids(entry) == sorted(report.created_ids)
    assert entry.row_digest == stored_digest(entry) == stored_objects_digest(entry)


def _encoded_in_parts(fields, parts) -> str:
    encoding = trail.rows_encoding(fields)
    for part in parts:
        encoding.add(part)
    return trail.encoding_digest(encoding, KEY())


def test_rows_given_in_parts_digest_as_the_same_rows_given_at_once():
    rows = [(n, f"a{n}", None if n % 3 else f"b{n}") for n in range(1, 11)]
    whole = trail.values_digest(TEXT_PAIR, rows, KEY())
    # in primary key order, part after part; empty parts change nothing
    assert _encoded_in_parts(TEXT_PAIR, [rows[:4], [], rows[4:9], rows[9:]]) == whole
    # a column NULL in every row of one part but not of another
    assert _encoded_in_parts(TEXT_PAIR, [rows[1:3], rows[3:]]) == trail.values_digest(
        TEXT_PAIR, rows[1:], KEY()
    )
    # parts out of order are sorted as values_digest sorts
    assert _encoded_in_parts(TEXT_PAIR, [rows[5:], rows[:5]]) == whole
    assert _encoded_in_parts(TEXT_PAIR, [rows[:6], rows[4:5]]) == trail.values_digest(
        TEXT_PAIR, [*rows[:6], rows[4]], KEY()
    )
    # nothing given: no digest, as values_digest of no rows
    assert _encoded_in_parts(TEXT_PAIR, [[], []]) == trail.values_digest(TEXT_PAIR, [], KEY()) == ""


def test_where_a_column_is_null_is_kept_across_parts():
    one = _encoded_in_parts(TEXT_PAIR, [[(1, "a", None)], [(2, "b", "x")]])
    other = _encoded_in_parts(TEXT_PAIR, [[(1, "a", "x")], [(2, "b", None)]])
    assert one != other


@given(
    st.decimals(
        min_value=Decimal("-1e16") + 1, max_value=Decimal("1e16") - 1, allow_nan=False, places=6
    )
    | st.sampled_from([Decimal("-0"), Decimal("0E-9"), Decimal("1E+15"), Decimal("-0.00005")])
)
def test_amounts_are_coded_as_four_places_rounded_half_up_in_plain_digits(value):
    # The text digests were made with from the start (``record/3``): a
    # faster way to write it must not change a stored entry's digest.
    field = Transaction._meta.get_field("amount")
    expected = format(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP), "f")
    assert trail._coder(field)(value) == expected
