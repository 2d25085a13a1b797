from django.core.exceptions import PermissionDenied
from django_countries.serializer_fields import CountryField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core import permissions
from core.models import Team, User
from core.money import CURRENCY_CHOICES
from merchants import selectors, services
from merchants.models import Merchant, Partner


class MerchantOutputSerializer(serializers.ModelSerializer):
    country = CountryField()
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    team = serializers.StringRelatedField()
    partner = serializers.StringRelatedField()
    tags = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Merchant
        fields = [
            "id",
            *services.EDITABLE_FIELDS,
            "status",
            "risk_level",
            "mid",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class MerchantInputSerializer(serializers.ModelSerializer):
    """Shape only; the service applies the rules and model validation."""

    country = CountryField()
    volume_currency = serializers.ChoiceField(choices=CURRENCY_CHOICES, required=False)
    owner = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True), required=False
    )
    team = serializers.PrimaryKeyRelatedField(
        queryset=Team.objects.all(), required=False, allow_null=True
    )
    partner = serializers.PrimaryKeyRelatedField(
        queryset=Partner.objects.all(), required=False, allow_null=True
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, max_length=20
    )

    class Meta:
        model = Merchant
        fields = list(services.CREATE_FIELDS)
        # Uniqueness and constraints are checked by the service under its lock.
        validators = []

    def validate(self, attrs):
        # Status (after creation), risk level and MID have their own actions:
        # sent here they are refused by name, not silently dropped.
        allowed = services.EDITABLE_FIELDS if self.instance else services.CREATE_FIELDS
        refused = {
            name: [str(message)]
            for name, message in services.OWN_SERVICE.items()
            if name in self.initial_data and name not in allowed
        }
        if refused:
            raise serializers.ValidationError(refused)
        user = self.context["request"].user
        if ({"owner", "team"} & attrs.keys()) and not user.has_perm("merchants.assign_merchant"):
            raise serializers.ValidationError(
                {"owner": ["You may not assign merchants to owners or teams."]}
            )
        return attrs


class StatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Merchant.Status.choices)
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class RiskLevelSerializer(serializers.Serializer):
    risk_level = serializers.ChoiceField(choices=Merchant.RiskLevel.choices)
    reason = serializers.CharField(max_length=300)


_filters = [
    OpenApiParameter("q", OpenApiTypes.STR, description="Search name, registration no., MID"),
    OpenApiParameter("status", OpenApiTypes.STR, enum=Merchant.Status.values),
    OpenApiParameter("risk_level", OpenApiTypes.STR, enum=Merchant.RiskLevel.values),
    OpenApiParameter("country", OpenApiTypes.STR, description="ISO 3166-1 alpha-2"),
    OpenApiParameter("owner", OpenApiTypes.INT, description="Owner user id"),
]


@extend_schema_view(
    list=extend_schema(parameters=_filters, responses=MerchantOutputSerializer),
    retrieve=extend_schema(responses=MerchantOutputSerializer),
    create=extend_schema(
        request=MerchantInputSerializer, responses={201: MerchantOutputSerializer}
    ),
    update=extend_schema(request=MerchantInputSerializer, responses=MerchantOutputSerializer),
    partial_update=extend_schema(
        request=MerchantInputSerializer, responses=MerchantOutputSerializer
    ),
)
class MerchantViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Merchants the signed-in user may see. Others answer 404, as if absent."""

    serializer_class = MerchantOutputSerializer

    def get_queryset(self):
        filters = selectors.MerchantFilters.from_params(self.request.query_params)
        return selectors.merchant_list(user=self.request.user, filters=filters)

    def get_object(self):
        action = "change" if self.action in ("update", "partial_update") else "view"
        return selectors.merchant_get(user=self.request.user, pk=self.kwargs["pk"], action=action)

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return MerchantInputSerializer
        return MerchantOutputSerializer

    def create(self, request, *args, **kwargs):
        if not permissions.has_global(request.user, Merchant, "add"):
            raise PermissionDenied
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        merchant = services.merchant_create(actor=request.user, **serializer.validated_data)
        return self._respond(merchant, status=201)

    def update(self, request, *args, **kwargs):
        merchant = self.get_object()
        partial = kwargs.pop("partial", False)
        serializer = self.get_serializer(merchant, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        merchant = services.merchant_update(
            merchant=merchant, actor=request.user, **serializer.validated_data
        )
        return self._respond(merchant)

    @extend_schema(request=StatusSerializer, responses=MerchantOutputSerializer)
    @action(detail=True, methods=["post"])
    def status(self, request, *args, **kwargs):
        """Move the merchant (suspend, reinstate, offboard: risk and compliance)."""
        serializer = StatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        merchant = services.merchant_change_status(
            merchant=self.get_object(), actor=request.user, **serializer.validated_data
        )
        return self._respond(merchant)

    @extend_schema(request=RiskLevelSerializer, responses=MerchantOutputSerializer)
    @action(detail=True, methods=["post"], url_path="risk-level")
    def risk_level(self, request, *args, **kwargs):
        """Rate the merchant's risk (risk and compliance), with the reason."""
        serializer = RiskLevelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        merchant = services.merchant_set_risk_level(
            merchant=self.get_object(), actor=request.user, **serializer.validated_data
        )
        return self._respond(merchant)

    def _respond(self, merchant: Merchant, status: int = 200):
        merchant = selectors.merchant_list(user=self.request.user).get(pk=merchant.pk)
        return Response(MerchantOutputSerializer(merchant).data, status=status)
