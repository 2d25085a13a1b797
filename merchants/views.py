from dataclasses import asdict
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from core import permissions, trail
from core import services as core_services
from merchants import csv_import, list_export, selectors, services
from merchants.forms import (
    ActivityForm,
    BankAccountForm,
    ContactForm,
    ContractForm,
    ContractSignForm,
    DocumentForm,
    DocumentReviewForm,
    ImportForm,
    MerchantFilterForm,
    MerchantForm,
    OwnerForm,
    PartnerForm,
    PricingPlanForm,
    RiskLevelForm,
    StatusChangeForm,
    TransferForm,
)
from merchants.models import (
    Activity,
    BankAccount,
    BeneficialOwner,
    Contract,
    Document,
    Merchant,
    Partner,
)

PAGE_SIZE = 25


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


TABS = ("overview", "contacts", "owners", "bank", "documents", "pricing", "contracts", "timeline")


def _detail(request: HttpRequest, merchant, *, tab: str = "", status: int = 200, **forms):
    """The merchant 360 page; ``forms`` replace the blank add-forms (to show errors)."""
    user = request.user
    can_change = permissions.can(user, "change", merchant)
    assignees = selectors.merchant_owner_choices(user=user)
    blank = {
        "contact_form": ContactForm(),
        "owner_form": OwnerForm(),
        "bank_form": BankAccountForm(),
        "document_form": DocumentForm(),
        "activity_form": ActivityForm(assignees=assignees),
        "contract_form": ContractForm(),
        "pricing_form": PricingPlanForm(initial={"currency": merchant.volume_currency}),
    }
    blank.update(forms)
    owners_total = sum((o.ownership_percent for o in merchant.owners.all()), Decimal("0"))
    ctx = {
        "merchant": merchant,
        "tab": tab if tab in TABS else request.GET.get("tab", "overview"),
        "can_change": can_change,
        "can_review": user.has_perm("merchants.review_document"),
        "can_reveal_bank": user.has_perm("merchants.reveal_bankaccount"),
        "can_reveal_owner": user.has_perm("merchants.reveal_beneficialowner"),
        # The Audit tab loads its entries itself (htmx), when first shown.
        "can_view_audit": user.has_perm("core.view_auditentry"),
        "can_transfer": services.can_transfer(user=user, merchant=merchant),
        "owners_total": owners_total,
        "shared_accounts": selectors.shared_bank_accounts(merchant=merchant),
        "timeline": selectors.merchant_timeline(merchant=merchant),
        "review_form": DocumentReviewForm(),
        "status_moves": [
            (value, Merchant.Status(value).label)
            for value in services.allowed_status_moves(
                user=user, merchant=merchant, can_change=can_change
            )
        ],
        "can_set_risk": user.has_perm("merchants.set_risk_merchant"),
        "risk_levels": Merchant.RiskLevel.choices,
        "status_form": StatusChangeForm(),
        "risk_form": RiskLevelForm(),
        "today": timezone.localdate(),
        **blank,
    }
    return render(request, "merchants/merchant_detail.html", ctx, status=status)


def merchant_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = selectors.merchant_360(user=request.user, pk=pk)
    return _detail(request, merchant)


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
    else:
        form.add_error(None, exc)


