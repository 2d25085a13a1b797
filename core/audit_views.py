"""Pages of the compliance audit trail: the list, one entry, one record's
history, the merchant 360 tab and the two exports (CSV, signed bundle).

Every page needs ``core.view_auditentry``; the selectors raise
PermissionDenied without it, which Django answers with 403 (the trail is one
global right, there is no single object whose existence a 404 would hide).
Exports are POSTs: each one is itself recorded on the trail.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST, require_safe

from core import checkpoints, evidence, selectors, trail
from core.forms import StyledFormMixin
from core.models import AuditEntry

RECORD_PAGE_SIZE = 50
MERCHANT_TAB_SIZE = 20
# Exports and verifications name the trail itself; no history model stands for it.
TRAIL_MODEL = ("core.auditentry", gettext_lazy("core · audit trail"))


class AuditFilterForm(StyledFormMixin, forms.Form):
    """Renders the filter bar; ``selectors.AuditFilters`` reads the values."""

    compact = True

    q = forms.CharField(
        required=False,
        label=gettext_lazy("Search"),
        widget=forms.SearchInput(
            attrs={"placeholder": gettext_lazy("Record, reason or origin (IP, task)")}
        ),
    )
    actor = forms.CharField(
        required=False,
        label=gettext_lazy("Actor"),
        widget=forms.TextInput(attrs={"placeholder": gettext_lazy("Username or webhook source")}),
    )
    action = forms.ChoiceField(
        required=False,
        label=gettext_lazy("Action"),
        choices=[("", gettext_lazy("Any action")), *AuditEntry.Action.choices],
    )
    model = forms.ChoiceField(required=False, label=gettext_lazy("Record type"))
    object_id = forms.CharField(
        required=False,
        label=gettext_lazy("Object id"),
        widget=forms.TextInput(attrs={"placeholder": gettext_lazy("Object id"), "size": 8}),
    )
    merchant = forms.CharField(
        required=False,
        label=gettext_lazy("Merchant id"),
        widget=forms.TextInput(
            attrs={"placeholder": gettext_lazy("Merchant id"), "inputmode": "numeric", "size": 8}
        ),
    )
    date_from = forms.DateField(
        required=False, label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, models=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", gettext_lazy("Any record type")), *models]
        for field in self.fields.values():  # placeholders are no labels
            field.widget.attrs.setdefault("aria-label", field.label)


def _model_choices() -> list[tuple[str, str]]:
    choices = selectors.audit_model_choices()
    if TRAIL_MODEL[0] not in dict(choices):
        choices.append(TRAIL_MODEL)
    return choices


def _diff_rows(entry: AuditEntry) -> list[tuple[str, object, object]]:
    """(field, before, after) rows. Built here, not in the template: a changed
    field named like a dict method ("items") would shadow it there."""
    rows = []
    # By name: PostgreSQL's jsonb keeps no key order of its own to show.
    for name, pair in sorted((entry.changes or {}).items()):
        if isinstance(pair, list | tuple) and len(pair) == 2:
            rows.append((name, pair[0], pair[1]))
        else:  # not the usual [before, after]: shown as it is
            rows.append((name, None, pair))
    return rows


def _verification() -> dict | None:
    """The latest recorded verification, its fields unwrapped from [None, value]."""
    entry = trail.last_verification()
    if entry is None:
        return None
    return {
        "entry": entry,
        "at": entry.created_at,
        "intact": entry.success,
        "result": trail.recorded_values(entry),
    }


def _checkpoint() -> dict | None:
    latest = checkpoints.latest()
    if latest is None:
        return None
    name, payload, valid = latest
    at = parse_datetime(payload.get("created_at", "")) if payload else None
    return {
        "name": name,
        "valid": valid,
        "seal_seq": payload.get("seal_seq"),
        "total": payload.get("total"),
        "at": at,
    }


def _filters_label(filters: selectors.AuditFilters) -> str:
    return urlencode(filters.as_params()) or "all"


@require_safe
def audit_list_view(request: HttpRequest) -> HttpResponse:
    filters = selectors.AuditFilters.from_params(request.GET)
    qs = selectors.audit_entry_list(user=request.user, filters=filters)
    page = selectors.audit_page(qs, before=request.GET.get("before"))
    query = urlencode(filters.as_params())
    ctx = {
        "form": AuditFilterForm(request.GET or None, models=_model_choices()),
        "filters": filters,
        "filter_params": filters.as_params(),
        "page": page,
        "entries": page.entries,
        "query": query,
        "newest_url": f"?{query}" if query else "?",
        "older_url": (
            f"?{urlencode({**filters.as_params(), 'before': page.next_before})}"
            if page.next_before
            else ""
        ),
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "audit-results":
        return render(request, "core/partials/audit_results.html", ctx)
    ctx.update(
        verification=_verification(),
        checkpoint=_checkpoint(),
        checkpoint_location=checkpoints.location(),
        fingerprint=evidence.fingerprint(),
        bundle_limit=evidence.BUNDLE_LIMIT,
    )
    return render(request, "core/audit_list.html", ctx)


@require_safe
def audit_entry_view(request: HttpRequest, pk: int) -> HttpResponse:
    entry = selectors.audit_entry_get(user=request.user, pk=pk)
    ctx = {
        "entry": entry,
        "diff": _diff_rows(entry),
        "model_label": dict(_model_choices()).get(entry.model, entry.model),
        "seal": trail.seal_of(entry),
    }
    return render(request, "core/audit_entry.html", ctx)


@require_safe
def audit_record_view(request: HttpRequest, model: str, object_id: str) -> HttpResponse:
    qs = selectors.audit_record_history(user=request.user, model=model, object_id=object_id)
    page = Paginator(qs, RECORD_PAGE_SIZE).get_page(request.GET.get("page"))
    for entry in page:
        entry.diff = _diff_rows(entry)
    label = next((e.object_label for e in reversed(page.object_list) if e.object_label), "")
    ctx = {
        "page": page,
        "query": "",
        "model": model.lower(),
        "object_id": object_id,
        "object_label": label,
        "model_label": dict(_model_choices()).get(model.lower(), model),
    }
    return render(request, "core/audit_record.html", ctx)


@require_safe
def audit_merchant_tab_view(request: HttpRequest, merchant_id: int) -> HttpResponse:
    """The merchant 360 page's Audit tab, loaded when the tab is first shown."""
    filters = selectors.AuditFilters(merchant=merchant_id)
    qs = selectors.audit_entry_list(user=request.user, filters=filters)
    entries = list(qs[: MERCHANT_TAB_SIZE + 1])
    ctx = {
        "entries": entries[:MERCHANT_TAB_SIZE],
        "more": len(entries) > MERCHANT_TAB_SIZE,
        "merchant_id": merchant_id,
    }
    return render(request, "core/partials/audit_merchant_tab.html", ctx)


