"""transactions_ingest: every rule per item, idempotent storage, the batch's audit entry, signal."""

import io
import math
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.validators import validate_email
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import audit, trail
from merchants import services as merchant_services
from merchants.models import Merchant
from settlements import signals
from settlements.models import Transaction
from settlements.services import ingestion, ledger_rules
from tests.factories.merchants import MerchantFactory
from tests.factories.settlements import (
    TransactionFactory,
    TransactionItemFactory,
    TransactionSourceFactory,
)
from tests.settlements.ledger_trail import batch_entries, proven_ids, stored_digest

pytestmark = pytest.mark.django_db


@pytest.fixture
def source():
    return TransactionSourceFactory(code="acme-pay", name="Acme Pay")


@pytest.fixture
def merchant(admin1):
    merchant = MerchantFactory(status=Merchant.Status.ONBOARDING)
    return merchant_services.merchant_activate(merchant=merchant, actor=admin1, reason="test")


def _ingest(actor, source, items):
    return ingestion.transactions_ingest(actor=actor, source=source, items=items)


def _item(merchant, **overrides):
    return TransactionItemFactory(merchant=merchant.pk, **overrides)


def test_valid_items_are_stored_with_every_field(finance1, source, merchant):
    # given
    occurred = "2026-10-15T14:30:00+08:00"
    items = [
        _item(
            merchant,
            external_id="pay_1",
            amount="1250.50",
            fee="31.26",
            cost="15.01",
            payment_method="alipay",
            card_country="hk",
            customer_ref="cus_9",
            payer_email="payer@example.com",
            payer_phone="+852 5555 0000",
            card_fingerprint="fp_abc",
            occurred_at=occurred,
        ),
        {
            "external_id": "ref_1",
            "mid": merchant.mid,
            "kind": "refund",
            "status": "pending",
            "amount": -300,
            "currency": "usd",
            "occurred_at": "2026-10-16T01:00:00Z",
        },
    ]
    # when
    report = _ingest(finance1, source, items)
    # then
    assert (report.created, report.already_present, report.rejected) == (2, 0, 0)
    assert report.errors == []
    payment = Transaction.objects.get(external_id="pay_1")
    assert report.created_ids == [payment.pk, Transaction.objects.get(external_id="ref_1").pk]
    assert payment.source == source
    assert payment.merchant == merchant
    assert (payment.kind, payment.status) == ("payment", "settled")
    assert (payment.amount, payment.fee, payment.cost) == (
        Decimal("1250.50"),
        Decimal("31.26"),
        Decimal("15.01"),
    )
    assert (payment.currency, payment.payment_method, payment.card_country.code) == (
        "HKD",
        "alipay",
        "HK",
    )
    assert (payment.customer_ref, payment.payer_email, payment.payer_phone) == (
        "cus_9",
        "payer@example.com",
        "+852 5555 0000",
    )
    assert payment.card_fingerprint == "fp_abc"
    assert payment.occurred_at == timezone.datetime.fromisoformat(occurred)
    refund = Transaction.objects.get(external_id="ref_1")
    assert refund.merchant == merchant  # found by MID
    assert (refund.status, refund.amount, refund.currency) == ("pending", Decimal("-300"), "USD")
    assert (refund.fee, refund.cost) == (Decimal("0"), Decimal("0"))


