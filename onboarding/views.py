from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from core.exceptions import DomainError
from merchants import selectors as merchant_selectors
from onboarding import checks, conditions, selectors, services
from onboarding.forms import (
    DecisionForm,
    ResolveForm,
    StepFormSet,
    ordered_steps,
    step_initial,
)
from onboarding.models import Application


def _fail(request: HttpRequest, exc: Exception) -> None:
    if isinstance(exc, ValidationError):
        messages.error(request, " ".join(exc.messages))
    elif isinstance(exc, DomainError):
        messages.error(request, exc.message)
    else:
        messages.error(request, _("You may not do that."))


def application_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    application = selectors.application_get(user=request.user, pk=pk)
    step = application.current_step
    earlier = application.definition.steps.filter(position__lt=step.position) if step else None
    ctx = {
        "application": application,
        "steps": services.applicable_steps(application),
        "decisions": application.decisions.select_related("step", "decided_by", "send_back_to"),
        "checks": application.compliance_checks.select_related("blocks_step", "resolved_by"),
        "requests": application.information_requests.select_related("requested_by"),
        "can_decide": bool(
            step
            and application.status == Application.Status.IN_REVIEW
            and request.user.groups.filter(pk=step.group_id).exists()
            and application.submitted_by_id != request.user.pk
        ),
        "can_resolve": request.user.has_perm("onboarding.resolve_compliancecheck"),
        "decision_form": DecisionForm(earlier_steps=earlier),
        "resolve_form": ResolveForm(),
        "now": timezone.now(),
    }
    return render(request, "onboarding/application_detail.html", ctx)


@require_POST
def application_start_view(request: HttpRequest, merchant_pk: int) -> HttpResponse:
    merchant = merchant_selectors.merchant_get(user=request.user, pk=merchant_pk)
    try:
        application = services.application_create(actor=request.user, merchant=merchant)
    except (ValidationError, DomainError, PermissionDenied) as exc:
        _fail(request, exc)
        return redirect(merchant)
    messages.success(request, _("Application opened. Submit it when the file is complete."))
    return redirect("onboarding:application", pk=application.pk)


