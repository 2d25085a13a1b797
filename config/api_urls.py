from django.urls import path
from rest_framework.routers import DefaultRouter

from core.audit_api import AuditEntryViewSet
from merchants import api_nested
from merchants.api import MerchantViewSet
from onboarding.api import ApplicationViewSet, WorkflowViewSet
from settlements import api_urls as settlement_api_urls

router = DefaultRouter()
router.register("audit/entries", AuditEntryViewSet, basename="audit-entry")
router.register("merchants", MerchantViewSet, basename="merchant")
router.register("partners", api_nested.PartnerViewSet, basename="partner")
router.register("onboarding/applications", ApplicationViewSet, basename="application")
router.register("onboarding/workflows", WorkflowViewSet, basename="workflow")
settlement_urls = settlement_api_urls.register(router)

# Records of one merchant: /merchants/{merchant_pk}/<records>/[{pk}/[<action>/]]
NESTED = [
    ("contacts", api_nested.ContactViewSet, {"post": "create"}, {"patch": "partial_update"}, []),
    ("owners", api_nested.OwnerViewSet, {"post": "create"}, {}, ["reveal"]),
    ("bank-accounts", api_nested.BankAccountViewSet, {"post": "create"}, {}, ["reveal"]),
    ("documents", api_nested.DocumentViewSet, {"post": "create"}, {}, ["review"]),
    ("activities", api_nested.ActivityViewSet, {"post": "create"}, {}, ["complete"]),
    ("pricing", api_nested.PricingPlanViewSet, {"post": "create"}, {}, []),
    ("contracts", api_nested.ContractViewSet, {"post": "create"}, {}, ["sign"]),
]

nested = []
for prefix, viewset, list_extra, detail_extra, actions in NESTED:
    base = f"merchants/<int:merchant_pk>/{prefix}/"
    name = f"merchant-{prefix}"
    nested += [
        path(base, viewset.as_view({"get": "list", **list_extra}), name=f"{name}-list"),
        path(
            f"{base}<int:pk>/",
            viewset.as_view({"get": "retrieve", **detail_extra}),
            name=f"{name}-detail",
        ),
        *(
            path(f"{base}<int:pk>/{act}/", viewset.as_view({"post": act}), name=f"{name}-{act}")
            for act in actions
        ),
    ]

urlpatterns = [*nested, *settlement_urls, *router.urls]
