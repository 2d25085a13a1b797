"""Exporting an approved run and downloading its stored files."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.http import content_disposition_header
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from core import services as core_services
from core.exceptions import DomainError
from settlements import selectors
from settlements.services import exports


@require_POST
def run_export_view(request: HttpRequest, run_pk: int) -> HttpResponse:
    run = selectors.run_get(user=request.user, pk=run_pk, action="view")
    try:
        files = exports.settlement_run_export(run=run, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            ngettext(
                "%(n)d file is ready to download.", "%(n)d files are ready to download.", len(files)
            )
            % {"n": len(files)},
        )
    return redirect(run)


@require_safe
@never_cache
def export_download_view(request: HttpRequest, run_pk: int, pk: int) -> HttpResponse:
    run = selectors.run_get(user=request.user, pk=run_pk, action="view")
    export = get_object_or_404(run.exports.all(), pk=pk)
    export = exports.settlement_export_download(
        export=export, actor=request.user, ip_address=core_services.client_ip(request)
    )
    response = HttpResponse(bytes(export.content), content_type=export.content_type)
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=export.filename
    )
    # Payout files hold clear account numbers: no cache may keep a copy.
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("runs/<id:run_pk>/export/", run_export_view, name="run-export"),
    path("runs/<id:run_pk>/exports/<id:pk>/", export_download_view, name="export-download"),
]