def _now_plus(minutes: int) -> str:
    return (timezone.now() + timedelta(minutes=minutes)).isoformat()


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"external_id": None}, "external_id", "required"),
        ({"external_id": "   "}, "external_id", "required"),
        ({"external_id": "x" * 101}, "external_id", "100 characters"),
        ({"external_id": ["a"]}, "external_id", "text"),
        ({"amout": "1.00"}, "amout", "Unknown field"),
        ({"merchant": None}, "merchant", "MID"),
        ({"merchant": "twelve"}, "merchant", "whole number"),
        ({"merchant": 1.5}, "merchant", "whole number"),
        ({"merchant": 987654}, "merchant", "No merchant"),
        ({"mid": "MXX99999999"}, "mid", "No merchant with this MID"),
        ({"kind": None}, "kind", "required"),
        ({"kind": "sale"}, "kind", "payment, refund"),
        ({"kind": ["payment"]}, "kind", "payment, refund"),
        ({"status": "done"}, "status", "settled"),
        ({"amount": None}, "amount", "required"),
        ({"amount": 12.5}, "amount", "as strings"),
        ({"amount": "12,50"}, "amount", "not a number"),
        ({"amount": "NaN"}, "amount", "not a number"),
        ({"amount": "Infinity"}, "amount", "not a number"),
        ({"amount": True}, "amount", "string"),
        ({"amount": "12.345"}, "amount", "2 decimal places"),
        ({"amount": "10000000000000000"}, "amount", "too large"),
        ({"amount": "100.5", "currency": "JPY", "fee": "3", "cost": "1"}, "amount", "0 decimal"),
        ({"fee": "0.001"}, "fee", "2 decimal places"),
        ({"cost": "0.125"}, "cost", "2 decimal places"),
        ({"cost": 0.1}, "cost", "as strings"),
        ({"currency": None}, "currency", "required"),
        ({"currency": "ABC"}, "currency", "ISO 4217"),
        ({"currency": 344}, "currency", "ISO 4217"),
        ({"kind": "refund", "amount": "10.00"}, "amount", "zero or negative"),
        ({"kind": "chargeback", "amount": "0.01"}, "amount", "zero or negative"),
        ({"kind": "payment", "amount": "-0.01"}, "amount", "must not be negative"),
        ({"kind": "chargeback_reversal", "amount": "-5"}, "amount", "must not be negative"),
        ({"occurred_at": None}, "occurred_at", "required"),
        ({"occurred_at": "2026-10-15T14:30:00"}, "occurred_at", "offset"),
        ({"occurred_at": "2026-10-15"}, "occurred_at", "offset"),
        ({"occurred_at": "15/10/2026 14:30"}, "occurred_at", "ISO 8601"),
        ({"occurred_at": 1760000000}, "occurred_at", "ISO 8601"),
        ({"occurred_at": _now_plus(60)}, "occurred_at", "future"),
        ({"payment_method": "cash"}, "payment_method", "alipay"),
        ({"card_country": "ZZ"}, "card_country", "ISO 3166"),
        ({"card_country": "HKG"}, "card_country", "ISO 3166"),
        ({"payer_email": "not-an-address"}, "payer_email", "e-mail"),
        ({"customer_ref": "c" * 101}, "customer_ref", "100 characters"),
        ({"payer_phone": "1" * 31}, "payer_phone", "30 characters"),
        ({"card_fingerprint": "f" * 65}, "card_fingerprint", "64 characters"),
        ({"external_id": "tx\x1f1"}, "external_id", "Control characters"),
        ({"customer_ref": "line\nbreak"}, "customer_ref", "Control characters"),
    ],
)
def test_each_rule_refuses_the_item_naming_its_field(
    finance1, source, merchant, changes, field, fragment
):
    # given
    item = _item(merchant, external_id="tx_checked")
    for name, value in changes.items():
        if value is None:
            item.pop(name, None)
        else:
            item[name] = value
    if "mid" in changes:
        item.pop("merchant")
    # when
    report = _ingest(finance1, source, [item])
    # then
    assert (report.created, report.rejected) == (0, 1)
    assert [(e.index, e.field) for e in report.errors] == [(0, field)]
    assert fragment in report.errors[0].message
    assert not Transaction.objects.exists()


def test_text_that_is_not_ascii_but_has_no_control_character_is_stored(finance1, source, merchant):
    # A no-break space and a line separator are not "printable" to Python,
    # but neither is a control character.
    item = _item(merchant, external_id="tx_nbsp", customer_ref="客戶\u00a0A\u2028B")
    report = _ingest(finance1, source, [item, _item(merchant, external_id="tx_del\x7f")])
    assert (report.created, [(e.index, e.field) for e in report.errors]) == (
        1,
        [(1, "external_id")],
    )
    assert Transaction.objects.get().customer_ref == "客戶\u00a0A\u2028B"


def test_a_merchant_id_and_a_mid_of_different_merchants_are_refused(finance1, source, merchant):
    other = merchant_services.merchant_activate(
        merchant=MerchantFactory(status=Merchant.Status.ONBOARDING), actor=finance1, reason="t"
    )
    report = _ingest(finance1, source, [_item(merchant, mid=other.mid)])
    assert [(e.field, e.message) for e in report.errors] == [
        ("mid", "This MID belongs to another merchant than the id given.")
    ]


