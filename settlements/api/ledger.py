"""Ledger API: transactions (list, retrieve, batch ingestion) and the gateway webhook.

``/api/v1/transactions/`` reads through ``selectors.transaction_list``;
``/api/v1/transactions/batch/`` and ``/api/v1/webhooks/gateway/`` write through
``ingestion.transactions_ingest``, the one door every transaction passes.
"""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import path
from django.utils.translation import gettext as _
from django_countries.serializer_fields import CountryField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, pagination, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import audit, money, permissions
from core import services as core_services
from core.middleware import public
from merchants.models import PaymentMethod
from settlements import selectors
from settlements.models import Transaction, TransactionSource
from settlements.services import ingestion, webhooks

# ---------------------------------------------------------------------------
# Serializers
# ---------------------------------------------------------------------------


_METHODS = ", ".join(PaymentMethod.values)


@extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": r"^-?\d+(\.\d+)?$", "example": "125.50"}
)
class MoneyField(serializers.Field):
    """An amount as a string with its row's currency's decimal places."""

    def __init__(self, **kwargs) -> None:
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value: Transaction) -> str:
        return str(money.quantize(getattr(value, self.field_name), value.currency))


class TransactionSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="code", read_only=True)
    merchant_name = serializers.CharField(source="merchant.__str__", read_only=True)
    amount = MoneyField()
    fee = MoneyField()
    cost = MoneyField()
    card_country = CountryField(required=False)
    # Plain text: the PaymentMethod choice set already has a schema name elsewhere.
    payment_method = serializers.CharField(help_text=_METHODS)

    class Meta:
        model = Transaction
        fields = [
            "id", "source", "external_id", "merchant", "merchant_name", "kind", "status",
            "amount", "fee", "cost", "currency", "payment_method", "card_country",
            "customer_ref", "payer_email", "payer_phone", "card_fingerprint", "occurred_at",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


def _values(values: list[str]) -> str:
    return ", ".join(values)


class TransactionItemSerializer(serializers.Serializer):
    """One transaction as a gateway sends it. Documentation of the shape: the
    service checks every field (fast, in plain Python) and names the ones it refuses."""

    external_id = serializers.CharField(
        max_length=100, help_text="The gateway's id; unique per source."
    )
    merchant = serializers.IntegerField(
        required=False, help_text="PayCRM merchant id. Give this or `mid`."
    )
    mid = serializers.CharField(required=False, max_length=20, help_text="The merchant's MID.")
    kind = serializers.CharField(help_text=_values(Transaction.Kind.values))
    status = serializers.CharField(
        required=False,
        help_text=f"{_values(Transaction.Status.values)}; default settled.",
    )
    amount = serializers.CharField(
        help_text="Decimal as a string, at most the currency's decimals; "
        "≤ 0 for refunds and chargebacks, ≥ 0 otherwise."
    )
    fee = serializers.CharField(required=False, help_text="Decimal as a string; default 0.")
    cost = serializers.CharField(required=False, help_text="Decimal as a string; default 0.")
    currency = serializers.CharField(max_length=3, help_text="ISO 4217, e.g. HKD.")
    payment_method = serializers.CharField(
        required=False,
        help_text=_METHODS,
    )
    card_country = serializers.CharField(
        required=False, max_length=2, help_text="ISO 3166-1 alpha-2."
    )
    customer_ref = serializers.CharField(required=False, max_length=100)
    payer_email = serializers.EmailField(required=False)
    payer_phone = serializers.CharField(required=False, max_length=30)
    card_fingerprint = serializers.CharField(required=False, max_length=64)
    occurred_at = serializers.DateTimeField(
        help_text="ISO 8601 with an offset, e.g. 2026-10-15T14:30:00+08:00."
    )


class TransactionBatchSerializer(serializers.Serializer):
    source = serializers.SlugField(help_text="Code of an active transaction source.")
    items = TransactionItemSerializer(many=True, help_text="At most 1,000.")


class ItemErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in `items`, from 0.")
    field = serializers.CharField()
    message = serializers.CharField()


class BatchResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    already_present = serializers.IntegerField()
    rejected = serializers.IntegerField()
    errors = ItemErrorSerializer(many=True)


class WebhookEventSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=100, help_text="The event id; processed once.")
    source = serializers.SlugField()
    type = serializers.CharField(help_text="transaction")
    data = TransactionItemSerializer()


class WebhookResultSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="created, already_present or duplicate")
    transaction = serializers.IntegerField(allow_null=True)


# ---------------------------------------------------------------------------
# Transactions
# ---------------------------------------------------------------------------


class TransactionCursorPagination(pagination.CursorPagination):
    # Newest first; the id breaks ties between events of the same instant.
    ordering = ("-occurred_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class CanViewTransactions(BasePermission):
    def has_permission(self, request: Request, view) -> bool:
        return permissions.has_global(request.user, Transaction, "view")


_filters = [
    OpenApiParameter("merchant", OpenApiTypes.INT, description="Merchant id"),
    OpenApiParameter("kind", OpenApiTypes.STR, enum=Transaction.Kind.values),
    OpenApiParameter("source", OpenApiTypes.STR, description="Source code"),
    OpenApiParameter("currency", OpenApiTypes.STR, description="ISO 4217"),
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="Occurred on or after"),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Occurred on or before"),
    OpenApiParameter("q", OpenApiTypes.STR, description="External id or customer reference"),
]


