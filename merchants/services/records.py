"""Writes to a merchant's records and to partners.

Rights: a record is written by someone who may change its merchant and holds
the role permission for the record type (``merchants.add_contact``…); document
review needs ``merchants.review_document`` on a merchant the user can see.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from decimal import Decimal
from typing import Any

import filetype
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Max, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from core import audit, crypto, permissions
from core.models import SensitiveAccess, User
from merchants.models import (
    Activity,
    BankAccount,
    BeneficialOwner,
    Contact,
    Contract,
    Document,
    Merchant,
    Partner,
    PricingPlan,
    PricingRate,
)
from merchants.services.merchants import lock_merchant

# ---------------------------------------------------------------------------
# Rights
# ---------------------------------------------------------------------------


def require_record_write(*, user: User, merchant: Merchant, model: type, action: str) -> None:
    """403 unless ``user`` may change ``merchant`` and ``action`` this record type."""
    if not user.has_perm(permissions.perm_name(model, action)):
        raise PermissionDenied
    permissions.require(user, "change", merchant)


def _apply(instance, fields: dict[str, Any], allowed: tuple[str, ...]) -> list[str]:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ValidationError({name: _("This field cannot be set here.") for name in unknown})
    changed = [name for name, value in fields.items() if getattr(instance, name) != value]
    for name in changed:
        setattr(instance, name, fields[name])
    return changed


def _save(instance, *, actor: User, reason: str = "", changed: list[str] | None = None) -> None:
    instance.full_clean()
    audit.stamp(instance, actor=actor, reason=reason)
    if changed is None:
        instance.save()
    elif changed:
        instance.save(update_fields=[*changed, "updated_at"])


# ---------------------------------------------------------------------------
# Partners
# ---------------------------------------------------------------------------

PARTNER_FIELDS = ("name", "kind", "parent", "status")


def _check_partner_parent(partner: Partner, parent: Partner | None) -> None:
    """Refuse a parent that would close a loop (the partner itself or below it)."""
    seen = set()
    node = parent
    while node is not None:
        if partner.pk is not None and node.pk == partner.pk:
            raise ValidationError(
                {
                    "parent": _(
                        "%(parent)s is %(partner)s itself or one of its sub-partners; "
                        "a partner cannot sit below itself."
                    )
                    % {"parent": parent, "partner": partner}
                }
            )
        if node.pk in seen:  # an existing loop in the data: stop rather than spin
            break
        seen.add(node.pk)
        node = node.parent


@transaction.atomic
def partner_create(*, actor: User, **fields: Any) -> Partner:
    partner = Partner()
    _apply(partner, fields, PARTNER_FIELDS)
    _check_partner_parent(partner, partner.parent)
    _save(partner, actor=actor, reason="created")
    return partner


@transaction.atomic
def partner_update(*, partner: Partner, actor: User, **fields: Any) -> Partner:
    # Locks the whole chain's table rows touched by the walk: two concurrent
    # re-parentings that together would close a loop serialise on the rows.
    partner = Partner.objects.select_for_update().get(pk=partner.pk)
    changed = _apply(partner, fields, PARTNER_FIELDS)
    if "parent" in changed and partner.parent_id:
        Partner.objects.select_for_update().filter(pk=partner.parent_id).first()
        _check_partner_parent(partner, partner.parent)
    _save(partner, actor=actor, changed=changed)
    return partner


# ---------------------------------------------------------------------------
# Contacts
# ---------------------------------------------------------------------------

CONTACT_FIELDS = ("name", "title", "email", "phone", "is_primary", "notes")


@transaction.atomic
def contact_create(
    *, actor: User, merchant: Merchant | None = None, partner: Partner | None = None, **fields: Any
) -> Contact:
    if merchant is not None:
        require_record_write(user=actor, merchant=merchant, model=Contact, action="add")
    elif not actor.has_perm("merchants.change_partner"):
        raise PermissionDenied
    contact = Contact(merchant=merchant, partner=partner)
    _apply(contact, fields, CONTACT_FIELDS)
    _save(contact, actor=actor, reason="created")
    return contact


@transaction.atomic
def contact_update(*, contact: Contact, actor: User, **fields: Any) -> Contact:
    if contact.merchant_id:
        require_record_write(user=actor, merchant=contact.merchant, model=Contact, action="change")
    changed = _apply(contact, fields, CONTACT_FIELDS)
    _save(contact, actor=actor, changed=changed)
    return contact


# ---------------------------------------------------------------------------
# Beneficial owners
# ---------------------------------------------------------------------------

OWNER_FIELDS = ("full_name", "nationality", "date_of_birth", "ownership_percent", "is_pep")


def _normalise_id(value: str) -> str:
    return re.sub(r"[\s\-/().]", "", value).upper()


def _check_ownership_total(merchant: Merchant, owner: BeneficialOwner) -> None:
    others = BeneficialOwner.objects.filter(merchant=merchant).exclude(pk=owner.pk).aggregate(
        total=Sum("ownership_percent")
    )["total"] or Decimal("0")
    total = others + (owner.ownership_percent or Decimal("0"))
    if total > Decimal("100"):
        raise ValidationError(
            {
                "ownership_percent": _(
                    "The owners of %(merchant)s would hold %(total)s%%; together they "
                    "may hold at most 100%% (others already hold %(others)s%%)."
                )
                % {"merchant": merchant, "total": total, "others": others}
            }
        )


@transaction.atomic
def owner_create(
    *, actor: User, merchant: Merchant, id_number: str, **fields: Any
) -> BeneficialOwner:
    """Add a beneficial owner. Locks the merchant so two additions cannot both
    squeeze under 100% and together exceed it."""
    require_record_write(user=actor, merchant=merchant, model=BeneficialOwner, action="add")
    merchant = lock_merchant(merchant.pk)
    owner = BeneficialOwner(merchant=merchant)
    _apply(owner, fields, OWNER_FIELDS)
    _set_id_number(owner, id_number)
    _check_ownership_total(merchant, owner)
    _save(owner, actor=actor, reason="created")
    return owner


def _set_id_number(owner: BeneficialOwner, id_number: str) -> None:
    value = _normalise_id(id_number or "")
    if len(value) < 5:
        raise ValidationError({"id_number": _("Enter the full ID or passport number.")})
    owner.id_number = value
    owner.id_number_last4 = value[-4:]


@transaction.atomic
def owner_update(
    *, owner: BeneficialOwner, actor: User, id_number: str | None = None, **fields: Any
) -> BeneficialOwner:
    require_record_write(
        user=actor, merchant=owner.merchant, model=BeneficialOwner, action="change"
    )
    lock_merchant(owner.merchant_id)
    owner = BeneficialOwner.objects.select_for_update().get(pk=owner.pk)
    changed = _apply(owner, fields, OWNER_FIELDS)
    if id_number and _normalise_id(id_number) != owner.id_number:
        _set_id_number(owner, id_number)
        changed += ["id_number", "id_number_last4"]
    _check_ownership_total(owner.merchant, owner)
    _save(owner, actor=actor, changed=changed)
    return owner


# ---------------------------------------------------------------------------
# Bank accounts
# ---------------------------------------------------------------------------

BANK_FIELDS = ("account_holder", "bank_name", "swift_code", "country", "currency", "is_primary")
HK_ACCOUNT = re.compile(r"^(?P<bank>\d{3})(?P<branch>\d{3})(?P<account>\d{6,12})$")


def normalise_account_number(value: str) -> str:
    return re.sub(r"[\s\-]", "", value or "").upper()


def validate_account_number(*, number: str, country: str, swift_code: str = "") -> str:
    """The normalised number, or a ValidationError naming the field.

    IBAN countries: full IBAN check (schwifty: country format, checksum).
    Hong Kong: 3-digit bank code + 3-digit branch + 6-12 digit account.
    Elsewhere: 5-34 letters/digits (domestic formats vary). SWIFT codes are
    checked with schwifty and must belong to the bank's country.
    """
    value = normalise_account_number(number)
    country = str(country).upper()
    errors: dict[str, str] = {}
    if swift_code:
        try:
            bic = BIC(swift_code)
            if bic.country_code != country:
                errors["swift_code"] = _("This SWIFT code belongs to %(cc)s, not %(country)s.") % {
                    "cc": bic.country_code,
                    "country": country,
                }
        except SchwiftyException as exc:
            errors["swift_code"] = _("Not a valid SWIFT/BIC code: %(error)s") % {"error": exc}
    if value[:2].isalpha() and value[2:4].isdigit():
        try:
            iban = IBAN(value)
            if iban.country_code != country:
                errors["account_number"] = _(
                    "This IBAN belongs to %(cc)s but the bank country is %(country)s."
                ) % {"cc": iban.country_code, "country": country}
            value = iban.compact
        except SchwiftyException as exc:
            errors["account_number"] = _("Not a valid IBAN: %(error)s") % {"error": exc}
    elif country == "HK":
        if not HK_ACCOUNT.match(value):
            errors["account_number"] = _(
                "A Hong Kong account number is the 3-digit bank code, 3-digit branch "
                "code and 6-12 digit account number, e.g. 004-123-456789012."
            )
    elif not re.fullmatch(r"[A-Z0-9]{5,34}", value):
        errors["account_number"] = _("Enter 5 to 34 letters or digits.")
    if errors:
        raise ValidationError(errors)
    return value


def _set_account_number(account: BankAccount, number: str) -> None:
    value = validate_account_number(
        number=number, country=str(account.country), swift_code=account.swift_code
    )
    account.account_number = value
    account.account_number_last4 = value[-4:]
    account.account_hash = crypto.keyed_hash(value)


@transaction.atomic
def bank_account_create(
    *,
    actor: User,
    account_number: str,
    merchant: Merchant | None = None,
    partner: Partner | None = None,
    **fields: Any,
) -> BankAccount:
    if merchant is not None:
        require_record_write(user=actor, merchant=merchant, model=BankAccount, action="add")
    elif not actor.has_perm("merchants.change_partner"):
        raise PermissionDenied
    account = BankAccount(merchant=merchant, partner=partner)
    _apply(account, fields, BANK_FIELDS)
    _set_account_number(account, account_number)
    _save(account, actor=actor, reason="created")
    return account


def bank_account_shared_with(*, account: BankAccount) -> list[Merchant]:
    """Other merchants holding the same account number (by keyed hash)."""
    return list(
        Merchant.objects.filter(bank_accounts__account_hash=account.account_hash)
        .exclude(pk=account.merchant_id)
        .distinct()
    )


# ---------------------------------------------------------------------------
# Reveal
# ---------------------------------------------------------------------------

REVEALABLE = {BankAccount: "account_number", BeneficialOwner: "id_number"}


@transaction.atomic
def sensitive_reveal(
    *, actor: User, record: BankAccount | BeneficialOwner, ip_address: str | None = None
) -> str:
    """The clear value of a masked field, for a user with the reveal permission.

    Every reveal is recorded as a SensitiveAccess row before the value is returned.
    """
    model = type(record)
    if not actor.has_perm(permissions.perm_name(model, "reveal")):
        raise PermissionDenied
    field = REVEALABLE[model]
    access = SensitiveAccess(
        user=actor,
        object_label=model._meta.label_lower,
        object_id=str(record.pk),
        field=field,
        ip_address=ip_address,
    )
    audit.stamp(access, actor=actor, reason="reveal")
    access.save()
    return getattr(record, field)


# ---------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------

DOCUMENT_TYPES_ALLOWED = {
    "application/pdf": ".pdf",
    "image/jpeg": ".jpg",
    "image/png": ".png",
}


def _sniff(upload: UploadedFile) -> str:
    """Content type from the file's first bytes, not from its name or the browser."""
    head = upload.read(262)
    upload.seek(0)
    kind = filetype.guess(head)
    return kind.mime if kind else "application/octet-stream"