def test_every_problem_of_an_item_is_reported_at_once(finance1, source, merchant):
    item = {
        "external_id": "",
        "merchant": merchant.pk,
        "kind": "refund",
        "amount": "5.00",
        "fee": "0.001",
        "currency": "HKD",
        "occurred_at": "yesterday",
        "payer_email": "nope",
        "colour": "red",
    }
    report = _ingest(finance1, source, [item])
    assert report.rejected == 1
    assert {e.field for e in report.errors} == {
        "external_id",
        "amount",
        "fee",
        "occurred_at",
        "payer_email",
        "colour",
    }


def test_an_item_that_is_not_an_object_is_refused(finance1, source, merchant):
    report = _ingest(finance1, source, ["tx_1", _item(merchant)])
    assert (report.created, report.rejected) == (1, 1)
    assert report.errors[0][:2] == (0, "non_field_errors")


def test_amounts_within_the_currency_scale_are_accepted_exactly(finance1, source, merchant):
    items = [
        _item(merchant, external_id="a", amount="12.500"),  # trailing zero, still cents
        _item(merchant, external_id="b", amount=250, currency="JPY", fee="3", cost="0"),
        _item(merchant, external_id="c", amount="1.125", currency="KWD", fee="0.001"),
        _item(merchant, external_id="d", kind="refund", amount="0"),
        _item(merchant, external_id="e", occurred_at=_now_plus(4)),  # clock drift
    ]
    report = _ingest(finance1, source, items)
    assert (report.created, report.rejected) == (5, 0), report.errors
    amounts = dict(Transaction.objects.values_list("external_id", "amount"))
    assert amounts == {
        "a": Decimal("12.5"),
        "b": Decimal("250"),
        "c": Decimal("1.125"),
        "d": Decimal("0"),
        "e": Decimal("100"),
    }


def test_valid_items_are_stored_beside_rejected_ones(finance1, source, merchant):
    items = [
        _item(merchant, external_id="ok_1"),
        _item(merchant, external_id="bad_1", amount="1.001"),
        _item(merchant, external_id="ok_2"),
        _item(merchant, external_id="bad_2", kind="void"),
    ]
    report = _ingest(finance1, source, items)
    assert (report.created, report.already_present, report.rejected) == (2, 0, 2)
    assert [e.index for e in report.errors] == [1, 3]
    assert set(Transaction.objects.values_list("external_id", flat=True)) == {"ok_1", "ok_2"}


def test_more_than_a_thousand_items_are_refused_as_a_whole(finance1, source, merchant):
    items = [_item(merchant) for _ in range(1001)]
    with pytest.raises(ValidationError) as exc:
        _ingest(finance1, source, items)
    assert "items" in exc.value.message_dict
    assert not Transaction.objects.exists()


def test_a_replayed_batch_stores_each_transaction_once(finance1, source, merchant):
    # given
    items = [_item(merchant) for _ in range(120)]
    # when
    first = _ingest(finance1, source, items)
    again = _ingest(finance1, source, items)
    # then
    assert (first.created, first.already_present) == (120, 0)
    assert (again.created, again.already_present, again.rejected) == (0, 120, 0)
    assert again.created_ids == []
    assert Transaction.objects.count() == 120
    # the replay created nothing, so it wrote no entry of its own
    entry = batch_entries().get()
    assert proven_ids(entry) == sorted(first.created_ids)


def test_a_transaction_already_in_the_ledger_counts_as_present(finance1, source, merchant):
    TransactionFactory(source=source, merchant=merchant, external_id="known")
    report = _ingest(finance1, source, [_item(merchant, external_id="known"), _item(merchant)])
    assert (report.created, report.already_present) == (1, 1)
    assert Transaction.objects.count() == 2


def test_the_same_external_id_from_another_source_is_another_transaction(
    finance1, source, merchant
):
    other = TransactionSourceFactory(code="other-pay")
    _ingest(finance1, source, [_item(merchant, external_id="same")])
    report = _ingest(finance1, other, [_item(merchant, external_id="same")])
    assert report.created == 1
    assert Transaction.objects.filter(external_id="same").count() == 2


