"""API for partners and a merchant's records: /api/v1/merchants/{merchant_pk}/….

Every request resolves the merchant through the permission selectors first, so
a merchant the caller may not see answers 404 for its lists, records and writes
alike. Writes go through the services; sensitive values leave only masked, or
through the recorded ``reveal`` actions.
"""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django_countries.serializer_fields import CountryField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from core import permissions
from core import services as core_services
from core.models import User
from core.money import CURRENCY_CHOICES
from merchants import selectors, services
from merchants.models import (
    Activity,
    BankAccount,
    BeneficialOwner,
    Contact,
    Contract,
    Document,
    Partner,
    PaymentMethod,
    PricingPlan,
)

MERCHANT_PK = OpenApiParameter("merchant_pk", OpenApiTypes.INT, OpenApiParameter.PATH)


class MerchantRecordViewSet(viewsets.GenericViewSet):
    """Base: records of one merchant the caller can see; 404 otherwise."""

    model: type = None

    def get_merchant(self):
        if not hasattr(self, "_merchant"):
            self._merchant = selectors.merchant_get(
                user=self.request.user, pk=self.kwargs["merchant_pk"]
            )
        return self._merchant

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return selectors.records_visible(user=self.request.user, model=self.model).filter(
            merchant=self.get_merchant()
        )

    def get_object(self):
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    def respond(self, instance, code=status.HTTP_200_OK):
        return Response(self.output_serializer(instance).data, status=code)

    # Subclasses that allow ``create`` name their input shape and service.
    input_serializer: type[serializers.Serializer] | None = None
    create_service = None

    def create(self, request, *args, **kwargs):
        serializer = self.input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = {k: v for k, v in serializer.validated_data.items() if v is not None}
        instance = type(self).create_service(
            actor=request.user, merchant=self.get_merchant(), **data
        )
        return self.respond(instance, status.HTTP_201_CREATED)


class RevealMixin:
    """``POST …/{pk}/reveal/``: the clear value, for holders of the reveal right (recorded)."""

    reveal_field = ""

    @action(detail=True, methods=["post"])
    def reveal(self, request, *args, **kwargs):
        value = services.sensitive_reveal(
            actor=request.user,
            record=self.get_object(),
            ip_address=core_services.client_ip(request._request),
        )
        return Response({self.reveal_field: value})


# ---------------------------------------------------------------------------
# Serializers
# ---------------------------------------------------------------------------


class ContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "name", "title", "email", "phone", "is_primary", "notes", "created_at"]
        read_only_fields = ["id", "created_at"]


