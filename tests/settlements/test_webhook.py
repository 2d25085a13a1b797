"""Gateway webhook: signed by the source's secret, processed once per event id."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.models import User
from merchants import services as merchant_services
from merchants.models import Merchant
from settlements.models import Transaction, WebhookEvent
from tests.factories.merchants import MerchantFactory
from tests.factories.settlements import TransactionItemFactory, TransactionSourceFactory
from tests.settlements.ledger_trail import batch_entries, proven_ids

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_0123456789abcdef"
URL = reverse("gateway-webhook")


@pytest.fixture
def source():
    return TransactionSourceFactory(code="acme-pay", webhook_secret=SECRET)


@pytest.fixture
def merchant(admin1):
    merchant = MerchantFactory(status=Merchant.Status.ONBOARDING)
    return merchant_services.merchant_activate(merchant=merchant, actor=admin1, reason="test")


def _body(merchant, *, event_id="evt_1", source="acme-pay", **item) -> bytes:
    data = TransactionItemFactory(merchant=merchant.pk, **item)
    envelope = {"id": event_id, "source": source, "type": "transaction", "data": data}
    return json.dumps(envelope).encode()


def _sign(body: bytes, *, secret: str = SECRET, at: int | None = None) -> str:
    t = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def _post(body: bytes, signature: str | None):
    headers = {"PayCRM-Signature": signature} if signature is not None else {}
    # A fresh client with CSRF checks on, as a gateway would call: no session, no token.
    return Client(enforce_csrf_checks=True).post(
        URL, body, content_type="application/json", headers=headers
    )


def test_a_signed_event_stores_its_transaction_as_the_system_user(source, merchant):
    # given
    body = _body(merchant, event_id="evt_pay", external_id="ch_1", amount="88.80")
    # when
    response = _post(body, _sign(body))
    # then
    assert response.status_code == 201, response.content
    tx = Transaction.objects.get()
    assert response.json() == {"status": "created", "transaction": tx.pk}
    assert (tx.source, tx.external_id, str(tx.amount)) == (source, "ch_1", "88.8000")
    event = WebhookEvent.objects.get()
    assert (event.source, event.event_id, event.transaction) == (source, "evt_pay", tx)
    assert event.outcome == "created"
    entry = batch_entries().get()
    assert proven_ids(entry) == [tx.pk]
    assert entry.actor == User.objects.get(username="system")
    assert entry.origin == "webhook acme-pay"
    assert WebhookEvent.history.get().history_user.username == "system"


def test_any_of_several_signatures_may_match(source, merchant):
    body = _body(merchant)
    good = _sign(body)
    t, v1 = good.split(",")
    response = _post(body, f"{t},v1={'0' * 64},{v1},v0=ignored")
    assert response.status_code == 201


def test_a_wrong_secret_is_refused_and_nothing_is_written(source, merchant):
    body = _body(merchant)
    response = _post(body, _sign(body, secret="whsec_someone_else"))
    assert response.status_code == 400
    assert "signature" in response.json()
    assert not Transaction.objects.exists()
    assert not WebhookEvent.objects.exists()


def test_a_tampered_body_is_refused(source, merchant):
    body = _body(merchant, amount="10.00")
    signature = _sign(body)
    tampered = body.replace(b'"10.00"', b'"10000.00"')
    assert tampered != body
    response = _post(tampered, signature)
    assert response.status_code == 400
    assert not Transaction.objects.exists()


@pytest.mark.parametrize(
    "header", [None, "", "t=abc,v1=00", "v1=" + "0" * 64, "t=1700000000", "nonsense"]
)
def test_a_missing_or_malformed_signature_is_refused(source, merchant, header):
    response = _post(_body(merchant), header)
    assert response.status_code == 400
    assert "signature" in response.json()
    assert not WebhookEvent.objects.exists()


def test_a_stale_timestamp_is_refused_even_when_correctly_signed(source, merchant, settings):
    settings.SETTLEMENT_WEBHOOK_TOLERANCE_SECONDS = 300
    body = _body(merchant)
    old = int((timezone.now() - timedelta(seconds=301)).timestamp())
    response = _post(body, _sign(body, at=old))
    assert response.status_code == 400
    assert "too old" in response.json()["signature"][0]
    assert not Transaction.objects.exists()
    # inside the window the same body passes
    recent = int((timezone.now() - timedelta(seconds=290)).timestamp())
    assert _post(body, _sign(body, at=recent)).status_code == 201


def test_the_tolerance_is_read_when_the_event_arrives(source, merchant, settings):
    settings.SETTLEMENT_WEBHOOK_TOLERANCE_SECONDS = 30
    body = _body(merchant)
    old = int((timezone.now() - timedelta(seconds=60)).timestamp())
    assert _post(body, _sign(body, at=old)).status_code == 400


def test_a_timestamp_too_far_in_the_future_is_refused(source, merchant):
    body = _body(merchant)
    signature = _sign(body, at=int(time.time()) + 3600)
    response = _post(body, signature)
    assert response.status_code == 400
    assert not Transaction.objects.exists()


def test_an_event_signed_earlier_is_refused_once_the_window_has_passed(
    source, merchant, time_machine
):
    body = _body(merchant)
    signature = _sign(body)
    time_machine.move_to(timezone.now() + timedelta(minutes=6))
    assert _post(body, signature).status_code == 400


def test_a_replayed_event_answers_200_and_stores_one_transaction(source, merchant):
    body = _body(merchant, event_id="evt_same")
    first = _post(body, _sign(body))
    again = _post(body, _sign(body))
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "transaction": None}
    assert Transaction.objects.count() == 1
    assert WebhookEvent.objects.count() == 1
    assert proven_ids(batch_entries().get()) == [Transaction.objects.get().pk]


def test_a_replayed_event_id_with_other_data_writes_nothing(source, merchant):
    first = _body(merchant, event_id="evt_x", external_id="ch_a")
    second = _body(merchant, event_id="evt_x", external_id="ch_b")
    assert _post(first, _sign(first)).status_code == 201
    assert _post(second, _sign(second)).status_code == 200
    assert list(Transaction.objects.values_list("external_id", flat=True)) == ["ch_a"]


def test_a_new_event_for_a_known_transaction_is_already_present(source, merchant):
    first = _body(merchant, event_id="evt_1", external_id="ch_1")
    retry = _body(merchant, event_id="evt_2", external_id="ch_1")
    _post(first, _sign(first))
    response = _post(retry, _sign(retry))
    assert response.status_code == 200
    tx = Transaction.objects.get()
    assert response.json() == {"status": "already_present", "transaction": tx.pk}
    assert WebhookEvent.objects.get(event_id="evt_2").transaction == tx


def test_a_refused_transaction_answers_400_with_its_field_errors(source, merchant):
    # given
    body = _body(merchant, event_id="evt_bad", amount="12.345", kind="refund")
    # when
    response = _post(body, _sign(body))
    # then
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"amount"}
    assert "2 decimal places" in errors["amount"][0]
    assert not Transaction.objects.exists()
    assert not WebhookEvent.objects.exists()  # not processed: a fixed retry goes through
    fixed = _body(merchant, event_id="evt_bad", amount="-12.34", kind="refund")
    assert _post(fixed, _sign(fixed)).status_code == 201


def test_an_unknown_or_inactive_source_is_refused(source, merchant):
    body = _body(merchant, source="nobody")
    assert _post(body, _sign(body)).status_code == 400
    source.is_active = False
    source.save()
    body = _body(merchant)
    response = _post(body, _sign(body))
    assert response.status_code == 400
    assert "source" in response.json()


def test_a_source_without_a_secret_accepts_nothing(merchant):
    TransactionSourceFactory(code="no-secret", webhook_secret="")
    body = _body(merchant, source="no-secret")
    response = _post(body, _sign(body, secret=""))
    assert response.status_code == 400
    assert not Transaction.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [({"id": ""}, "id"), ({"id": 5}, "id"), ({"type": "payout"}, "type"), ({"data": []}, "data")],
)
def test_a_signed_envelope_must_be_well_formed(source, merchant, change, field):
    envelope = json.loads(_body(merchant))
    envelope.update(change)
    body = json.dumps(envelope).encode()
    response = _post(body, _sign(body))
    assert response.status_code == 400
    assert field in response.json()


def test_a_body_that_is_not_json_is_refused(source):
    body = b"amount=10"
    response = _post(body, _sign(body))
    assert response.status_code == 400


def test_the_webhook_needs_no_session_and_no_csrf_token(source, merchant, web, finance1):
    # A signed-in browser session changes nothing: the signature decides.
    client = web(finance1)
    client.handler.enforce_csrf_checks = True
    body = _body(merchant)
    response = client.post(
        URL, body, content_type="application/json", headers={"PayCRM-Signature": "t=1,v1=00"}
    )
    assert response.status_code == 400
    assert not Transaction.objects.exists()