def test_within_a_batch_the_first_item_wins_and_repeats_are_already_present(
    finance1, source, merchant
):
    items = [
        _item(merchant, external_id="dup", amount="10.00"),
        _item(merchant, external_id="dup", amount="99.00"),
        _item(merchant, external_id="dup", amount="1.234"),  # invalid: rejected, not a repeat
    ]
    report = _ingest(finance1, source, items)
    assert (report.created, report.already_present, report.rejected) == (1, 1, 1)
    assert Transaction.objects.get(external_id="dup").amount == Decimal("10.00")


def test_the_batch_entry_names_the_actor_origin_and_reason_and_proves_the_created_rows(
    finance1, source, merchant
):
    # given
    items = [_item(merchant, external_id=f"h{n}", amount=f"{n}.25") for n in range(3)]
    # when
    with audit.acting_as(finance1, origin="api 10.0.0.7"):
        report = _ingest(finance1, source, items)
    # then: one entry for the batch
    entry = batch_entries().get()
    assert entry.action == "create"
    assert entry.object_label == "3 transactions from acme-pay"
    assert entry.changes == {
        "rows": [None, 3],
        "source": [None, "acme-pay"],
        "merchants": [None, 1],
    }
    assert entry.merchant_id == merchant.pk
    # who, from where, why
    assert (entry.actor, entry.actor_label, entry.actor_kind) == (finance1, "finance1", "user")
    assert entry.origin == "api 10.0.0.7"
    assert entry.reason == "ingest acme-pay"
    # when: the batch's time, the one every row was stored with
    stored = Transaction.objects.filter(pk__in=report.created_ids)
    assert set(stored.values_list("created_at", flat=True)) == {entry.created_at}
    # exactly the created rows, as they were stored
    ids = sorted(report.created_ids)
    assert entry.row_ids == [[ids[0], ids[-1]]]
    assert (entry.row_first, entry.row_last) == (ids[0], ids[-1])
    assert entry.row_digest == stored_digest(entry)
    assert entry.mac == trail.entry_mac(entry)


def test_a_reason_from_the_audit_context_replaces_the_default(finance1, source, merchant):
    # given / when
    with audit.acting_as(finance1, origin="api 10.0.0.7", reason="October backfill"):
        _ingest(finance1, source, [_item(merchant)])
    # then
    assert batch_entries().get().reason == "October backfill"


def test_the_trail_proves_created_transactions_only(finance1, source, merchant):
    # given
    items = [_item(merchant, external_id="once")]
    first = _ingest(finance1, source, items)
    # when
    second = _ingest(finance1, source, [*items, _item(merchant, external_id="twice")])
    # then: each batch's entry names only the rows that batch created
    assert [proven_ids(e) for e in batch_entries()] == [first.created_ids, second.created_ids]
    assert second.already_present == 1
    assert batch_entries().last().changes["rows"] == [None, 1]


def test_the_batch_looks_merchants_up_in_one_query(finance1, source, admin1):
    merchants = [
        merchant_services.merchant_activate(
            merchant=MerchantFactory(status=Merchant.Status.ONBOARDING), actor=admin1, reason="t"
        )
        for _ in range(5)
    ]
    items = []
    for n in range(200):
        m = merchants[n % 5]
        items.append(
            TransactionItemFactory(mid=m.mid) if n % 2 else TransactionItemFactory(merchant=m.pk)
        )
    with CaptureQueriesContext(connection) as queries:
        report = _ingest(finance1, source, items)
    assert report.created == 200
    merchant_table = Merchant._meta.db_table
    assert sum(merchant_table in q["sql"] for q in queries.captured_queries) == 1


class _Receiver:
    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def __call__(self, sender, transaction_ids, **kwargs) -> None:
        self.calls.append(list(transaction_ids))


@pytest.fixture
def received():
    receiver = _Receiver()
    signals.transactions_ingested.connect(receiver, dispatch_uid="test_ingestion")
    yield receiver
    signals.transactions_ingested.disconnect(dispatch_uid="test_ingestion")


def test_the_signal_waits_for_commit_and_names_only_new_ids(
    finance1, source, merchant, received, django_capture_on_commit_callbacks
):
    # given
    TransactionFactory(source=source, merchant=merchant, external_id="old")
    items = [_item(merchant, external_id="old"), _item(merchant), _item(merchant)]
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = _ingest(finance1, source, items)
    # then: nothing before commit, the two new ids after
    assert received.calls == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert received.calls == [report.created_ids]
    assert len(report.created_ids) == 2
    old = Transaction.objects.get(external_id="old")
    assert old.pk not in received.calls[0]


