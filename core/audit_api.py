"""Audit trail API: ``/api/v1/audit/entries/`` for compliance, read-only.

Reads through ``core.selectors.audit_entry_list`` with the page's filters;
cursor-paginated by id so that any page of millions of entries costs the same.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, pagination, serializers, viewsets
from rest_framework.permissions import BasePermission

from core import selectors, trail
from core.models import AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)
    actor_id = serializers.IntegerField(read_only=True, allow_null=True)
    changes = serializers.DictField(
        child=serializers.ListField(allow_null=True),
        read_only=True,
        help_text='{"field": [before, after]}; secrets are shown as "••••".',
    )
    sealed = serializers.SerializerMethodField()

    class Meta:
        model = AuditEntry
        fields = [
            "id", "created_at", "actor", "actor_id", "actor_kind", "origin", "ip_address",
            "user_agent", "action", "success", "model", "object_id", "object_label",
            "merchant_id", "changes", "reason", "row_model", "row_ids", "row_digest", "key_id",
            "mac", "seq", "prev_hash", "hash", "sealed",
        ]  # fmt: skip
        read_only_fields = fields

    def get_sealed(self, entry: AuditEntry) -> bool:
        if entry.seq is not None:
            return True
        if "sealed_below" not in self.context:
            self.context["sealed_below"] = trail.sealed_below()
        key = trail.order_key(entry)
        return key is not None and key < self.context["sealed_below"]


class AuditCursorPagination(pagination.CursorPagination):
    ordering = "-id"  # unique and immutable: no duplicates while entries arrive
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class CanReadTrail(BasePermission):
    message = "Reading the audit trail needs the compliance role."

    def has_permission(self, request, view) -> bool:
        return selectors.can_read_trail(request.user)


_filters = [
    OpenApiParameter(
        "actor", OpenApiTypes.STR, description="Username of the actor, or a webhook source's code"
    ),
    OpenApiParameter("action", OpenApiTypes.STR, enum=AuditEntry.Action.values),
    OpenApiParameter(
        "model", OpenApiTypes.STR, description='Model label, e.g. "merchants.merchant"'
    ),
    OpenApiParameter("object_id", OpenApiTypes.STR, description="Id of the affected record"),
    OpenApiParameter(
        "merchant", OpenApiTypes.INT, description="Merchant id (the merchant and its records)"
    ),
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="On or after (local date)"),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="On or before (local date)"),
    OpenApiParameter(
        "q",
        OpenApiTypes.STR,
        description="Text in the record's label, the reason or the origin (IP, task, command)",
    ),
]


@extend_schema_view(
    list=extend_schema(
        parameters=_filters,
        responses={200: AuditEntrySerializer, 403: OpenApiResponse(description="Not compliance")},
        description="The audit trail, newest first. Compliance only.",
    ),
    retrieve=extend_schema(responses=AuditEntrySerializer),
)
class AuditEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = AuditEntrySerializer
    pagination_class = AuditCursorPagination

    def get_permissions(self):
        return [*super().get_permissions(), CanReadTrail()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation, no user
            return AuditEntry.objects.none()
        filters = selectors.AuditFilters.from_params(self.request.query_params)
        return selectors.audit_entry_list(user=self.request.user, filters=filters)

    def get_object(self) -> AuditEntry:
        return selectors.audit_entry_get(user=self.request.user, pk=self.kwargs["pk"])