def _record_post(request: HttpRequest, pk: int, *, tab: str, form_name: str, form, save):
    """Shared shape of the 360 page's add-forms: validate, call the service, redirect."""
    merchant = selectors.merchant_get(user=request.user, pk=pk)
    if form.is_valid():
        try:
            save(merchant, form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return redirect(f"{merchant.get_absolute_url()}?tab={tab}")
    merchant = selectors.merchant_360(user=request.user, pk=pk)
    return _detail(request, merchant, tab=tab, status=400, **{form_name: form})


@require_POST
def merchant_status_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Suspend, reinstate, offboard (risk, compliance) or move a prospect (its holders)."""

    def save(merchant, data):
        services.merchant_change_status(merchant=merchant, actor=request.user, **data)
        messages.success(request, _("Status changed."))

    return _record_post(
        request, pk, tab="overview", form_name="status_form",
        form=StatusChangeForm(request.POST), save=save,
    )  # fmt: skip


@require_POST
def merchant_risk_view(request: HttpRequest, pk: int) -> HttpResponse:
    def save(merchant, data):
        services.merchant_set_risk_level(merchant=merchant, actor=request.user, **data)
        messages.success(request, _("Risk level set."))

    return _record_post(
        request, pk, tab="overview", form_name="risk_form",
        form=RiskLevelForm(request.POST), save=save,
    )  # fmt: skip


@require_POST
def contact_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    def save(merchant, data):
        services.contact_create(actor=request.user, merchant=merchant, **data)
        messages.success(request, _("Contact added."))

    return _record_post(
        request,
        pk,
        tab="contacts",
        form_name="contact_form",
        form=ContactForm(request.POST),
        save=save,
    )


@require_POST
def owner_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    def save(merchant, data):
        services.owner_create(actor=request.user, merchant=merchant, **data)
        messages.success(request, _("Beneficial owner added."))

    return _record_post(
        request, pk, tab="owners", form_name="owner_form", form=OwnerForm(request.POST), save=save
    )


@require_POST
def bank_account_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    def save(merchant, data):
        account = services.bank_account_create(actor=request.user, merchant=merchant, **data)
        shared = services.bank_account_shared_with(account=account)
        if shared:
            messages.warning(
                request,
                _("This account number is also held by: %(names)s.")
                % {"names": ", ".join(str(m) for m in shared)},
            )
        else:
            messages.success(request, _("Bank account added."))

    return _record_post(
        request,
        pk,
        tab="bank",
        form_name="bank_form",
        form=BankAccountForm(request.POST),
        save=save,
    )


@require_POST
def document_upload_view(request: HttpRequest, pk: int) -> HttpResponse:
    def save(merchant, data):
        document = services.document_upload(
            actor=request.user,
            merchant=merchant,
            doc_type=data["doc_type"],
            upload=data["file"],
            expires_on=data["expires_on"],
        )
        messages.success(
            request,
            _("%(doc)s uploaded (version %(v)s).")
            % {"doc": document.get_doc_type_display(), "v": document.version},
        )

    return _record_post(
        request,
        pk,
        tab="documents",
        form_name="document_form",
        form=DocumentForm(request.POST, request.FILES),
        save=save,
    )


@require_POST
def activity_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    def save(merchant, data):
        activity = services.activity_log(
            actor=request.user,
            merchant=merchant,
            **{k: v for k, v in data.items() if v not in (None, "") or k in ("kind", "subject")},
        )
        messages.success(request, _("%(kind)s logged.") % {"kind": activity.get_kind_display()})

    form = ActivityForm(request.POST, assignees=selectors.merchant_owner_choices(user=request.user))
    return _record_post(
        request, pk, tab="timeline", form_name="activity_form", form=form, save=save
    )


@require_POST
def contract_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    def save(merchant, data):
        services.contract_create(actor=request.user, merchant=merchant, **data)
        messages.success(request, _("Contract drafted."))

    return _record_post(
        request,
        pk,
        tab="contracts",
        form_name="contract_form",
        form=ContractForm(request.POST),
        save=save,
    )


@require_POST
def pricing_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    form = PricingPlanForm(request.POST)

    def save(merchant, data):
        services.pricing_plan_create(
            actor=request.user,
            merchant=merchant,
            name=data["name"],
            currency=data["currency"],
            rates=form.rates(),
        )
        messages.success(
            request, _("Pricing plan %(name)s is now active.") % {"name": data["name"]}
        )

    return _record_post(request, pk, tab="pricing", form_name="pricing_form", form=form, save=save)


@require_POST
def document_review_view(request: HttpRequest, pk: int, doc_pk: int) -> HttpResponse:
    merchant = selectors.merchant_get(user=request.user, pk=pk)
    document = selectors.record_get(user=request.user, model=Document, pk=doc_pk, merchant=merchant)
    form = DocumentReviewForm(request.POST)
    if form.is_valid():
        try:
            services.document_review(
                actor=request.user,
                document=document,
                status=form.cleaned_data["status"],
                reason=form.cleaned_data["reason"],
            )
            messages.success(request, _("Review recorded."))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    else:
        messages.error(request, _("Choose accept or reject."))
    return redirect(f"{merchant.get_absolute_url()}?tab=documents")


def document_download_view(request: HttpRequest, pk: int, doc_pk: int) -> FileResponse:
    merchant = selectors.merchant_get(user=request.user, pk=pk)
    document = selectors.record_get(user=request.user, model=Document, pk=doc_pk, merchant=merchant)
    return FileResponse(
        document.file.open("rb"),
        as_attachment=True,
        filename=document.original_name,
        content_type=document.content_type,
    )


@require_POST
@never_cache
def reveal_view(request: HttpRequest, pk: int, kind: str, record_pk: int) -> HttpResponse:
    """The clear value of a masked field, for holders of the reveal permission (recorded)."""
    model = {"bank": BankAccount, "owner": BeneficialOwner}.get(kind)
    if model is None:
        raise Http404
    merchant = selectors.merchant_get(user=request.user, pk=pk)
    record = selectors.record_get(user=request.user, model=model, pk=record_pk, merchant=merchant)
    value = services.sensitive_reveal(
        actor=request.user, record=record, ip_address=core_services.client_ip(request)
    )
    return render(request, "merchants/partials/revealed.html", {"value": value})


@require_POST
def task_complete_view(request: HttpRequest, task_pk: int) -> HttpResponse:
    task = selectors.record_get(user=request.user, model=Activity, pk=task_pk)
    services.task_complete(actor=request.user, task=task)
    messages.success(request, _("Task done: %(subject)s") % {"subject": task.subject})
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("merchants:tasks")
    return redirect(target)


@require_http_methods(["GET", "POST"])
def merchant_transfer_view(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = selectors.merchant_get(user=request.user, pk=pk)
    if not services.can_transfer(user=request.user, merchant=merchant):
        raise PermissionDenied
    owners = selectors.merchant_owner_choices(user=request.user).exclude(pk=merchant.owner_id)
    form = TransferForm(request.POST or None, owners=owners)
    if request.method == "POST" and form.is_valid():
        try:
            services.merchant_transfer(
                merchant=merchant,
                new_owner=form.cleaned_data["new_owner"],
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request,
                _("%(merchant)s now belongs to %(owner)s.")
                % {"merchant": merchant, "owner": form.cleaned_data["new_owner"]},
            )
            return redirect(merchant)
    status = 400 if form.errors else 200
    ctx = {"form": form, "merchant": merchant}
    return render(request, "merchants/merchant_transfer.html", ctx, status=status)


def my_tasks_view(request: HttpRequest) -> HttpResponse:
    tasks = selectors.my_open_tasks(user=request.user)
    page = Paginator(tasks, 50).get_page(request.GET.get("page"))
    ctx = {"page": page, "today": timezone.localdate()}
    return render(request, "merchants/my_tasks.html", ctx)


def documents_expiring_view(request: HttpRequest) -> HttpResponse:
    documents = selectors.documents_expiring(user=request.user)
    page = Paginator(documents, 50).get_page(request.GET.get("page"))
    ctx = {"page": page, "today": timezone.localdate()}
    return render(request, "merchants/documents_expiring.html", ctx)


def partner_list_view(request: HttpRequest) -> HttpResponse:
    if not permissions.has_global(request.user, Partner, "view"):
        raise PermissionDenied
    ctx = {
        "tree": selectors.partner_tree(user=request.user),
        "can_add": permissions.has_global(request.user, Partner, "add"),
    }
    return render(request, "merchants/partner_list.html", ctx)


def partner_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    partner = selectors.partner_get(user=request.user, pk=pk)
    ids = selectors.partner_descendant_ids(partner=partner)
    subtree = [
        n for n in _flatten(selectors.partner_tree(user=request.user)) if n.partner.pk in ids
    ]
    referred = selectors.merchant_list(user=request.user).filter(partner=partner)
    ctx = {
        "partner": partner,
        "subtree": subtree,
        "referred": Paginator(referred.order_by("legal_name", "pk"), 25).get_page(
            request.GET.get("page")
        ),
        "contacts": partner.contacts.all(),
        "bank_accounts": partner.bank_accounts.all(),
        "can_change": permissions.has_global(request.user, Partner, "change"),
        "contact_form": ContactForm(),
        "bank_form": BankAccountForm(),
    }
    return render(request, "merchants/partner_detail.html", ctx)


def _flatten(nodes):
    for node in nodes:
        yield node
        yield from _flatten(node.children)


@require_http_methods(["GET", "POST"])
def partner_form_view(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    partner = selectors.partner_get(user=request.user, pk=pk) if pk else None
    action = "change" if partner else "add"
    if not permissions.has_global(request.user, Partner, action):
        raise PermissionDenied
    form = PartnerForm(request.POST or None, instance=partner)
    if request.method == "POST" and form.is_valid():
        try:
            if partner:
                partner = services.partner_update(
                    partner=partner, actor=request.user, **form.cleaned_data
                )
            else:
                partner = services.partner_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Partner %(name)s saved.") % {"name": partner})
            return redirect("merchants:partner_detail", pk=partner.pk)
    status = 400 if form.errors else 200
    return render(
        request, "merchants/partner_form.html", {"form": form, "partner": partner}, status=status
    )


def _form_kwargs(request: HttpRequest) -> dict:
    can_assign = request.user.has_perm("merchants.assign_merchant")
    return {
        "can_assign": can_assign,
        "can_set_risk": request.user.has_perm("merchants.set_risk_merchant"),
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


def merchant_export_view(request: HttpRequest) -> HttpResponse:
    """The merchant list as the user sees it, with the list page's filters."""
    filters = selectors.MerchantFilters.from_params(request.GET)
    merchants = selectors.merchant_list(user=request.user, filters=filters)
    stamp = timezone.localdate().isoformat()
    fmt = "xlsx" if request.GET.get("format") == "xlsx" else "csv"
    # Data leaving the system is on the audit trail, with what was asked for.
    trail.append(
        action=trail.Action.EXPORT,
        model=Merchant._meta.label_lower,
        object_label=f"merchant list {fmt.upper()}",
        changes={
            "filters": [None, urlencode({k: v for k, v in asdict(filters).items() if v}) or "all"]
        },
    )
    if fmt == "xlsx":
        response = HttpResponse(
            list_export.xlsx_bytes(merchants),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="merchants-{stamp}.xlsx"'
        return response
    response = StreamingHttpResponse(
        list_export.csv_lines(merchants), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="merchants-{stamp}.csv"'
    return response


@require_http_methods(["GET", "POST"])
def merchant_import_view(request: HttpRequest) -> HttpResponse:
    """Upload → dry run with the full report → confirm (the same file, re-posted)."""
    can = {
        "merchants": request.user.has_perm("merchants.add_merchant"),
        "contacts": request.user.has_perm("merchants.add_contact"),
    }
    if not any(can.values()):
        raise PermissionDenied
    form = ImportForm(
        request.POST or None, request.FILES or None, kinds=[k for k, v in can.items() if v]
    )
    ctx = {"form": form, "columns": csv_import.KINDS}
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            text = data["payload"] or csv_import.decode(data["file"].read())
            report = csv_import.run(
                user=request.user,
                kind=data["kind"],
                text=text,
                commit=bool(data["confirm"]),
                only_valid=data["only_valid"],
            )
        except csv_import.ImportRefused as exc:
            form.add_error("file", str(exc))
        else:
            ctx.update(
                report=report,
                payload=form.encode(text),
                kind=data["kind"],
                only_valid=data["only_valid"],
                confirmed=bool(data["confirm"]),
            )
            if report.written:
                messages.success(request, _("%(n)d row(s) imported.") % {"n": report.created})
    status = 400 if form.errors else 200
    return render(request, "merchants/merchant_import.html", ctx, status=status)


def _partner_record_post(request: HttpRequest, pk: int, form, save) -> HttpResponse:
    partner = selectors.partner_get(user=request.user, pk=pk)
    if not permissions.has_global(request.user, Partner, "change"):
        raise PermissionDenied
    if form.is_valid():
        try:
            save(partner, form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return redirect("merchants:partner_detail", pk=partner.pk)
    messages.error(
        request,
        "; ".join(
            f"{name}: {' '.join(errs)}" if name != "__all__" else " ".join(errs)
            for name, errs in form.errors.items()
        ),
    )
    return redirect("merchants:partner_detail", pk=partner.pk)


@require_POST
def partner_contact_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    def save(partner, data):
        services.contact_create(actor=request.user, partner=partner, **data)
        messages.success(request, _("Contact added."))

    return _partner_record_post(request, pk, ContactForm(request.POST), save)


@require_POST
def partner_bank_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    def save(partner, data):
        services.bank_account_create(actor=request.user, partner=partner, **data)
        messages.success(request, _("Payout bank account added."))

    return _partner_record_post(request, pk, BankAccountForm(request.POST), save)


@require_POST
def contract_sign_view(request: HttpRequest, pk: int, contract_pk: int) -> HttpResponse:
    merchant = selectors.merchant_get(user=request.user, pk=pk)
    contract = selectors.record_get(
        user=request.user, model=Contract, pk=contract_pk, merchant=merchant
    )
    form = ContractSignForm(request.POST)
    if form.is_valid():
        try:
            services.contract_sign(actor=request.user, contract=contract, **form.cleaned_data)
            messages.success(request, _("Contract v%(v)s signed.") % {"v": contract.version})
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    else:
        messages.error(request, _("Give the signing date and who signed."))
    return redirect(f"{merchant.get_absolute_url()}?tab=contracts")