def _active_source(user, code) -> TransactionSource:
    source = None
    if isinstance(code, str) and code:
        source = selectors.source_list(user=user).filter(code=code, is_active=True).first()
    if source is None:
        raise ValidationError({"source": _("No active transaction source with this code.")})
    return source


@extend_schema_view(
    list=extend_schema(parameters=_filters, responses=TransactionSerializer),
    retrieve=extend_schema(responses=TransactionSerializer),
)
class TransactionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Transactions of the merchants the user may see; needs ``view_transaction``."""

    serializer_class = TransactionSerializer
    pagination_class = TransactionCursorPagination

    def get_permissions(self):
        if self.action == "batch":
            return super().get_permissions()
        return [*super().get_permissions(), CanViewTransactions()]

    def get_queryset(self):
        filters = selectors.TransactionFilters.from_params(self.request.query_params)
        return selectors.transaction_list(user=self.request.user, filters=filters)

    def get_object(self) -> Transaction:
        return selectors.transaction_get(user=self.request.user, pk=self.kwargs["pk"])

    @extend_schema(
        request=TransactionBatchSerializer,
        responses={
            200: BatchResultSerializer,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT, description="Unknown source or more than 1,000 items"
            ),
            403: OpenApiResponse(description="Needs settlements.add_transaction"),
        },
        description="Store up to 1,000 transactions. Valid items are stored even when "
        "others are refused; an item already in the ledger (same source and external "
        "id) counts as already present, so a batch can be sent again safely.",
    )
    @action(detail=False, methods=["post"], url_path="batch", parser_classes=[JSONParser])
    def batch(self, request: Request) -> Response:
        if not permissions.has_global(request.user, Transaction, "add"):
            raise PermissionDenied
        body = request.data if isinstance(request.data, dict) else {}
        source = _active_source(request.user, body.get("source"))
        items = body.get("items")
        if not isinstance(items, list):
            raise ValidationError({"items": _("Send a list of transactions.")})
        report = ingestion.transactions_ingest(actor=request.user, source=source, items=items)
        return Response(BatchResultSerializer(report).data)


# ---------------------------------------------------------------------------
# Gateway webhook
# ---------------------------------------------------------------------------


@public
class GatewayWebhookView(APIView):
    """A gateway's event, authenticated by its signature instead of a session."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]  # for the schema: the view reads the raw body itself

    @extend_schema(
        request=WebhookEventSerializer,
        auth=[],
        parameters=[
            OpenApiParameter(
                "PayCRM-Signature",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description='"t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with '
                "the source's webhook secret>\"; several v1 values are allowed.",
            )
        ],
        responses={
            201: WebhookResultSerializer,
            200: OpenApiResponse(
                WebhookResultSerializer,
                description="Already processed: the event id or the transaction was seen before.",
            ),
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Bad signature, stale timestamp, or the transaction's field errors.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        raw = request.body
        # Parsed only to find whose secret to check; nothing in it is trusted,
        # and nothing is written, before the signature matches.
        try:
            envelope = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            envelope = None
        if not isinstance(envelope, dict):
            raise ValidationError({"non_field_errors": _("The body must be a JSON object.")})
        code = envelope.get("source")
        source = (
            TransactionSource.objects.filter(code=code, is_active=True).first()
            if isinstance(code, str) and code
            else None
        )
        if source is None:
            raise ValidationError({"source": _("No active transaction source with this code.")})
        webhooks.webhook_signature_verify(
            secret=source.webhook_secret,
            header=request.headers.get("PayCRM-Signature", ""),
            body=raw,
        )
        event_id, data = envelope.get("id"), envelope.get("data")
        problems = {}
        if not isinstance(event_id, str) or not 0 < len(event_id) <= 100:
            problems["id"] = _("Give the event id (text, at most 100 characters).")
        if envelope.get("type") != "transaction":
            problems["type"] = _("Only transaction events are accepted.")
        if not isinstance(data, dict):
            problems["data"] = _("Give the transaction as an object.")
        if problems:
            raise ValidationError(problems)
        system = core_services.system_user()
        with audit.acting_as(system, origin=f"webhook {source.code}"):
            outcome = webhooks.webhook_event_process(
                actor=system, source=source, event_id=event_id, item=data
            )
        code = status.HTTP_201_CREATED if outcome.status == "created" else status.HTTP_200_OK
        result = {"status": outcome.status, "transaction": outcome.transaction_id}
        return Response(WebhookResultSerializer(result).data, status=code)


def register(router) -> None:
    router.register("transactions", TransactionViewSet, basename="transaction")


urlpatterns: list = [
    path("webhooks/gateway/", GatewayWebhookView.as_view(), name="gateway-webhook"),
]
