from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from core import permissions
from merchants import selectors, services
from merchants.forms import MerchantFilterForm, MerchantForm
from merchants.models import Merchant

PAGE_SIZE = 25


def dashboard_view(request: HttpRequest) -> HttpResponse:
    merchants = selectors.merchant_list(user=request.user)
    rows = merchants.order_by().values("status").annotate(n=Count("pk"))
    by_status = {row["status"]: row["n"] for row in rows}
    ctx = {
        "status_counts": [
            {"value": value, "label": label, "count": by_status.get(value, 0)}
            for value, label in Merchant.Status.choices
        ],
        "total": sum(by_status.values()),
        "recent": merchants.order_by("-created_at", "-pk")[:8],
    }
    return render(request, "core/home.html", ctx)


def merchant_list_view(request: HttpRequest) -> HttpResponse:
    filters = selectors.MerchantFilters.from_params(request.GET)
    form = MerchantFilterForm(
        request.GET or None, owners=selectors.merchant_owners_visible(user=request.user)
    )
    qs = selectors.merchant_list(user=request.user, filters=filters)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    ctx = {
        "form": form,
        "page": page,
        "query": params.urlencode(),
        "can_add": permissions.has_global(request.user, Merchant, "add"),
    }
    template = (
        "merchants/partials/merchant_rows.html"
        if request.headers.get("HX-Request")
        and request.headers.get("HX-Target") == "merchant-results"
        else "merchants/merchant_list.html"
    )
    return render(request, template, ctx)


def merchant_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = selectors.merchant_get(user=request.user, pk=pk)
    ctx = {
        "merchant": merchant,
        "can_change": permissions.can(request.user, "change", merchant),
        "history": selectors.merchant_history(merchant=merchant)[:20],
    }
    return render(request, "merchants/merchant_detail.html", ctx)


def _form_kwargs(request: HttpRequest) -> dict:
    can_assign = request.user.has_perm("merchants.assign_merchant")
    return {
        "can_assign": can_assign,
        "owner_choices": selectors.merchant_owner_choices(user=request.user)
        if can_assign
        else None,
    }


def _save(request: HttpRequest, form: MerchantForm, merchant: Merchant | None) -> Merchant | None:
    """Run the service; field errors from it land on the form's fields."""
    if not form.is_valid():
        return None
    try:
        if merchant is None:
            return services.merchant_create(actor=request.user, **form.cleaned_data)
        return services.merchant_update(merchant=merchant, actor=request.user, **form.cleaned_data)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.error_dict.items():
                target = field if field in form.fields else None
                for error in errors:
                    form.add_error(target, error)
        else:
            form.add_error(None, exc)
        return None


@require_http_methods(["GET", "POST"])
def merchant_create_view(request: HttpRequest) -> HttpResponse:
    if not permissions.has_global(request.user, Merchant, "add"):
        raise PermissionDenied
    form = MerchantForm(request.POST or None, **_form_kwargs(request))
    if request.method == "POST":
        merchant = _save(request, form, None)
        if merchant is not None:
            messages.success(request, _("Merchant %(name)s created.") % {"name": merchant})
            return redirect(merchant)
    status = 400 if form.errors else 200
    return render(request, "merchants/merchant_form.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
def merchant_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = selectors.merchant_get(user=request.user, pk=pk, action="change")
    form = MerchantForm(request.POST or None, instance=merchant, **_form_kwargs(request))
    if request.method == "POST":
        saved = _save(request, form, merchant)
        if saved is not None:
            messages.success(request, _("Merchant %(name)s saved.") % {"name": saved})
            return redirect(saved)
    status = 400 if form.errors else 200
    ctx = {"form": form, "merchant": merchant}
    return render(request, "merchants/merchant_form.html", ctx, status=status)