def test_no_signal_when_nothing_was_created(
    finance1, source, merchant, received, django_capture_on_commit_callbacks
):
    items = [_item(merchant)]
    _ingest(finance1, source, items)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _ingest(finance1, source, items)
        _ingest(finance1, source, [_item(merchant, amount="oops")])
    assert callbacks == []
    assert received.calls == []


def test_check_alone_writes_nothing_and_reports_the_same_errors(finance1, source, merchant):
    items = [_item(merchant), _item(merchant, currency="ZZZ")]
    checked = ingestion.transactions_check(source=source, items=items)
    assert len(checked.rows) == 1
    assert checked.rejected == 1
    assert checked.errors[0][:2] == (1, "currency")
    assert not Transaction.objects.exists()


def test_the_demo_seed_fills_an_empty_ledger_once(merchant):
    # given
    out = io.StringIO()
    # when
    call_command("seed_transactions", stdout=out)
    call_command("seed_transactions", stdout=out)
    # then
    count = Transaction.objects.count()
    assert 2000 < count < 8000
    assert "already has transactions" in out.getvalue()
    assert out.getvalue().count("Webhook secret") == 1
    assert set(Transaction.objects.values_list("currency", flat=True)) == {"HKD", "USD", "SGD"}
    assert Transaction.objects.filter(kind="refund").exists()
    assert not Transaction.objects.filter(kind="payment", amount__lt=0).exists()
    # one entry per batch of the first run, as the system user, together
    # proving every row once; the second run wrote none
    entries = list(batch_entries())
    assert len(entries) == math.ceil(count / ingestion.MAX_ITEMS)
    assert {(e.actor.username, e.actor_kind) for e in entries} == {("system", "system")}
    assert {(e.origin, e.reason) for e in entries} == {("command seed_transactions", "demo data")}
    proven = [pk for e in entries for pk in proven_ids(e)]
    assert sorted(proven) == sorted(Transaction.objects.values_list("pk", flat=True))
    assert sum(e.changes["rows"][1] for e in entries) == count


def test_an_inactive_source_accepts_nothing(finance1, source, merchant):
    source.is_active = False
    source.save()
    with pytest.raises(ValidationError) as exc:
        _ingest(finance1, source, [_item(merchant)])
    assert "source" in exc.value.message_dict
    assert not Transaction.objects.exists()


def test_a_lone_item_with_blank_optional_fields_is_stored(finance1, source, merchant):
    item = {
        "external_id": "lone",
        "merchant": merchant.pk,
        "kind": "payment",
        "amount": "1",
        "currency": "HKD",
        "occurred_at": "2026-10-15T14:30:00+08:00",
        "customer_ref": "",
        "payment_method": None,
    }
    assert _ingest(finance1, source, [item]).created == 1
    stored = Transaction.objects.get()
    assert (stored.customer_ref, stored.payment_method, stored.payer_email) == ("", "", "")
    assert (stored.fee, stored.cost) == (Decimal("0"), Decimal("0"))


def test_text_is_stored_exactly_whatever_punctuation_it_holds(finance1, source, merchant):
    odd = 'a,"b"{c}\\d;e\'f NULL ü 支付'
    items = [
        _item(merchant, external_id=odd, customer_ref=odd, payer_phone="+852 (0) 1234"),
        _item(merchant, external_id="NULL", customer_ref="{}"),
    ]
    assert _ingest(finance1, source, items).created == 2
    assert Transaction.objects.get(external_id=odd).customer_ref == odd
    assert Transaction.objects.get(external_id="NULL").customer_ref == "{}"
    # the entry's digest, taken from the values sent, matches the stored text
    entry = batch_entries().get()
    assert entry.row_digest == stored_digest(entry)


