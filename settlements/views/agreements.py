"""Revenue-share agreement pages: the list, a new agreement with its tiers, ending one.

The form page shows the partner's place in the tree (parents, children and
their agreements) because one rule spans it: agreements along a referral path
share the basis and the currency during the same dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from core import permissions
from core.models import User
from merchants import selectors as merchant_selectors
from merchants.models import Partner
from settlements import selectors
from settlements.forms_runs import (
    AgreementEndForm,
    AgreementFilterForm,
    AgreementForm,
    TierFormSet,
    add_service_errors,
)
from settlements.models import RevenueShareAgreement
from settlements.services import agreements

AGREEMENTS_PER_PAGE = 25
TIER_PREFIX = "tiers"


def _require_agreements_visible(user: User) -> None:
    if not permissions.has_global(user, RevenueShareAgreement, "view"):
        raise Http404


def _partners(user: User):
    return merchant_selectors.partner_list(user=user).order_by("name", "pk")


def _pick_partner(user: User, raw: str | None) -> Partner | None:
    """The partner named in a query parameter, if this user can see it."""
    if not raw or not str(raw).isdigit():
        return None
    return merchant_selectors.partner_list(user=user).filter(pk=int(raw)).first()


# ---------------------------------------------------------------------------
# List and end
# ---------------------------------------------------------------------------


@require_safe
def agreement_list_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    _require_agreements_visible(user)
    form = AgreementFilterForm(request.GET or None, partners=_partners(user))
    partner = form.cleaned_data["partner"] if form.is_valid() else None
    qs = selectors.agreement_list(user=user, partner=partner)
    page = Paginator(qs, AGREEMENTS_PER_PAGE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    ctx = {
        "form": form,
        "partner": partner,
        "page": page,
        "query": params.urlencode(),
        "today": timezone.localdate(),
        "can_add": permissions.has_global(user, RevenueShareAgreement, "add"),
        "can_change": permissions.has_global(user, RevenueShareAgreement, "change"),
    }
    if (
        request.headers.get("HX-Request")
        and request.headers.get("HX-Target") == "agreement-results"
    ):
        return render(request, "settlements/partials/agreement_rows.html", ctx)
    return render(request, "settlements/agreement_list.html", ctx)


@require_POST
def agreement_end_view(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    _require_agreements_visible(user)
    agreement = selectors.agreement_get(user=user, pk=pk)
    if not permissions.has_global(user, RevenueShareAgreement, "change"):
        raise PermissionDenied
    form = AgreementEndForm(request.POST)
    back = f"{reverse('settlements:agreements')}?partner={agreement.partner_id}"
    if not form.is_valid():
        messages.error(request, _("Enter the last day as a date."))
        return redirect(back)
    try:
        agreement = agreements.agreement_end(
            actor=user, agreement=agreement, valid_to=form.cleaned_data["valid_to"]
        )
    except ValidationError as exc:
        messages.error(
            request,
            _("The agreement was not ended: %(why)s") % {"why": " ".join(exc.messages)},
        )
    else:
        messages.success(
            request,
            _("The agreement of %(partner)s now ends on %(day)s.")
            % {"partner": agreement.partner, "day": agreement.valid_to.isoformat()},
        )
    return redirect(back)


# ---------------------------------------------------------------------------
# Create
# ---------------------------------------------------------------------------


@dataclass
class PathNode:
    partner: Partner
    depth: int
    agreements: list[RevenueShareAgreement] = field(default_factory=list)


@dataclass
class PartnerContext:
    """The partner's referral path: who is above it, who below, and on which terms."""

    partner: Partner
    ancestors: list[PathNode]
    own: list[RevenueShareAgreement]
    descendants: list[PathNode]

    @property
    def depth(self) -> int:
        return len(self.ancestors)


