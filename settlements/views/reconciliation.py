"""Reconciliation pages: upload a gateway report, review the differences, resolve them."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from core import permissions
from core.exceptions import DomainError
from settlements import selectors
from settlements.forms_reconciliation import ReconciliationUploadForm, ResolveForm
from settlements.models import Reconciliation, ReconciliationItem
from settlements.services import reconciliation as services

PAGE_SIZE = 50
Outcome = ReconciliationItem.Outcome
# Tab key → label; "unresolved" (what still needs someone) opens first.
TABS = {
    "unresolved": gettext_lazy("Unresolved"),
    Outcome.AMOUNT_MISMATCH.value: gettext_lazy("Mismatches"),
    Outcome.MISSING_IN_LEDGER.value: gettext_lazy("Missing from the ledger"),
    Outcome.MISSING_IN_REPORT.value: gettext_lazy("Missing from the report"),
    Outcome.MATCHED.value: gettext_lazy("Matched"),
    "all": gettext_lazy("All"),
}


def _can(request: HttpRequest, model, action: str) -> bool:
    return permissions.has_global(request.user, model, action)


@require_http_methods(["GET", "POST"])
def reconciliation_list_view(request: HttpRequest) -> HttpResponse:
    if not _can(request, Reconciliation, "view"):
        raise PermissionDenied
    can_upload = _can(request, Reconciliation, "add")
    sources = selectors.source_list(user=request.user).filter(is_active=True)
    form = ReconciliationUploadForm(request.POST or None, request.FILES or None, sources=sources)
    rejected: services.ReportRejected | None = None
    if request.method == "POST":
        if not can_upload:
            raise PermissionDenied
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                text = services.decode(upload.read())
                done = services.reconciliation_upload(
                    actor=request.user,
                    source=form.cleaned_data["source"],
                    filename=upload.name,
                    text=text,
                )
            except services.ReportRejected as exc:
                rejected = exc
                form.add_error("file", exc.message)
            else:
                messages.success(
                    request,
                    _("Report compared: %(matched)d matched, %(open)d to look at.")
                    % {
                        "matched": done.matched,
                        "open": done.mismatched + done.missing_in_ledger + done.missing_in_report,
                    },
                )
                return redirect(done)
    page = Paginator(selectors.reconciliation_list(user=request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    ctx = {
        "form": form,
        "can_upload": can_upload,
        "page": page,
        "rejected": rejected,
        "columns": services.COLUMNS,
    }
    status = 400 if form.errors else 200
    return render(request, "settlements/reconciliation_list.html", ctx, status=status)


def _items(reconciliation: Reconciliation, show: str) -> QuerySet[ReconciliationItem]:
    if show == "unresolved":
        return (
            selectors.reconciliation_items(reconciliation=reconciliation)
            .filter(resolved_at__isnull=True)
            .exclude(outcome=Outcome.MATCHED)
        )
    return selectors.reconciliation_items(
        reconciliation=reconciliation, outcome="" if show == "all" else show
    )


def _show(value: str | None) -> str:
    return value if value in TABS else "unresolved"


def reconciliation_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    reconciliation = selectors.reconciliation_get(user=request.user, pk=pk)
    show = _show(request.GET.get("show"))
    page = Paginator(_items(reconciliation, show), PAGE_SIZE).get_page(request.GET.get("page"))
    counts = {
        "unresolved": _items(reconciliation, "unresolved").count(),
        Outcome.AMOUNT_MISMATCH.value: reconciliation.mismatched,
        Outcome.MISSING_IN_LEDGER.value: reconciliation.missing_in_ledger,
        Outcome.MISSING_IN_REPORT.value: reconciliation.missing_in_report,
        Outcome.MATCHED.value: reconciliation.matched,
        "all": reconciliation.matched
        + reconciliation.mismatched
        + reconciliation.missing_in_ledger
        + reconciliation.missing_in_report,
    }
    ctx = {
        "reconciliation": reconciliation,
        "tabs": [(key, label, counts[key]) for key, label in TABS.items()],
        "show": show,
        "page": page,
        "can_resolve": _can(request, ReconciliationItem, "change"),
        "resolve_form": ResolveForm(),
    }
    template = (
        "settlements/partials/reconciliation_items.html"
        if request.headers.get("HX-Request")
        and request.headers.get("HX-Target") == "reconciliation-items"
        else "settlements/reconciliation_detail.html"
    )
    return render(request, template, ctx)


@require_POST
def reconciliation_resolve_view(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    reconciliation = selectors.reconciliation_get(user=request.user, pk=pk)
    item = get_object_or_404(
        selectors.reconciliation_items(reconciliation=reconciliation), pk=item_pk
    )
    form = ResolveForm(request.POST)
    if form.is_valid():
        try:
            item = services.reconciliation_item_resolve(
                actor=request.user, item=item, note=form.cleaned_data["note"]
            )
        except ValidationError as exc:
            for message in exc.message_dict.get("note", exc.messages):
                form.add_error("note", message)
        except DomainError as exc:
            form.add_error(None, exc.message)
    if request.headers.get("HX-Request"):
        ctx = {
            "item": item,
            "reconciliation": reconciliation,
            "can_resolve": _can(request, ReconciliationItem, "change"),
            "resolve_form": form,
            "show": _show(request.POST.get("show")),
        }
        # Errors come back with 200: htmx swaps only successful responses, and
        # the row must show why the note was refused.
        return render(request, "settlements/partials/reconciliation_item_row.html", ctx)
    if form.errors:
        errors = [str(e) for errors in form.errors.values() for e in errors]
        messages.error(request, " ".join(errors))
    else:
        messages.success(request, _("%(id)s resolved.") % {"id": item.external_id})
    query = {"show": _show(request.POST.get("show"))}
    if (request.POST.get("page") or "").isdigit():
        query["page"] = request.POST["page"]
    return redirect(f"{reconciliation.get_absolute_url()}?{urlencode(query)}")


urlpatterns = [
    path("reconciliations/", reconciliation_list_view, name="reconciliations"),
    path("reconciliations/<id:pk>/", reconciliation_detail_view, name="reconciliation-detail"),
    path(
        "reconciliations/<id:pk>/items/<id:item_pk>/resolve/",
        reconciliation_resolve_view,
        name="reconciliation-resolve",
    ),
]
