"""Settlement run pages: list and create, the run with its actions, statements.

Every view takes its run through ``selectors.run_get``: users who may not see
runs get a 404, users who see them but may not act get a 403. Refusals from the
services (wrong state, four eyes) come back as messages on the run page.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, F, Q
from django.db.models.functions import Length
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from core import permissions
from core.exceptions import DomainError
from core.models import User
from merchants import selectors as merchant_selectors
from settlements import selectors
from settlements.forms_runs import (
    AdjustmentForm,
    ApproveForm,
    RejectForm,
    RunCreateForm,
    RunFilterForm,
    add_service_errors,
)
from settlements.models import SettlementExport, SettlementRun
from settlements.services import runs

Status = SettlementRun.Status

RUNS_PER_PAGE = 25
STATEMENTS_PER_PAGE = 50
LINES_PER_PAGE = 100


def _require_runs_visible(user: User) -> None:
    # The list pages have no object to look up; without the model permission
    # they do not exist for this user, like every run behind them.
    if not permissions.has_global(user, SettlementRun, "view"):
        raise Http404


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


# ---------------------------------------------------------------------------
# List and create
# ---------------------------------------------------------------------------


def _list_page(
    request: HttpRequest, *, create_form: RunCreateForm | None = None, status: int = 200
) -> HttpResponse:
    user = request.user
    runs_qs = selectors.run_list(user=user)
    currencies = list(runs_qs.order_by("currency").values_list("currency", flat=True).distinct())
    # Its own ids: the new-run form on the same page has a currency field too.
    form = RunFilterForm(request.GET or None, currencies=currencies, auto_id="filter_%s")
    qs = runs_qs.annotate(
        # Approvals of the current round only: a rejection starts the count again.
        approvals_given=Count("approvals", filter=Q(approvals__submission=F("submission")))
    ).order_by(*SettlementRun._meta.ordering)  # GROUP BY drops the default ordering
    if form.is_valid():
        if form.cleaned_data["status"]:
            qs = qs.filter(status=form.cleaned_data["status"])
        if form.cleaned_data["currency"]:
            qs = qs.filter(currency=form.cleaned_data["currency"])
    page = Paginator(qs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    can_add = permissions.has_global(user, SettlementRun, "add")
    ctx = {
        "form": form,
        "page": page,
        "query": _query_without_page(request),
        "can_add": can_add,
        "create_form": create_form or (RunCreateForm() if can_add else None),
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "run-results":
        return render(request, "settlements/partials/run_rows.html", ctx, status=status)
    return render(request, "settlements/run_list.html", ctx, status=status)


@require_safe
def run_list_view(request: HttpRequest) -> HttpResponse:
    _require_runs_visible(request.user)
    return _list_page(request)


@require_POST
def run_create_view(request: HttpRequest) -> HttpResponse:
    _require_runs_visible(request.user)
    if not permissions.has_global(request.user, SettlementRun, "add"):
        raise PermissionDenied
    form = RunCreateForm(request.POST)
    if form.is_valid():
        try:
            run = runs.settlement_run_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("Run %(run)s created. Calculate it when the period's data is complete.")
                % {"run": run},
            )
            return redirect(run)
    return _list_page(request, create_form=form, status=400)


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def _status_changes(run: SettlementRun) -> list[dict]:
    """The run's moves from state to state, oldest first, from its history (one query).

    History also holds saves that left the status alone (adjustments re-total
    the run); only rows where the status differs from the one before count.
    """
    rows = run.history.order_by("history_date", "history_id").values(
        "status",
        "history_date",
        "history_change_reason",
        "history_user__username",
        "history_user__first_name",
        "history_user__last_name",
    )
    labels = dict(Status.choices)
    changes, previous = [], None
    for row in rows:
        if row["status"] != previous:
            full_name = " ".join(
                n for n in (row["history_user__first_name"], row["history_user__last_name"]) if n
            )
            changes.append(
                {
                    "status": row["status"],
                    "label": labels.get(row["status"], row["status"]),
                    "at": row["history_date"],
                    "who": full_name or row["history_user__username"] or _("system"),
                    "reason": row["history_change_reason"] or "",
                }
            )
        previous = row["status"]
    return changes


def _approve_blocked_reason(
    user: User, run: SettlementRun, approver_ids: set[int], makers: set[int]
) -> str:
    """Why four eyes keeps ``user`` from approving this submission ("" when it does not)."""
    if user.pk == run.prepared_by_id:
        return _(
            "You prepared this run, so you cannot approve it: four eyes needs another "
            "finance user to check the figures."
        )
    if user.pk in makers:
        return _(
            "You made an adjustment on this run, so you cannot approve it: four eyes needs "
            "someone who did not change the figures."
        )
    if user.pk in approver_ids:
        return _("You have approved this submission; a second, different approver must too.")
    return ""


def _run_page(
    request: HttpRequest, run: SettlementRun, *, status: int = 200, **forms
) -> HttpResponse:
    """The run page; ``forms`` replace the blank action forms (to show their errors)."""
    user = request.user
    can_change = permissions.has_global(user, SettlementRun, "change")
    can_approve = permissions.has_global(user, SettlementRun, "approve")
    can_adjust = run.is_editable and user.has_perm("settlements.add_adjustment")

    # Approvals of the current round; a rejected round's approvals count no more.
    in_approval = run.status == Status.SUBMITTED or run.is_frozen
    approvals = (
        list(run.approvals.filter(submission=run.submission).select_related("approver"))
        if in_approval
        else []
    )
    approver_ids = {a.approver_id for a in approvals}
    blocked = ""
    if run.status == Status.SUBMITTED and can_approve:
        blocked = _approve_blocked_reason(user, run, approver_ids, runs.makers(run))

    statements = Paginator(selectors.statement_list(run=run), STATEMENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    adjustments = list(run.adjustments.select_related("partner", "created_by"))

    adjustment_form = forms.get("adjustment_form")
    if can_adjust and adjustment_form is None:
        adjustment_form = _adjustment_form(request, run)

    ctx = {
        "run": run,
        "can_change": can_change,
        "stale": runs.calculation_is_stale(run),
        "can_approve": can_approve,
        "can_adjust": can_adjust,
        "approvals": approvals,
        "in_approval": in_approval,
        "approve_blocked": blocked,
        "approve_form": forms.get("approve_form") or ApproveForm(),
        "reject_form": forms.get("reject_form") or RejectForm(),
        "adjustment_form": adjustment_form,
        "statements": statements,
        "adjustments": adjustments,
        "shares_and_retained": run.total_share + run.platform_retained,
        "history": _status_changes(run),
        # Content stays in the database: the table needs only its size.
        "exports": run.exports.select_related("created_by", "statement__partner")
        .defer("content")
        .annotate(size=Length("content")),
    }
    return render(request, "settlements/run_detail.html", ctx, status=status)


def _adjustment_form(request: HttpRequest, run: SettlementRun, data=None) -> AdjustmentForm:
    on_run = set(run.statements.values_list("partner_id", flat=True))
    partners = merchant_selectors.partner_list(user=request.user).order_by("name", "pk")
    return AdjustmentForm(data, partners=partners, on_run=on_run)


@require_safe
def run_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = selectors.run_get(user=request.user, pk=pk)
    return _run_page(request, run)


@require_safe
@never_cache
def run_progress_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress bar the run page polls while the calculation runs."""
    run = selectors.run_get(user=request.user, pk=pk)
    response = render(request, "settlements/partials/run_progress.html", {"run": run})
    if run.status != Status.CALCULATING:
        # Done (or failed): htmx reloads the page, which shows the outcome.
        response["HX-Refresh"] = "true"
    return response