def _pinned(qs):
    """The entries matching now: what the export is about to record (and any
    entry written while it streams) stays out of it."""
    newest = qs.values_list("id", flat=True).first()
    return qs.filter(id__lte=newest) if newest else qs.none()


@require_POST
def audit_export_csv_view(request: HttpRequest) -> HttpResponse:
    filters = selectors.AuditFilters.from_params(request.POST)
    qs = _pinned(selectors.audit_entry_list(user=request.user, filters=filters))
    # Recorded before streaming: a download cut short was still handed out.
    trail.append(
        action=trail.Action.EXPORT,
        model="core.auditentry",
        object_label="audit trail CSV",
        actor=request.user,
        changes={"filters": [None, _filters_label(filters)], "entries": [None, qs.count()]},
    )
    response = StreamingHttpResponse(
        evidence.csv_lines(evidence.iterate(qs)), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="audit-trail-{stamp}.csv"'
    return response


@require_POST
def audit_export_bundle_view(request: HttpRequest) -> HttpResponse:
    filters = selectors.AuditFilters.from_params(request.POST)
    qs = _pinned(selectors.audit_entry_list(user=request.user, filters=filters))
    if qs[: evidence.BUNDLE_LIMIT + 1].count() > evidence.BUNDLE_LIMIT:
        messages.error(
            request,
            _(
                "More than %(limit)s entries match these filters: narrow them (a date "
                "range, a merchant) for a signed bundle, or export them as CSV."
            )
            % {"limit": f"{evidence.BUNDLE_LIMIT:,}"},
        )
        query = urlencode(filters.as_params())
        return redirect(f"{reverse('core:audit')}?{query}" if query else reverse("core:audit"))
    entries = list(evidence.iterate(qs))
    raw = evidence.build_bundle(
        entries, filters=filters.as_params(), generated_by=request.user.get_username()
    )
    trail.append(
        action=trail.Action.EXPORT,
        model="core.auditentry",
        object_label="audit trail signed bundle",
        actor=request.user,
        changes={
            "filters": [None, _filters_label(filters)],
            "entries": [None, len(entries)],
        },
    )
    response = HttpResponse(raw, content_type="application/json")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="audit-evidence-{stamp}.json"'
    return response


urlpatterns: list = [
    path("audit/", audit_list_view, name="audit"),
    path("audit/entries/<id:pk>/", audit_entry_view, name="audit_entry"),
    path("audit/records/<str:model>/<path:object_id>/", audit_record_view, name="audit_record"),
    path("audit/merchant/<id:merchant_id>/", audit_merchant_tab_view, name="audit_merchant_tab"),
    path("audit/export/csv/", audit_export_csv_view, name="audit_export_csv"),
    path("audit/export/bundle/", audit_export_bundle_view, name="audit_export_bundle"),
]
