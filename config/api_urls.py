from django.urls import path
from rest_framework.routers import DefaultRouter

from core.audit_api import AuditEntryViewSet
from core.converters import ID_REGEX
from merchants import api_nested
from merchants.api import MerchantViewSet
from onboarding.api import ApplicationViewSet, WorkflowViewSet
from settlements import api_urls as settlement_api_urls


class _Router(DefaultRouter):
    """Object ids are digits: anything else is no such object (404) before it
    reaches a selector that would fail to cast it (a 500). No format
    suffixes: the API speaks JSON only, and a suffix on an action was a 500."""

    include_format_suffixes = False

    def get_lookup_regex(self, viewset, lookup_prefix: str = "") -> str:
        field = getattr(viewset, "lookup_url_kwarg", None) or getattr(viewset, "lookup_field", "pk")
        value = getattr(viewset, "lookup_value_regex", ID_REGEX)
        return f"(?P<{lookup_prefix}{field}>{value})"


router = _Router()
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
    base = f"merchants/<id:merchant_pk>/{prefix}/"
    name = f"merchant-{prefix}"
    nested += [
        path(base, viewset.as_view({"get": "list", **list_extra}), name=f"{name}-list"),
        path(
            f"{base}<id:pk>/",
            viewset.as_view({"get": "retrieve", **detail_extra}),
            name=f"{name}-detail",
        ),
        *(
            path(f"{base}<id:pk>/{act}/", viewset.as_view({"post": act}), name=f"{name}-{act}")
            for act in actions
        ),
    ]

urlpatterns = [*nested, *settlement_urls, *router.urls]