def _refused(request: HttpRequest, exc: DomainError | ValidationError) -> None:
    text = exc.message if isinstance(exc, DomainError) else " ".join(exc.messages)
    messages.error(request, text)


@require_POST
def run_calculate_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = selectors.run_get(user=request.user, pk=pk, action="change")
    try:
        runs.settlement_run_calculate(actor=request.user, run=run)
    except (DomainError, ValidationError) as exc:
        _refused(request, exc)
        return redirect(run)
    # Without a broker the calculation has already run by now; with one the
    # page polls until it has.
    run.refresh_from_db()
    if run.status == Status.CALCULATED:
        messages.success(request, _("The run is calculated."))
    elif run.status == Status.DRAFT and run.calculation_error:
        messages.error(request, _("The calculation stopped: %(e)s") % {"e": run.calculation_error})
    else:
        messages.info(request, _("Calculation started; this page follows its progress."))
    return redirect(run)


@require_POST
def run_submit_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = selectors.run_get(user=request.user, pk=pk, action="change")
    try:
        run = runs.settlement_run_submit(actor=request.user, run=run)
    except (DomainError, ValidationError) as exc:
        _refused(request, exc)
    else:
        if run.approvals_required > 1:
            messages.success(
                request, _("Submitted. Above the threshold: two different approvers must sign off.")
            )
        else:
            messages.success(request, _("Submitted for approval."))
    return redirect(run)


