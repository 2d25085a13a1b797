"""Settlement runs: /api/v1/settlements/runs/ with calculate, submit, approve,
reject, export, statements and adjustments. Finance-permissioned; invalid
transitions answer 409 with the reason (core.api's exception handler)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from merchants.models import Partner
from settlements import selectors
from settlements.models import (
    Adjustment,
    SettlementApproval,
    SettlementExport,
    SettlementRun,
    Statement,
    StatementLine,
)
from settlements.services import exports, runs


class ApprovalSerializer(serializers.ModelSerializer):
    approver = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SettlementApproval
        fields = ["approver", "submission", "comment", "created_at"]
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    prepared_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    approvals = serializers.SerializerMethodField()

    class Meta:
        model = SettlementRun
        fields = ["id", "period_start", "period_end", "currency", "status", "prepared_by",
                  "submitted_at", "approved_at", "approvals_required", "approvals",
                  "rejection_reason", "calculation_error", "calculated_at", "progress",
                  "progress_note", "transaction_count", "total_volume", "total_basis",
                  "total_share", "platform_retained", "total_adjustments", "total_payable",
                  "created_at"]  # fmt: skip
        read_only_fields = fields

    @extend_schema(responses=ApprovalSerializer(many=True))
    def get_approvals(self, run: SettlementRun) -> list[dict]:
        current = [a for a in run.approvals.all() if a.submission == run.submission]
        return ApprovalSerializer(current, many=True).data


class RunCreateSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    currency = serializers.CharField(max_length=3)


class ApproveSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField()


class LineSerializer(serializers.ModelSerializer):
    merchant_name = serializers.CharField(source="merchant.__str__", read_only=True)

    class Meta:
        model = StatementLine
        fields = ["merchant", "merchant_name", "role", "transaction_count", "volume", "basis",
                  "tier_from", "partner_rate_bps", "child_rate_bps", "rate_bps", "share",
                  "negative_spread"]  # fmt: skip
        read_only_fields = fields


class StatementSerializer(serializers.ModelSerializer):
    partner_name = serializers.CharField(source="partner.name", read_only=True)
    lines = LineSerializer(many=True, read_only=True)

    class Meta:
        model = Statement
        fields = ["id", "partner", "partner_name", "agreement", "currency", "volume",
                  "tier_from", "rate_bps", "lines_total", "adjustments_total", "carried_in",
                  "total", "payable", "carried_out", "has_negative_spread", "reference",
                  "lines"]  # fmt: skip
        read_only_fields = fields


class AdjustmentSerializer(serializers.ModelSerializer):
    partner = serializers.PrimaryKeyRelatedField(queryset=Partner.objects.all())
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Adjustment
        fields = ["id", "partner", "amount", "reason", "created_by", "created_at"]
        read_only_fields = ["id", "created_by", "created_at"]


class ExportSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = SettlementExport
        fields = ["id", "kind", "statement", "filename", "content_type", "sha256",
                  "created_at", "download_url"]  # fmt: skip
        read_only_fields = fields

    def get_download_url(self, export: SettlementExport) -> str:
        return reverse("settlements:export-download", args=[export.run_id, export.pk])


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = RunSerializer

    def get_queryset(self):
        return selectors.run_list(user=self.request.user).prefetch_related("approvals__approver")

    def get_object(self):
        return selectors.run_get(user=self.request.user, pk=self.kwargs["pk"])

    def _respond(self, run: SettlementRun, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=run.pk)
        return Response(RunSerializer(fresh).data, status=code)

    @extend_schema(request=RunCreateSerializer, responses={201: RunSerializer})
    def create(self, request, *args, **kwargs):
        serializer = RunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run = runs.settlement_run_create(
            actor=request.user,
            period_start=data["period_start"],
            period_end=data["period_end"],
            currency=data["currency"].upper(),
        )
        return self._respond(run, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: RunSerializer})
    @action(detail=True, methods=["post"])
    def calculate(self, request, *args, **kwargs):
        """Queue the calculation; poll the run for progress (eager mode finishes at once)."""
        run = runs.settlement_run_calculate(actor=request.user, run=self.get_object())
        return self._respond(run, status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request, *args, **kwargs):
        run = runs.settlement_run_submit(actor=request.user, run=self.get_object())
        return self._respond(run)

    @extend_schema(request=ApproveSerializer, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, *args, **kwargs):
        serializer = ApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = runs.settlement_run_approve(
            actor=request.user, run=self.get_object(), **serializer.validated_data
        )
        return self._respond(run)

    @extend_schema(request=RejectSerializer, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, *args, **kwargs):
        serializer = RejectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = runs.settlement_run_reject(
            actor=request.user, run=self.get_object(), **serializer.validated_data
        )
        return self._respond(run)

    @extend_schema(request=None, responses=ExportSerializer(many=True))
    @action(detail=True, methods=["post"])
    def export(self, request, *args, **kwargs):
        """Produce the payout CSV, ERP journal and statement PDFs (once); list them."""
        files = exports.settlement_run_export(run=self.get_object(), actor=request.user)
        return Response(ExportSerializer(files, many=True).data)

    @extend_schema(request=None, responses=StatementSerializer(many=True))
    @action(detail=True, methods=["get"])
    def statements(self, request, *args, **kwargs):
        run = self.get_object()
        qs = selectors.statement_list(run=run).prefetch_related("lines__merchant")
        page = self.paginate_queryset(qs)
        data = StatementSerializer(page if page is not None else qs, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    # One handler per method: HEAD is served by the GET handler, so a handler
    # branching on request.method would let it fall into the write.
    @extend_schema(request=None, responses=AdjustmentSerializer(many=True))
    @action(detail=True, methods=["get"])
    def adjustments(self, request, *args, **kwargs):
        qs = self.get_object().adjustments.select_related("created_by")
        return Response(AdjustmentSerializer(qs, many=True).data)

    @extend_schema(request=AdjustmentSerializer, responses={201: AdjustmentSerializer})
    @adjustments.mapping.post
    def adjustment_add(self, request, *args, **kwargs):
        serializer = AdjustmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        adjustment = runs.adjustment_create(
            actor=request.user, run=self.get_object(), **serializer.validated_data
        )
        return Response(AdjustmentSerializer(adjustment).data, status=status.HTTP_201_CREATED)


def register(router) -> None:
    router.register("settlements/runs", RunViewSet, basename="settlement-run")


urlpatterns: list = []