class OwnerOutputSerializer(serializers.ModelSerializer):
    nationality = CountryField()
    id_number_masked = serializers.CharField(read_only=True)

    class Meta:
        model = BeneficialOwner
        fields = [
            "id", "full_name", "nationality", "date_of_birth", "ownership_percent",
            "id_number_masked", "is_pep", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class OwnerInputSerializer(serializers.ModelSerializer):
    nationality = CountryField()
    id_number = serializers.CharField(max_length=40, write_only=True)

    class Meta:
        model = BeneficialOwner
        fields = ["full_name", "nationality", "date_of_birth", "ownership_percent", "is_pep",
                  "id_number"]  # fmt: skip


class BankAccountOutputSerializer(serializers.ModelSerializer):
    country = CountryField()
    account_number_masked = serializers.CharField(read_only=True)

    class Meta:
        model = BankAccount
        fields = [
            "id", "account_holder", "bank_name", "swift_code", "country", "currency",
            "account_number_masked", "is_primary", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class BankAccountInputSerializer(serializers.ModelSerializer):
    country = CountryField()
    currency = serializers.ChoiceField(choices=CURRENCY_CHOICES)
    account_number = serializers.CharField(max_length=40, write_only=True)

    class Meta:
        model = BankAccount
        fields = ["account_holder", "bank_name", "swift_code", "country", "currency",
                  "is_primary", "account_number"]  # fmt: skip


class DocumentOutputSerializer(serializers.ModelSerializer):
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reviewed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Document
        fields = [
            "id", "doc_type", "version", "is_current", "original_name", "content_type", "size",
            "sha256", "status", "rejection_reason", "expires_on", "uploaded_by", "reviewed_by",
            "reviewed_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class DocumentInputSerializer(serializers.Serializer):
    doc_type = serializers.ChoiceField(choices=Document.Type.choices)
    file = serializers.FileField()
    expires_on = serializers.DateField(required=False, allow_null=True)


class DocumentReviewSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[Document.Status.ACCEPTED.value, Document.Status.REJECTED.value]
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class ActivityOutputSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Activity
        fields = ["id", "kind", "subject", "body", "occurred_at", "due_on", "assignee", "done_at",
                  "created_by"]  # fmt: skip
        read_only_fields = fields


class ActivityInputSerializer(serializers.ModelSerializer):
    assignee = serializers.SlugRelatedField(
        slug_field="username",
        queryset=User.objects.filter(is_active=True),
        required=False,
        allow_null=True,
    )

    class Meta:
        model = Activity
        fields = ["kind", "subject", "body", "occurred_at", "due_on", "assignee"]
        extra_kwargs = {"occurred_at": {"required": False}}


class RateSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=PaymentMethod.choices)
    percent = serializers.DecimalField(max_digits=7, decimal_places=4)
    fixed_fee = serializers.DecimalField(max_digits=20, decimal_places=4, default=0)


class PricingPlanSerializer(serializers.ModelSerializer):
    rates = RateSerializer(many=True)
    currency = serializers.ChoiceField(choices=CURRENCY_CHOICES)

    class Meta:
        model = PricingPlan
        fields = ["id", "name", "currency", "is_active", "effective_from", "rates"]
        read_only_fields = ["id", "is_active"]


class ContractSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contract
        fields = ["id", "version", "starts_on", "ends_on", "status", "signed_on", "signed_by"]
        read_only_fields = ["id", "version", "status", "signed_on", "signed_by"]


class ContractSignSerializer(serializers.Serializer):
    signed_on = serializers.DateField()
    signed_by = serializers.CharField(max_length=200)


class PartnerSerializer(serializers.ModelSerializer):
    merchant_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Partner
        fields = ["id", "name", "kind", "parent", "status", "merchant_count"]
        read_only_fields = ["id", "merchant_count"]
        validators = []


RevealBank = inline_serializer("RevealedAccountNumber", {"account_number": serializers.CharField()})
RevealOwner = inline_serializer("RevealedIdNumber", {"id_number": serializers.CharField()})


# ---------------------------------------------------------------------------
# Viewsets
# ---------------------------------------------------------------------------


def _list_retrieve(output, **more):
    return extend_schema_view(
        list=extend_schema(parameters=[MERCHANT_PK], responses=output),
        retrieve=extend_schema(parameters=[MERCHANT_PK], responses=output),
        **more,
    )


@_list_retrieve(
    ContactSerializer,
    create=extend_schema(parameters=[MERCHANT_PK], responses={201: ContactSerializer}),
    partial_update=extend_schema(parameters=[MERCHANT_PK], responses=ContactSerializer),
)
class ContactViewSet(MerchantRecordViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    model = Contact
    serializer_class = output_serializer = input_serializer = ContactSerializer
    create_service = staticmethod(services.contact_create)

    def partial_update(self, request, *args, **kwargs):
        contact = self.get_object()
        serializer = ContactSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        contact = services.contact_update(
            contact=contact, actor=request.user, **serializer.validated_data
        )
        return self.respond(contact)


@_list_retrieve(
    OwnerOutputSerializer,
    create=extend_schema(
        parameters=[MERCHANT_PK],
        request=OwnerInputSerializer,
        responses={201: OwnerOutputSerializer},
    ),
    reveal=extend_schema(parameters=[MERCHANT_PK], request=None, responses=RevealOwner),
)
class OwnerViewSet(
    RevealMixin, MerchantRecordViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin
):
    model = BeneficialOwner
    serializer_class = output_serializer = OwnerOutputSerializer
    input_serializer = OwnerInputSerializer
    create_service = staticmethod(services.owner_create)
    reveal_field = "id_number"


@_list_retrieve(
    BankAccountOutputSerializer,
    create=extend_schema(
        parameters=[MERCHANT_PK],
        request=BankAccountInputSerializer,
        responses={201: BankAccountOutputSerializer},
    ),
    reveal=extend_schema(parameters=[MERCHANT_PK], request=None, responses=RevealBank),
)
class BankAccountViewSet(
    RevealMixin, MerchantRecordViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin
):
    model = BankAccount
    serializer_class = output_serializer = BankAccountOutputSerializer
    input_serializer = BankAccountInputSerializer
    create_service = staticmethod(services.bank_account_create)
    reveal_field = "account_number"


@_list_retrieve(
    DocumentOutputSerializer,
    create=extend_schema(
        parameters=[MERCHANT_PK],
        request={"multipart/form-data": DocumentInputSerializer},
        responses={201: DocumentOutputSerializer},
    ),
    review=extend_schema(
        parameters=[MERCHANT_PK],
        request=DocumentReviewSerializer,
        responses=DocumentOutputSerializer,
    ),
)
class DocumentViewSet(MerchantRecordViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    model = Document
    serializer_class = output_serializer = DocumentOutputSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        return super().get_queryset().select_related("uploaded_by", "reviewed_by")

    def create(self, request, *args, **kwargs):
        serializer = DocumentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        document = services.document_upload(
            actor=request.user,
            merchant=self.get_merchant(),
            doc_type=data["doc_type"],
            upload=data["file"],
            expires_on=data.get("expires_on"),
        )
        return self.respond(document, status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def review(self, request, *args, **kwargs):
        serializer = DocumentReviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        document = services.document_review(
            actor=request.user, document=self.get_object(), **serializer.validated_data
        )
        return self.respond(document)


@_list_retrieve(
    ActivityOutputSerializer,
    create=extend_schema(
        parameters=[MERCHANT_PK],
        request=ActivityInputSerializer,
        responses={201: ActivityOutputSerializer},
    ),
    complete=extend_schema(
        parameters=[MERCHANT_PK], request=None, responses=ActivityOutputSerializer
    ),
)
class ActivityViewSet(MerchantRecordViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    model = Activity
    serializer_class = output_serializer = ActivityOutputSerializer
    input_serializer = ActivityInputSerializer
    create_service = staticmethod(services.activity_log)

    def get_queryset(self):
        return super().get_queryset().select_related("created_by", "assignee")

    @action(detail=True, methods=["post"])
    def complete(self, request, *args, **kwargs):
        return self.respond(services.task_complete(actor=request.user, task=self.get_object()))


@_list_retrieve(
    PricingPlanSerializer,
    create=extend_schema(parameters=[MERCHANT_PK], responses={201: PricingPlanSerializer}),
)
class PricingPlanViewSet(MerchantRecordViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    model = PricingPlan
    serializer_class = output_serializer = PricingPlanSerializer

    def get_queryset(self):
        return super().get_queryset().prefetch_related("rates")

    def create(self, request, *args, **kwargs):
        serializer = PricingPlanSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        plan = services.pricing_plan_create(
            actor=request.user,
            merchant=self.get_merchant(),
            name=data["name"],
            currency=data["currency"],
            rates=[dict(r) for r in data["rates"]],
            effective_from=data.get("effective_from"),
        )
        return self.respond(plan, status.HTTP_201_CREATED)


@_list_retrieve(
    ContractSerializer,
    create=extend_schema(parameters=[MERCHANT_PK], responses={201: ContractSerializer}),
    sign=extend_schema(
        parameters=[MERCHANT_PK], request=ContractSignSerializer, responses=ContractSerializer
    ),
)
class ContractViewSet(MerchantRecordViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    model = Contract
    serializer_class = output_serializer = input_serializer = ContractSerializer
    create_service = staticmethod(services.contract_create)

    @action(detail=True, methods=["post"])
    def sign(self, request, *args, **kwargs):
        serializer = ContractSignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contract = services.contract_sign(
            actor=request.user, contract=self.get_object(), **serializer.validated_data
        )
        return self.respond(contract)


class PartnerViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Partners (agents, ISOs, resellers); writes need the admin role's partner rights."""

    serializer_class = PartnerSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.partner_list(user=self.request.user).order_by("name", "pk")

    def create(self, request, *args, **kwargs):
        if not permissions.has_global(request.user, Partner, "add"):
            raise PermissionDenied
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        partner = services.partner_create(actor=request.user, **serializer.validated_data)
        return self._respond(partner, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partner = self.get_object()
        if not permissions.has_global(request.user, Partner, "change"):
            raise PermissionDenied
        serializer = self.get_serializer(partner, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        partner = services.partner_update(
            partner=partner, actor=request.user, **serializer.validated_data
        )
        return self._respond(partner)

    def _respond(self, partner: Partner, code=status.HTTP_200_OK):
        # Re-read through the selector for the annotated merchant count.
        fresh = selectors.partner_get(user=self.request.user, pk=partner.pk)
        return Response(PartnerSerializer(fresh).data, status=code)