def _partner_context(user: User, partner: Partner) -> PartnerContext:
    # One query for the tree and one for the agreements along it.
    partners = {p.pk: p for p in merchant_selectors.partner_list(user=user).order_by("name", "pk")}
    children: dict[int, list[int]] = {}
    for p in partners.values():
        if p.parent_id:
            children.setdefault(p.parent_id, []).append(p.pk)
    chain, up = [], partners.get(partner.parent_id) if partner.parent_id else None
    while up is not None and up not in chain:
        chain.append(up)
        up = partners.get(up.parent_id) if up.parent_id else None
    ancestors = [PathNode(p, depth) for depth, p in enumerate(reversed(chain))]
    descendants: list[PathNode] = []

    def walk(pk: int, depth: int) -> None:
        for child in children.get(pk, []):
            descendants.append(PathNode(partners[child], depth))
            walk(child, depth + 1)

    walk(partner.pk, len(ancestors) + 1)
    nodes = {n.partner.pk: n for n in [*ancestors, *descendants]}
    own: list[RevenueShareAgreement] = []
    related = selectors.agreement_list(user=user).filter(
        Q(partner_id__in=[*nodes, partner.pk]),
        Q(valid_to__isnull=True) | Q(valid_to__gte=timezone.localdate()),
    )
    for agreement in related:
        if agreement.partner_id == partner.pk:
            own.append(agreement)
        else:
            nodes[agreement.partner_id].agreements.append(agreement)
    return PartnerContext(partner=partner, ancestors=ancestors, own=own, descendants=descendants)


def _form_page(
    request: HttpRequest,
    form: AgreementForm,
    tiers: TierFormSet,
    *,
    partner: Partner | None,
    status: int = 200,
) -> HttpResponse:
    ctx = {
        "form": form,
        "tiers": tiers,
        "partner_context": _partner_context(request.user, partner) if partner else None,
    }
    return render(request, "settlements/agreement_form.html", ctx, status=status)


@require_http_methods(["GET", "POST"])
def agreement_create_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    _require_agreements_visible(user)
    if not permissions.has_global(user, RevenueShareAgreement, "add"):
        raise PermissionDenied
    partners = _partners(user)

    if request.method == "GET":
        partner = _pick_partner(user, request.GET.get("partner"))
        if request.headers.get("HX-Request") and request.headers.get("HX-Target") == (
            "partner-context"
        ):
            # The partner select changed: only the tree panel is redrawn.
            ctx = {"partner_context": _partner_context(user, partner) if partner else None}
            return render(request, "settlements/partials/agreement_partner_context.html", ctx)
        form = AgreementForm(
            initial={"partner": partner, "valid_from": _first_of_next_month()}, partners=partners
        )
        tiers = TierFormSet(prefix=TIER_PREFIX, initial=[{"from_volume": 0}])
        return _form_page(request, form, tiers, partner=partner)

    form = AgreementForm(request.POST, partners=partners)
    tiers = TierFormSet(request.POST, prefix=TIER_PREFIX)
    form_ok, tiers_ok = form.is_valid(), tiers.is_valid()
    if form_ok and tiers_ok:
        try:
            agreement = agreements.agreement_create(
                actor=user,
                partner=form.cleaned_data["partner"],
                tiers=tiers.tiers(),
                **form.service_fields(),
            )
        except ValidationError as exc:
            _service_errors(form, tiers, exc)
        else:
            messages.success(
                request,
                _("Agreement for %(partner)s saved, in force from %(day)s.")
                % {"partner": agreement.partner, "day": agreement.valid_from.isoformat()},
            )
            return redirect(f"{reverse('settlements:agreements')}?partner={agreement.partner_id}")
    partner = form.cleaned_data.get("partner") or _pick_partner(user, request.POST.get("partner"))
    return _form_page(request, form, tiers, partner=partner, status=400)


def _service_errors(form: AgreementForm, tiers: TierFormSet, exc: ValidationError) -> None:
    """Errors about the tiers go above the tier rows; the rest on their fields."""
    if hasattr(exc, "error_dict") and "tiers" in exc.error_dict:
        for error in exc.error_dict.pop("tiers"):
            tiers.add_service_error(error)
        if not exc.error_dict:
            return
    add_service_errors(form, exc)


def _first_of_next_month() -> date:
    today = timezone.localdate()
    return date(today.year + today.month // 12, today.month % 12 + 1, 1)


urlpatterns = [
    path("agreements/", agreement_list_view, name="agreements"),
    path("agreements/new/", agreement_create_view, name="agreement-create"),
    path("agreements/<id:pk>/end/", agreement_end_view, name="agreement-end"),
]