@require_POST
def application_action_view(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    application = selectors.application_get(user=request.user, pk=pk)
    try:
        if action == "submit":
            services.application_submit(actor=request.user, application=application)
            messages.success(request, _("Submitted. Compliance checks are running."))
        elif action == "resubmit":
            services.application_resubmit(actor=request.user, application=application)
            messages.success(request, _("Resubmitted to the same step."))
        elif action == "claim":
            services.application_claim(actor=request.user, application=application)
            messages.success(request, _("The step is yours."))
        elif action == "withdraw":
            services.application_withdraw(
                actor=request.user, application=application, reason=request.POST.get("reason", "")
            )
            messages.success(request, _("Application withdrawn."))
        else:
            raise PermissionDenied
    except (ValidationError, DomainError) as exc:
        _fail(request, exc)
    return redirect("onboarding:application", pk=application.pk)


@require_POST
def decision_view(request: HttpRequest, pk: int) -> HttpResponse:
    application = selectors.application_get(user=request.user, pk=pk)
    step = application.current_step
    earlier = application.definition.steps.filter(position__lt=step.position) if step else None
    form = DecisionForm(request.POST, earlier_steps=earlier)
    if form.is_valid():
        try:
            services.decision_record(
                actor=request.user, application=application, **form.cleaned_data
            )
            messages.success(request, _("Decision recorded."))
        except (ValidationError, DomainError, PermissionDenied) as exc:
            _fail(request, exc)
    else:
        messages.error(request, _("Choose a decision."))
    return redirect("onboarding:application", pk=application.pk)


@require_POST
def check_resolve_view(request: HttpRequest, pk: int, check_pk: int) -> HttpResponse:
    application = selectors.application_get(user=request.user, pk=pk)
    check = get_object_or_404(application.compliance_checks, pk=check_pk)
    form = ResolveForm(request.POST)
    if form.is_valid():
        try:
            checks.compliance_check_resolve(actor=request.user, check=check, **form.cleaned_data)
            messages.success(request, _("Check resolved."))
        except (ValidationError, PermissionDenied) as exc:
            _fail(request, exc)
    else:
        messages.error(request, _("Clear or confirm, with a reason."))
    return redirect("onboarding:application", pk=application.pk)


QUEUE_VIEWS = ("group", "mine", "overdue")


def queue_view(request: HttpRequest) -> HttpResponse:
    """Waiting on my group / assigned to me / overdue, oldest first, with SLA state."""
    now = timezone.now()
    view = request.GET.get("view") if request.GET.get("view") in QUEUE_VIEWS else "group"
    waiting = selectors.awaiting_group(user=request.user).order_by("step_entered_at", "pk")
    if view == "mine":
        waiting = waiting.filter(assignee=request.user)
    elif view == "overdue":
        waiting = [
            a
            for a in waiting
            if now - a.step_entered_at > timedelta(hours=a.current_step.sla_hours)
        ]
    page = Paginator(waiting, 50).get_page(request.GET.get("page"))
    rows = []
    for application in page:
        hours = (now - application.step_entered_at).total_seconds() / 3600
        sla = application.current_step.sla_hours
        rows.append(
            {
                "application": application,
                "age_hours": int(hours),
                "sla": sla,
                "state": "breached" if hours > sla else ("due" if hours > sla * 0.75 else "ok"),
            }
        )
    mine = selectors.application_list(user=request.user).filter(
        status__in=Application.OPEN, created_by=request.user
    )
    ctx = {"page": page, "rows": rows, "mine": mine, "view": view}
    return render(request, "onboarding/queue.html", ctx)


def _require_workflow_admin(request: HttpRequest) -> None:
    if not request.user.has_perm("onboarding.change_workflowdefinition"):
        raise PermissionDenied


def workflow_list_view(request: HttpRequest) -> HttpResponse:
    _require_workflow_admin(request)
    definitions = selectors.workflow_list(user=request.user)
    return render(request, "onboarding/workflow_list.html", {"definitions": definitions})


def _diagram_steps(steps: list[dict]) -> list[dict]:
    """What the live diagram draws: each step with who decides and when it applies."""
    return [
        {
            "position": i,
            "name": s.get("name") or "?",
            "group": str(s.get("group") or "?"),
            "approvals": s.get("approvals_required") or 1,
            "sla": s.get("sla_hours"),
            "documents": s.get("required_documents") or [],
            "condition": conditions.describe(s.get("condition")) if s.get("condition") else "",
        }
        for i, s in enumerate(steps, start=1)
    ]


@require_http_methods(["GET", "POST"])
def workflow_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit a draft's steps; a published version is shown read-only."""
    _require_workflow_admin(request)
    definition = get_object_or_404(selectors.workflow_list(user=request.user), pk=pk)
    steps = list(definition.steps.select_related("group").order_by("position"))
    if request.method == "POST":
        formset = StepFormSet(request.POST, prefix="steps")
        if formset.is_valid():
            try:
                services.definition_replace_steps(
                    actor=request.user, definition=definition, steps=ordered_steps(formset)
                )
            except (ValidationError, DomainError) as exc:
                _fail(request, exc)
            else:
                messages.success(request, _("Draft saved."))
                return redirect("onboarding:workflow", pk=definition.pk)
    else:
        formset = StepFormSet(initial=[step_initial(s) for s in steps], prefix="steps")
    diagram = _diagram_steps([{**step_initial(s), "condition": s.condition,
                               "group": s.group.name} for s in steps])  # fmt: skip
    ctx = {"definition": definition, "formset": formset, "diagram": diagram}
    return render(
        request,
        "onboarding/workflow_edit.html",
        ctx,
        status=400 if request.method == "POST" else 200,
    )


@require_POST
def workflow_preview_view(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the diagram for the editor's current (unsaved) values."""
    _require_workflow_admin(request)
    get_object_or_404(selectors.workflow_list(user=request.user), pk=pk)
    formset = StepFormSet(request.POST, prefix="steps")
    rows = []
    for form in formset.forms:
        form.is_valid()  # partial input still draws; errors show on save
        data = {**form.cleaned_data}
        if data.get("DELETE"):
            continue
        if "condition" not in data and form["condition"].value():
            data["condition_error"] = True
        rows.append(data)
    rows.sort(key=lambda d: d.get("ORDER") or 10_000)
    return render(
        request,
        "onboarding/partials/workflow_diagram.html",
        {"diagram": _diagram_steps(rows), "errors": any(d.get("condition_error") for d in rows)},
    )


@require_POST
def workflow_action_view(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    _require_workflow_admin(request)
    definition = get_object_or_404(selectors.workflow_list(user=request.user), pk=pk)
    try:
        if action == "publish":
            services.definition_publish(actor=request.user, definition=definition)
            messages.success(
                request, _("%(d)s is published; new applications use it.") % {"d": definition}
            )
        elif action == "new-version":
            definition = services.definition_new_version(actor=request.user, definition=definition)
            messages.success(request, _("Draft %(d)s created.") % {"d": definition})
        else:
            raise PermissionDenied
    except (ValidationError, DomainError) as exc:
        _fail(request, exc)
    return redirect("onboarding:workflow", pk=definition.pk)