def test_a_batch_written_in_parts_keeps_the_order_of_its_items_and_their_errors(
    finance1, source, merchant
):
    # given: more items than one part, external ids in no order, repeats and
    # refusals spread over the parts, one item already in the ledger
    per_part = ingestion._PART
    count = 2 * per_part + 50
    names = [f"ord-{(n * 7919) % count:05d}" for n in range(count)]
    items = [_item(merchant, external_id=name, amount=f"{n}.10") for n, name in enumerate(names)]
    items[3]["amount"] = "1.001"  # refused
    items[count - 1]["kind"] = "bogus"  # refused
    items.append(_item(merchant, external_id=names[0], amount="5.00"))  # a repeat, last in order
    items.append(_item(merchant, external_id=f" {names[per_part + 1]} "))  # a repeat, padded
    TransactionFactory(source=source, merchant=merchant, external_id=names[10])
    # when
    report = _ingest(finance1, source, items)
    # then: the errors in item order, the new ids in the order of their items
    assert [(e.index, e.field) for e in report.errors] == [(3, "amount"), (count - 1, "kind")]
    assert (report.created, report.already_present, report.rejected) == (count - 3, 3, 2)
    stored = dict(
        Transaction.objects.filter(pk__in=report.created_ids).values_list("pk", "external_id")
    )
    expected = [name for n, name in enumerate(names) if n not in (3, 10, count - 1)]
    assert [stored[pk] for pk in report.created_ids] == expected
    # the first item of an external id wins
    assert Transaction.objects.get(external_id=names[0]).amount == Decimal("0.10")
    # one entry proving exactly the new rows, as stored
    entry = batch_entries(reason="ingest acme-pay").get()
    assert proven_ids(entry) == sorted(report.created_ids)
    assert entry.row_digest == stored_digest(entry)


def test_a_failure_while_the_parts_are_written_leaves_nothing_and_the_connection_usable(
    finance1, source, merchant, monkeypatch
):
    # given: the second part's check fails after the first part was sent
    items = [_item(merchant) for _ in range(ingestion._PART + 10)]
    real = ingestion.ItemChecker.check
    calls = []

    def failing(self, indexes):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("checker broke")
        return real(self, indexes)

    monkeypatch.setattr(ingestion.ItemChecker, "check", failing)
    # when
    with pytest.raises(RuntimeError, match="checker broke"):
        _ingest(finance1, source, items)
    # then: nothing stored, no entry, and the next batch goes through
    monkeypatch.setattr(ingestion.ItemChecker, "check", real)
    assert not Transaction.objects.exists()
    assert not batch_entries().exists()
    assert _ingest(finance1, source, items).created == len(items)


def test_a_merchant_gone_after_the_lookup_refuses_the_whole_batch_and_the_next_one_goes_through(
    finance1, source, merchant, monkeypatch
):
    # given: a merchant deleted between the batch's lookup and its insert
    # (as if: the lookup is made to find one that does not exist), named by
    # an item of the second part only
    gone = (Merchant.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    items = [_item(merchant) for _ in range(ingestion._PART + 10)]
    items.append(TransactionItemFactory(merchant=gone, external_id="zzz-last-part"))
    monkeypatch.setattr(
        ingestion.ItemChecker, "known", property(lambda self: ({merchant.pk, gone}, {}))
    )
    # when: the database refuses the row (settlements/0007's reference check)
    with pytest.raises(IntegrityError, match="does not exist"):
        _ingest(finance1, source, items)
    # then: nothing of the batch stored, and the connection serves the next
    monkeypatch.undo()
    assert not Transaction.objects.exists()
    assert not batch_entries().exists()
    assert _ingest(finance1, source, items[:-1]).created == len(items) - 1


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_regex(ledger_rules._PLAIN_EMAIL, fullmatch=True).filter(lambda s: len(s) <= 254))
def test_every_address_the_quick_e_mail_check_accepts_is_one_django_accepts(address):
    validate_email(address)  # raises for an address Django refuses


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("o'brien+tag@example.com", True),
        ("user@[192.0.2.1]", True),
        ("payer@例子.广告", True),
        ("payer@xn--fsqu00a.xn--4rr70v", True),
        ("payer@example.com\u212a", True),  # a Kelvin sign: Unicode, as Django allows
        ("用户@例子.广告", False),
        ("payer@example", False),
        ("pa..yer@example.com", False),
        ("payer@-example.com", False),
        ("payer@example.c", False),
    ],
)
def test_addresses_that_are_not_plain_are_left_to_django(
    finance1, source, merchant, address, valid
):
    assert not ledger_rules._PLAIN_EMAIL.fullmatch(address)
    report = _ingest(finance1, source, [_item(merchant, payer_email=address)])
    assert report.created == (1 if valid else 0)
    assert [e.field for e in report.errors] == ([] if valid else ["payer_email"])