def _sha256(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


@transaction.atomic
def document_upload(
    *,
    actor: User,
    merchant: Merchant,
    doc_type: str,
    upload: UploadedFile,
    expires_on: date | None = None,
) -> Document:
    """Store a new version of a document; earlier versions are kept, not current."""
    require_record_write(user=actor, merchant=merchant, model=Document, action="add")
    if doc_type not in Document.Type.values:
        raise ValidationError({"doc_type": _("Choose a document type from the list.")})
    limit = settings.DOCUMENT_MAX_BYTES
    if upload.size > limit:
        raise ValidationError(
            {
                "file": _("The file is %(size)s MB; the limit is %(limit)s MB.")
                % {"size": round(upload.size / 1_048_576, 1), "limit": limit // 1_048_576}
            }
        )
    if upload.size == 0:
        raise ValidationError({"file": _("The file is empty.")})
    content_type = _sniff(upload)
    if content_type not in DOCUMENT_TYPES_ALLOWED:
        raise ValidationError(
            {
                "file": _(
                    "Only PDF, JPEG and PNG files are accepted (this file's content is %(type)s)."
                )
                % {"type": content_type}
            }
        )
    if expires_on is not None and expires_on <= timezone.localdate():
        raise ValidationError({"expires_on": _("The expiry date must be in the future.")})
    merchant = lock_merchant(merchant.pk)  # serialises version numbers per merchant
    current = Document.objects.filter(merchant=merchant, doc_type=doc_type)
    latest = current.aggregate(v=Max("version"))["v"] or 0
    for previous in current.filter(is_current=True):
        previous.is_current = False
        audit.stamp(previous, actor=actor, reason=f"superseded by v{latest + 1}")
        previous.save(update_fields=["is_current", "updated_at"])
    document = Document(
        merchant=merchant,
        doc_type=doc_type,
        version=latest + 1,
        original_name=(upload.name or "upload")[:255],
        content_type=content_type,
        size=upload.size,
        sha256=_sha256(upload),
        expires_on=expires_on,
        uploaded_by=actor,
    )
    document.file.save(upload.name or "upload", upload, save=False)
    try:
        _save(document, actor=actor, reason=f"uploaded v{document.version}")
    except (ValidationError, IntegrityError):
        document.file.delete(save=False)
        raise
    return document


@transaction.atomic
def document_review(*, actor: User, document: Document, status: str, reason: str = "") -> Document:
    if not actor.has_perm("merchants.review_document"):
        raise PermissionDenied
    permissions.require(actor, "view", document.merchant)
    document = Document.objects.select_for_update().get(pk=document.pk)
    if status not in (Document.Status.ACCEPTED, Document.Status.REJECTED):
        raise ValidationError({"status": _("Accept or reject the document.")})
    if status == Document.Status.REJECTED and not reason.strip():
        raise ValidationError({"rejection_reason": _("Say why the document is rejected.")})
    if document.uploaded_by_id == actor.pk:
        raise ValidationError({"status": _("You uploaded this document; someone else reviews it.")})
    document.status = status
    document.rejection_reason = reason.strip() if status == Document.Status.REJECTED else ""
    document.reviewed_by = actor
    document.reviewed_at = timezone.now()
    _save(
        document,
        actor=actor,
        reason=f"{status}: {reason}".strip(": "),
        changed=["status", "rejection_reason", "reviewed_by", "reviewed_at"],
    )
    return document


# ---------------------------------------------------------------------------
# Activities and tasks
# ---------------------------------------------------------------------------

ACTIVITY_FIELDS = ("kind", "subject", "body", "occurred_at", "due_on", "assignee")


@transaction.atomic
def activity_log(*, actor: User, merchant: Merchant, **fields: Any) -> Activity:
    require_record_write(user=actor, merchant=merchant, model=Activity, action="add")
    activity = Activity(merchant=merchant, created_by=actor)
    _apply(activity, fields, ACTIVITY_FIELDS)
    if activity.kind == Activity.Kind.TASK:
        activity.assignee = activity.assignee or actor
        if activity.due_on is None:
            raise ValidationError({"due_on": _("A task needs a due date.")})
    elif activity.due_on or activity.assignee_id:
        raise ValidationError({"kind": _("Only tasks have a due date and an assignee.")})
    _save(activity, actor=actor, reason=f"logged {activity.kind}")
    return activity


@transaction.atomic
def task_complete(*, actor: User, task: Activity) -> Activity:
    task = Activity.objects.select_for_update().select_related("merchant").get(pk=task.pk)
    if not task.is_task:
        raise ValidationError({"kind": _("Only tasks can be completed.")})
    if task.assignee_id != actor.pk:
        require_record_write(user=actor, merchant=task.merchant, model=Activity, action="change")
    if task.done_at is None:
        task.done_at = timezone.now()
        _save(task, actor=actor, reason="done", changed=["done_at"])
    return task


# ---------------------------------------------------------------------------
# Pricing and contracts
# ---------------------------------------------------------------------------


@transaction.atomic
def pricing_plan_create(
    *,
    actor: User,
    merchant: Merchant,
    name: str,
    currency: str,
    rates: list[dict[str, Any]],
    activate: bool = True,
    effective_from: date | None = None,
) -> PricingPlan:
    """A plan with one rate per payment method; activating it retires the old one."""
    require_record_write(user=actor, merchant=merchant, model=PricingPlan, action="add")
    merchant = lock_merchant(merchant.pk)
    if not rates:
        raise ValidationError({"rates": _("Add at least one payment method.")})
    methods = [r.get("method") for r in rates]
    if len(set(methods)) != len(methods):
        raise ValidationError({"rates": _("Each payment method appears once in a plan.")})
    if activate:
        for old in PricingPlan.objects.filter(merchant=merchant, is_active=True):
            old.is_active = False
            audit.stamp(old, actor=actor, reason=f"replaced by {name}")
            old.save(update_fields=["is_active", "updated_at"])
    plan = PricingPlan(
        merchant=merchant,
        name=name,
        currency=currency,
        is_active=activate,
        effective_from=effective_from or timezone.localdate(),
    )
    _save(plan, actor=actor, reason="created")
    for i, data in enumerate(rates):
        rate = PricingRate(plan=plan, **data)
        try:
            _save(rate, actor=actor, reason="created")
        except ValidationError as exc:
            raise ValidationError(
                {f"rates[{i}].{k}": v for k, v in exc.message_dict.items()}
            ) from exc
    return plan


@transaction.atomic
def contract_create(
    *, actor: User, merchant: Merchant, starts_on: date, ends_on: date | None = None
) -> Contract:
    require_record_write(user=actor, merchant=merchant, model=Contract, action="add")
    merchant = lock_merchant(merchant.pk)
    version = (Contract.objects.filter(merchant=merchant).aggregate(v=Max("version"))["v"] or 0) + 1
    contract = Contract(merchant=merchant, version=version, starts_on=starts_on, ends_on=ends_on)
    _save(contract, actor=actor, reason="created")
    return contract


@transaction.atomic
def contract_sign(*, actor: User, contract: Contract, signed_on: date, signed_by: str) -> Contract:
    require_record_write(user=actor, merchant=contract.merchant, model=Contract, action="change")
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    if contract.status not in (Contract.Status.DRAFT, Contract.Status.SENT):
        raise ValidationError({"status": _("Only a draft or sent contract can be signed.")})
    if not signed_by.strip():
        raise ValidationError({"signed_by": _("Name who signed for the merchant.")})
    if signed_on > timezone.localdate():
        raise ValidationError({"signed_on": _("The signing date cannot be in the future.")})
    contract.status = Contract.Status.SIGNED
    contract.signed_on = signed_on
    contract.signed_by = signed_by.strip()
    _save(contract, actor=actor, reason="signed", changed=["status", "signed_on", "signed_by"])
    return contract


def timeline_note(*, merchant: Merchant, actor: User, subject: str, body: str = "") -> Activity:
    """A note on the merchant's timeline for an event of a higher app (onboarding…).

    No rights check: the calling service has already checked the action it
    records; the note only tells the story on the merchant page.
    """
    activity = Activity(
        merchant=merchant, kind=Activity.Kind.NOTE, subject=subject[:200], body=body,
        created_by=actor,
    )  # fmt: skip
    _save(activity, actor=actor, reason="timeline note")
    return activity
