"""Ledger pages: the transaction list and the CSV import.

Both need a global transaction right (``view_transaction`` to read,
``add_transaction`` to import); without it they answer 403, as there is no
single object whose existence a 404 would hide.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from core import permissions
from settlements import selectors
from settlements.forms_ledger import (
    MAX_ROWS,
    ImportRefused,
    TransactionFilterForm,
    TransactionImportForm,
    read_csv,
)
from settlements.models import Transaction
from settlements.services import ingestion, ledger_rules

PAGE_SIZE = 50


@require_safe
def transaction_list_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not permissions.has_global(user, Transaction, "view"):
        raise PermissionDenied
    sources = list(selectors.source_list(user=user))
    form = TransactionFilterForm(request.GET or None, sources=sources)
    filters = selectors.TransactionFilters.from_params(request.GET)
    qs = selectors.transaction_list(user=user, filters=filters)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    ctx = {
        "form": form,
        "page": page,
        "query": params.urlencode(),
        "can_import": permissions.has_global(user, Transaction, "add"),
    }
    is_rows = request.headers.get("HX-Target") == "transaction-results"
    template = (
        "settlements/partials/transaction_rows.html"
        if request.headers.get("HX-Request") and is_rows
        else "settlements/transaction_list.html"
    )
    return render(request, template, ctx)


@require_http_methods(["GET", "POST"])
def transaction_import_view(request: HttpRequest) -> HttpResponse:
    """Upload → dry run with every problem per row → confirm (the same file, re-posted)."""
    user = request.user
    if not permissions.has_global(user, Transaction, "add"):
        raise PermissionDenied
    sources = selectors.source_list(user=user).filter(is_active=True)
    form = TransactionImportForm(request.POST or None, request.FILES or None, sources=sources)
    ctx = {"form": form, "columns": ledger_rules.ITEM_FIELDS, "max_rows": MAX_ROWS}
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            text = form.text()
            rows = read_csv(text)
        except ImportRefused as exc:
            form.add_error("file", str(exc))
        else:
            report = ingestion.transactions_import(
                actor=user,
                source=data["source"],
                rows=rows,
                commit=bool(data["confirm"]),
                only_valid=data["only_valid"],
            )
            ctx.update(
                report=report,
                payload=form.encode(text),
                source=data["source"],
                only_valid=data["only_valid"],
                confirmed=bool(data["confirm"]),
            )
            if report.written:
                messages.success(
                    request,
                    _("%(created)d transaction(s) stored, %(present)d already present.")
                    % {"created": report.created, "present": report.already_present},
                )
    status = 400 if form.errors else 200
    return render(request, "settlements/transaction_import.html", ctx, status=status)


urlpatterns: list = [
    path("transactions/", transaction_list_view, name="transactions"),
    path("transactions/import/", transaction_import_view, name="transaction-import"),
]
