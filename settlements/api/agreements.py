"""Revenue-share agreements of a partner: /api/v1/partners/{id}/agreements/."""

from __future__ import annotations

from django.http import Http404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response

from merchants import selectors as merchant_selectors
from settlements import selectors
from settlements.models import AgreementTier, RevenueShareAgreement
from settlements.services import agreements


class TierSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgreementTier
        fields = ["from_volume", "rate_bps"]


class AgreementSerializer(serializers.ModelSerializer):
    tiers = TierSerializer(many=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = RevenueShareAgreement
        fields = ["id", "partner", "basis", "tier_mode", "currency", "valid_from", "valid_to",
                  "rounding", "minimum_payout", "notes", "tiers", "created_by",
                  "created_at"]  # fmt: skip
        read_only_fields = ["id", "partner", "created_by", "created_at"]


class AgreementViewSet(viewsets.GenericViewSet):
    """Agreements are finance records: others see none (404 on the partner's list)."""

    serializer_class = AgreementSerializer
    pagination_class = None

    def _partner(self):
        return merchant_selectors.partner_get(user=self.request.user, pk=self.kwargs["partner_pk"])

    def get_queryset(self):
        return selectors.agreement_list(user=self.request.user, partner=self._partner())

    @extend_schema(responses=AgreementSerializer(many=True))
    def list(self, request, *args, **kwargs):
        if not request.user.has_perm("settlements.view_revenueshareagreement"):
            raise Http404
        return Response(AgreementSerializer(self.get_queryset(), many=True).data)

    @extend_schema(request=AgreementSerializer, responses={201: AgreementSerializer})
    def create(self, request, *args, **kwargs):
        partner = self._partner()
        serializer = AgreementSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        tiers = [dict(t) for t in data.pop("tiers")]
        agreement = agreements.agreement_create(
            actor=request.user, partner=partner, tiers=tiers, **data
        )
        fresh = selectors.agreement_get(user=request.user, pk=agreement.pk)
        return Response(AgreementSerializer(fresh).data, status=status.HTTP_201_CREATED)


def register(router) -> None:
    pass


urlpatterns = [
    path(
        "partners/<id:partner_pk>/agreements/",
        AgreementViewSet.as_view({"get": "list", "post": "create"}),
        name="partner-agreements",
    ),
]
