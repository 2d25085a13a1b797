"""Onboarding API: applications, decisions, compliance checks and workflows.

Invalid transitions answer 409 with the reason (core.api's exception handler).
"""

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core import permissions
from merchants import selectors as merchant_selectors
from onboarding import checks, conditions, selectors, services
from onboarding.models import (
    Application,
    ComplianceCheck,
    StepDecision,
    WorkflowDefinition,
    WorkflowStep,
)


class StepSerializer(serializers.ModelSerializer):
    group = serializers.SlugRelatedField(slug_field="name", read_only=True)
    condition_text = serializers.SerializerMethodField()

    class Meta:
        model = WorkflowStep
        fields = ["id", "position", "name", "group", "approvals_required", "condition",
                  "condition_text", "sla_hours", "required_documents"]  # fmt: skip
        read_only_fields = fields

    def get_condition_text(self, step: WorkflowStep) -> str:
        return conditions.describe(step.condition)


class WorkflowSerializer(serializers.ModelSerializer):
    steps = StepSerializer(many=True, read_only=True)

    class Meta:
        model = WorkflowDefinition
        fields = ["id", "key", "name", "version", "status", "published_at", "steps"]
        read_only_fields = fields


class CheckSerializer(serializers.ModelSerializer):
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ComplianceCheck
        fields = ["id", "kind", "status", "summary", "detail", "blocks_step", "resolved_by",
                  "resolved_at", "resolution_reason"]  # fmt: skip
        read_only_fields = fields


class DecisionSerializer(serializers.ModelSerializer):
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = StepDecision
        fields = ["id", "step", "step_round", "kind", "decided_by", "comment", "send_back_to",
                  "created_at"]  # fmt: skip
        read_only_fields = fields


class ApplicationSerializer(serializers.ModelSerializer):
    current_step = StepSerializer(read_only=True)
    submitted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    compliance_checks = CheckSerializer(many=True, read_only=True)

    class Meta:
        model = Application
        fields = ["id", "merchant", "definition", "status", "current_step", "submitted_by",
                  "submitted_at", "decided_at", "outcome_reason", "compliance_checks",
                  "created_at"]  # fmt: skip
        read_only_fields = fields


class ApplicationCreateSerializer(serializers.Serializer):
    merchant = serializers.IntegerField()


class DecisionInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=StepDecision.Kind.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    items = serializers.ListField(child=serializers.CharField(max_length=300), required=False)
    send_back_to = serializers.PrimaryKeyRelatedField(
        queryset=WorkflowStep.objects.all(), required=False, allow_null=True
    )


class ResolveSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[ComplianceCheck.Status.CLEARED.value, ComplianceCheck.Status.CONFIRMED.value]
    )
    reason = serializers.CharField()


class ApplicationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ApplicationSerializer

    def get_queryset(self):
        user = self.request.user
        if self.request.query_params.get("awaiting") == "me":
            qs = selectors.awaiting_group(user=user)
        else:
            qs = selectors.application_list(user=user)
        return qs.prefetch_related("compliance_checks")

    def get_object(self):
        return selectors.application_get(user=self.request.user, pk=self.kwargs["pk"])

    def _respond(self, application, code=status.HTTP_200_OK):
        fresh = self.get_queryset().get(pk=application.pk)
        return Response(ApplicationSerializer(fresh).data, status=code)

    @extend_schema(request=ApplicationCreateSerializer, responses={201: ApplicationSerializer})
    def create(self, request, *args, **kwargs):
        serializer = ApplicationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        merchant = merchant_selectors.merchant_get(
            user=request.user, pk=serializer.validated_data["merchant"]
        )
        application = services.application_create(actor=request.user, merchant=merchant)
        return self._respond(application, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApplicationSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request, *args, **kwargs):
        application = services.application_submit(actor=request.user, application=self.get_object())
        return self._respond(application)

    @extend_schema(request=None, responses=ApplicationSerializer)
    @action(detail=True, methods=["post"])
    def resubmit(self, request, *args, **kwargs):
        application = services.application_resubmit(
            actor=request.user, application=self.get_object()
        )
        return self._respond(application)

    @extend_schema(request=DecisionInputSerializer, responses={201: DecisionSerializer})
    @action(detail=True, methods=["post"], url_path="decisions")
    def decisions(self, request, *args, **kwargs):
        application = self.get_object()
        serializer = DecisionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not request.user.has_perm("onboarding.add_stepdecision") and not request.user.has_perm(
            "onboarding.change_application"
        ):
            raise PermissionDenied
        decision = services.decision_record(
            actor=request.user, application=application, **serializer.validated_data
        )
        return Response(DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ResolveSerializer, responses=CheckSerializer)
    @action(detail=True, methods=["post"], url_path=r"checks/(?P<check_pk>\d+)/resolve")
    def resolve_check(self, request, *args, check_pk=None, **kwargs):
        application = self.get_object()
        check = application.compliance_checks.filter(pk=check_pk).first()
        if check is None:
            from django.http import Http404

            raise Http404
        serializer = ResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        check = checks.compliance_check_resolve(
            actor=request.user, check=check, **serializer.validated_data
        )
        return Response(CheckSerializer(check).data)


class WorkflowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = WorkflowSerializer

    def get_queryset(self):
        return selectors.workflow_list(user=self.request.user)

    def list(self, request, *args, **kwargs):
        if not permissions.has_global(request.user, WorkflowDefinition, "view"):
            raise PermissionDenied
        return super().list(request, *args, **kwargs)
