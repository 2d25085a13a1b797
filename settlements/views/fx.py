"""FX rates: the list, one rate at a time, and CSV imports that write all rows or none."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST, require_safe

from core import permissions
from core.exceptions import DomainError
from settlements import selectors
from settlements.forms_runs import FxFilterForm, FxImportForm, FxRateForm, add_service_errors
from settlements.models import FxRate
from settlements.services import fx

RATES_PER_PAGE = 50


def _require_rates_visible(request: HttpRequest) -> None:
    if not permissions.has_global(request.user, FxRate, "view"):
        raise Http404


def _require_add(request: HttpRequest) -> None:
    if not permissions.has_global(request.user, FxRate, "add"):
        raise PermissionDenied


def _list_page(
    request: HttpRequest,
    *,
    rate_form: FxRateForm | None = None,
    import_form: FxImportForm | None = None,
    import_report: fx.FxImportReport | None = None,
    status: int = 200,
) -> HttpResponse:
    filters = FxFilterForm(request.GET or None)
    qs = selectors.fx_rate_list(user=request.user)
    if filters.is_valid():
        data = filters.cleaned_data
        if data["currency"]:
            qs = qs.filter(Q(base=data["currency"]) | Q(quote=data["currency"]))
        if data["date_from"]:
            qs = qs.filter(rate_on__gte=data["date_from"])
        if data["date_to"]:
            qs = qs.filter(rate_on__lte=data["date_to"])
    page = Paginator(qs, RATES_PER_PAGE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    can_add = permissions.has_global(request.user, FxRate, "add")
    ctx = {
        "form": filters,
        "page": page,
        "query": params.urlencode(),
        "can_add": can_add,
        "rate_form": rate_form or (FxRateForm() if can_add else None),
        "import_form": import_form or (FxImportForm() if can_add else None),
        "import_report": import_report,
        "columns": ",".join(fx.CSV_COLUMNS),
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "fx-results":
        return render(request, "settlements/partials/fx_rate_rows.html", ctx, status=status)
    return render(request, "settlements/fx_rate_list.html", ctx, status=status)


@require_safe
def fx_rate_list_view(request: HttpRequest) -> HttpResponse:
    _require_rates_visible(request)
    return _list_page(request)


@require_POST
def fx_rate_set_view(request: HttpRequest) -> HttpResponse:
    _require_rates_visible(request)
    _require_add(request)
    form = FxRateForm(request.POST)
    if form.is_valid():
        try:
            rate = fx.fx_rate_set(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("Saved: on %(day)s, 1 %(base)s = %(rate)s %(quote)s.")
                % {
                    "day": rate.rate_on.isoformat(),
                    "base": rate.base,
                    "rate": rate.rate.normalize(),
                    "quote": rate.quote,
                },
            )
            return redirect("settlements:fx-rates")
    return _list_page(request, rate_form=form, status=400)


@require_POST
def fx_rate_import_view(request: HttpRequest) -> HttpResponse:
    _require_rates_visible(request)
    _require_add(request)
    form = FxImportForm(request.POST, request.FILES)
    report = None
    if form.is_valid():
        try:
            report = fx.fx_rates_import(actor=request.user, text=form.cleaned_data["file"])
        except DomainError as exc:
            form.add_error("file", exc.message)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            if not report.errors:
                messages.success(
                    request,
                    ngettext("%(n)d rate imported.", "%(n)d rates imported.", report.written)
                    % {"n": report.written},
                )
                return redirect("settlements:fx-rates")
    return _list_page(request, import_form=form, import_report=report, status=400)


urlpatterns = [
    path("fx-rates/", fx_rate_list_view, name="fx-rates"),
    path("fx-rates/set/", fx_rate_set_view, name="fx-rate-set"),
    path("fx-rates/import/", fx_rate_import_view, name="fx-rate-import"),
]