@require_POST
def run_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = selectors.run_get(user=request.user, pk=pk, action="approve")
    form = ApproveForm(request.POST)
    if not form.is_valid():
        return _run_page(request, run, status=400, approve_form=form)
    try:
        run = runs.settlement_run_approve(
            actor=request.user, run=run, comment=form.cleaned_data["comment"]
        )
    except (DomainError, ValidationError) as exc:
        _refused(request, exc)
    else:
        if run.status == Status.APPROVED:
            messages.success(request, _("Approved. The run is frozen and can be exported."))
        else:
            messages.success(
                request, _("Your approval is recorded; a second approver must also sign off.")
            )
    return redirect(run)


@require_POST
def run_reject_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = selectors.run_get(user=request.user, pk=pk, action="approve")
    form = RejectForm(request.POST)
    if form.is_valid():
        try:
            run = runs.settlement_run_reject(
                actor=request.user, run=run, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except DomainError as exc:
            _refused(request, exc)
            return redirect(run)
        else:
            messages.success(request, _("Rejected; the run is back in draft with your reason."))
            return redirect(run)
    return _run_page(request, run, status=400, reject_form=form)


# ---------------------------------------------------------------------------
# Adjustments
# ---------------------------------------------------------------------------


@require_POST
def adjustment_create_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = selectors.run_get(user=request.user, pk=pk, action="change")
    form = _adjustment_form(request, run, data=request.POST)
    if form.is_valid():
        try:
            runs.adjustment_create(actor=request.user, run=run, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        except DomainError as exc:
            _refused(request, exc)
            return redirect(run)
        else:
            messages.success(
                request,
                _("Adjustment for %(partner)s recorded.")
                % {"partner": form.cleaned_data["partner"]},
            )
            return redirect(f"{run.get_absolute_url()}#adjustments")
    return _run_page(request, run, status=400, adjustment_form=form)


@require_POST
def adjustment_delete_view(request: HttpRequest, pk: int, adj_pk: int) -> HttpResponse:
    run = selectors.run_get(user=request.user, pk=pk, action="change")
    adjustment = get_object_or_404(run.adjustments.select_related("partner"), pk=adj_pk)
    try:
        runs.adjustment_delete(actor=request.user, adjustment=adjustment)
    except (DomainError, ValidationError) as exc:
        _refused(request, exc)
    else:
        messages.success(
            request, _("Adjustment for %(partner)s removed.") % {"partner": adjustment.partner}
        )
    return redirect(f"{run.get_absolute_url()}#adjustments")


# ---------------------------------------------------------------------------
# Statements
# ---------------------------------------------------------------------------


@require_safe
def statement_detail_view(request: HttpRequest, run_pk: int, pk: int) -> HttpResponse:
    statement = selectors.statement_get(user=request.user, run_pk=run_pk, pk=pk)
    run = statement.run
    lines = Paginator(selectors.statement_lines(statement=statement), LINES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    pdf = (
        statement.exports.filter(kind=SettlementExport.Kind.STATEMENT_PDF)
        .defer("content")
        .order_by("pk")
        .first()
    )
    ctx = {
        "run": run,
        "statement": statement,
        "agreement": statement.agreement,
        "tiers": list(statement.agreement.tiers.all()) if statement.agreement else [],
        "lines": lines,
        "adjustments": list(
            run.adjustments.filter(partner_id=statement.partner_id).select_related("created_by")
        ),
        "pdf": pdf,
    }
    return render(request, "settlements/statement_detail.html", ctx)


urlpatterns = [
    path("runs/", run_list_view, name="runs"),
    path("runs/new/", run_create_view, name="run-create"),
    path("runs/<id:pk>/", run_detail_view, name="run-detail"),
    path("runs/<id:pk>/progress/", run_progress_view, name="run-progress"),
    path("runs/<id:pk>/calculate/", run_calculate_view, name="run-calculate"),
    path("runs/<id:pk>/submit/", run_submit_view, name="run-submit"),
    path("runs/<id:pk>/approve/", run_approve_view, name="run-approve"),
    path("runs/<id:pk>/reject/", run_reject_view, name="run-reject"),
    path("runs/<id:pk>/adjustments/", adjustment_create_view, name="adjustment-create"),
    path(
        "runs/<id:pk>/adjustments/<id:adj_pk>/delete/",
        adjustment_delete_view,
        name="adjustment-delete",
    ),
    path("runs/<id:run_pk>/statements/<id:pk>/", statement_detail_view, name="statement-detail"),
]
