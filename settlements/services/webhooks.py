"""Gateway webhooks: signature, freshness and one processing per event id."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit
from core.models import User
from settlements.models import Transaction, TransactionSource, WebhookEvent
from settlements.services.ingestion import transactions_ingest

# ---------------------------------------------------------------------------
# Gateway webhooks
# ---------------------------------------------------------------------------


def webhook_signature_verify(*, secret: str, header: str, body: bytes) -> None:
    """Refuse a body unless ``header`` signs it with ``secret`` recently.

    ``header`` is ``t=<unix seconds>,v1=<hex>[,v1=<hex>...]``; each v1 is an
    HMAC-SHA256 of ``"<t>." + body``. Several v1 values let a gateway sign
    with an old and a new secret while it rotates them.
    """
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _sep, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = value
        elif key == "v1" and value:
            candidates.append(value.encode())
    if timestamp is None or not candidates:
        raise ValidationError({"signature": _("Missing or malformed PayCRM-Signature header.")})
    if not secret:
        raise ValidationError({"signature": _("The signature does not match.")})
    expected = (
        hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        .hexdigest()
        .encode()
    )
    # Every candidate is compared, in constant time, whatever the first gives.
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    if not any(matches):
        raise ValidationError({"signature": _("The signature does not match.")})
    tolerance = settings.SETTLEMENT_WEBHOOK_TOLERANCE_SECONDS
    if abs(timezone.now().timestamp() - int(timestamp)) > tolerance:
        # A captured request replayed later, or a sender whose clock is off.
        raise ValidationError(
            {"signature": _("The signature's timestamp is too old or in the future.")}
        )


@dataclass(frozen=True)
class WebhookOutcome:
    status: str  # "created", "already_present" or "duplicate"
    transaction_id: int | None = None


class _Replay(Exception):
    pass


def webhook_event_process(
    *, actor: User, source: TransactionSource, event_id: str, item: dict
) -> WebhookOutcome:
    """Store the transaction of one verified gateway event, once per event id.

    Called with the system user, after ``webhook_signature_verify``. An event
    whose transaction is refused raises ``ValidationError`` with its field
    errors and is not recorded, so the gateway's retry is processed afresh.
    Two deliveries of one event at once: the unique (source, event_id) makes
    the second wait for the first and then roll back as a duplicate.
    """
    try:
        with transaction.atomic():
            if WebhookEvent.objects.filter(source=source, event_id=event_id).exists():
                raise _Replay
            report = transactions_ingest(actor=actor, source=source, items=[item])
            if report.rejected:
                problems: dict[str, list[str]] = {}
                for error in report.errors:
                    problems.setdefault(error.field, []).append(error.message)
                raise ValidationError(problems)
            if report.created_ids:
                outcome = WebhookOutcome("created", report.created_ids[0])
            else:
                external_id = str(item["external_id"]).strip()
                pk = (
                    Transaction.objects.filter(source=source, external_id=external_id)
                    .values_list("pk", flat=True)
                    .first()
                )
                outcome = WebhookOutcome("already_present", pk)
            event = WebhookEvent(
                source=source,
                event_id=event_id,
                transaction_id=outcome.transaction_id,
                outcome=outcome.status,
            )
            audit.stamp(event, actor=actor, reason="webhook")
            try:
                with transaction.atomic():
                    event.save()
            except IntegrityError:
                raise _Replay from None  # rolls back this event's ingestion too
    except _Replay:
        return WebhookOutcome("duplicate")
    return outcome
