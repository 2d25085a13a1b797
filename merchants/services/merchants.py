"""Writes to merchants. Each takes the acting user and runs in one transaction."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core import audit, permissions
from core.models import Team, User
from core.roles import SALES as SALES_ROLE
from merchants.models import Merchant

# What an owner and their team may do with a merchant they hold.
HOLDER_ACTIONS = ("view", "change")

EDITABLE_FIELDS = (
    "legal_name",
    "trading_name",
    "registration_number",
    "country",
    "business_type",
    "mcc",
    "website",
    "expected_monthly_volume",
    "volume_currency",
    "owner",
    "team",
    "partner",
    "tags",
)


def lock_merchant(pk: int) -> Merchant:
    return Merchant.objects.select_for_update().get(pk=pk)


def normalise_tags(tags: Any) -> list[str]:
    if not tags:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    seen: dict[str, None] = {}
    for tag in tags:
        cleaned = str(tag).strip().lower()[:40]
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


# A new merchant may start as a lead or in onboarding; afterwards status,
# risk level and MID change only through their own services below
# (merchant_change_status, merchant_set_risk_level, merchant_activate), with
# the rights of the role that may make each move.
CREATE_FIELDS = (*EDITABLE_FIELDS, "status", "risk_level")
OWN_SERVICE = {
    "status": gettext_lazy("Change the status through its own action, with a reason."),
    "risk_level": gettext_lazy("The risk level is set by risk or compliance, with a reason."),
    "mid": gettext_lazy("The MID is issued when onboarding approves the merchant."),
}


def _check_fields(fields: dict[str, Any], allowed: tuple[str, ...] = EDITABLE_FIELDS) -> None:
    refused = {n: OWN_SERVICE[n] for n in fields if n in OWN_SERVICE and n not in allowed}
    if refused:
        raise ValidationError(refused)
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ValidationError({name: _("This field cannot be set here.") for name in unknown})


def _check_owner(owner: User | None) -> None:
    if owner is not None and not owner.is_active:
        raise ValidationError({"owner": _("The owner must be an active user.")})


def _check_status(merchant: Merchant, target: str) -> None:
    if not merchant.can_move_to(target):
        raise ValidationError(
            {
                "status": _("A %(current)s merchant cannot move to %(target)s.")
                % {
                    "current": merchant.get_status_display().lower(),
                    "target": Merchant.Status(target).label.lower(),
                }
            }
        )
    if target == Merchant.Status.ACTIVE and not merchant.mid:
        raise ValidationError(
            {
                "status": _(
                    "A merchant becomes active through onboarding approval, which issues its MID."
                )
            }
        )


def _grant_holders(merchant: Merchant, holder: User | Team | None, *, actor: User) -> None:
    if holder is not None:
        principal = holder.group if isinstance(holder, Team) else holder
        permissions.grant(principal, merchant, HOLDER_ACTIONS, actor=actor)


def _revoke_holders(merchant: Merchant, holder: User | Team | None, *, actor: User) -> None:
    if holder is not None:
        principal = holder.group if isinstance(holder, Team) else holder
        permissions.revoke(principal, merchant, HOLDER_ACTIONS, actor=actor)


@transaction.atomic
def merchant_create(*, actor: User, reason: str = "", **fields: Any) -> Merchant:
    """Create a merchant; its owner and team receive view/change on it."""
    _check_fields(fields, CREATE_FIELDS)
    fields.setdefault("owner", actor)
    fields["tags"] = normalise_tags(fields.get("tags"))
    merchant = Merchant(**fields)
    if merchant.status not in (Merchant.Status.LEAD, Merchant.Status.ONBOARDING):
        raise ValidationError({"status": _("A new merchant starts as a lead or in onboarding.")})
    default_risk = Merchant._meta.get_field("risk_level").default
    if merchant.risk_level != default_risk and not actor.has_perm("merchants.set_risk_merchant"):
        raise ValidationError({"risk_level": OWN_SERVICE["risk_level"]})
    _check_owner(merchant.owner)
    merchant.full_clean()
    audit.stamp(merchant, actor=actor, reason=reason or "created")
    merchant.save()
    _grant_holders(merchant, merchant.owner, actor=actor)
    _grant_holders(merchant, merchant.team, actor=actor)
    return merchant


@transaction.atomic
def merchant_update(
    *, merchant: Merchant, actor: User, reason: str = "", **changes: Any
) -> Merchant:
    """Change a merchant's fields (``EDITABLE_FIELDS``: not its status, risk
    level or MID, which have their own services).

    Locks the merchant row. When the owner or team changes, the previous holder
    loses its object permissions and the new one receives them.
    """
    _check_fields(changes)
    merchant = lock_merchant(merchant.pk)
    if "tags" in changes:
        changes["tags"] = normalise_tags(changes["tags"])
    changed = [name for name, value in changes.items() if getattr(merchant, name) != value]
    if not changed:
        return merchant
    old_owner, old_team = merchant.owner, merchant.team
    for name in changed:
        setattr(merchant, name, changes[name])
    _check_owner(merchant.owner if "owner" in changed else None)
    merchant.full_clean()
    audit.stamp(merchant, actor=actor, reason=reason)
    merchant.save(update_fields=[*changed, "updated_at"])
    if "owner" in changed:
        _revoke_holders(merchant, old_owner, actor=actor)
        _grant_holders(merchant, merchant.owner, actor=actor)
    if "team" in changed:
        _revoke_holders(merchant, old_team, actor=actor)
        _grant_holders(merchant, merchant.team, actor=actor)
    return merchant


@transaction.atomic
def merchant_transfer_owner(
    *, merchant_ids: list[int], new_owner: User, actor: User, reason: str = ""
) -> int:
    """Hand a set of merchants to another owner (e.g. when a salesperson leaves)."""
    moved = 0
    for pk in sorted(merchant_ids):
        merchant = lock_merchant(pk)
        if merchant.owner_id != new_owner.pk:
            merchant_update(merchant=merchant, actor=actor, reason=reason, owner=new_owner)
            moved += 1
    return moved


def can_transfer(*, user: User, merchant: Merchant) -> bool:
    """Admins (assign right) and the manager of a team the owner belongs to."""
    if user.has_perm("merchants.assign_merchant"):
        return True
    return Team.objects.filter(manager=user, group__user=merchant.owner_id).exists()


@transaction.atomic
def merchant_transfer(*, merchant: Merchant, new_owner: User, actor: User, reason: str) -> Merchant:
    """Ownership transfer by the owner's manager or an admin; permissions move with it."""
    if not can_transfer(user=actor, merchant=merchant):
        raise PermissionDenied
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the merchant changes hands.")})
    if new_owner.pk == merchant.owner_id:
        raise ValidationError(
            {"new_owner": _("%(user)s already owns this merchant.") % {"user": new_owner}}
        )
    if not new_owner.groups.filter(name=SALES_ROLE).exists():
        raise ValidationError({"new_owner": _("Merchants are owned by members of the sales role.")})
    return merchant_update(
        merchant=merchant,
        actor=actor,
        reason=f"ownership transfer: {reason.strip()}",
        owner=new_owner,
    )


@transaction.atomic
def merchant_activate(*, merchant: Merchant, actor: User, reason: str) -> Merchant:
    """Issue the merchant's MID and make it active (onboarding approval calls this).

    The MID is derived from the country and the primary key, so it is unique
    without a lookup and never reused.
    """
    merchant = lock_merchant(merchant.pk)
    if merchant.status != Merchant.Status.ONBOARDING:
        raise ValidationError({"status": _("Only a merchant in onboarding can be activated.")})
    merchant.mid = merchant.mid or f"M{merchant.country.code}{merchant.pk:08d}"
    merchant.status = Merchant.Status.ACTIVE
    merchant.full_clean()
    audit.stamp(merchant, actor=actor, reason=reason)
    merchant.save(update_fields=["mid", "status", "updated_at"])
    return merchant


# Moves of a merchant that is live (active or suspended) are risk's and
# compliance's: suspending, reinstating, offboarding. A prospect's moves
# (lead and onboarding, or dropping it) are whoever may change the merchant.
LIVE = (Merchant.Status.ACTIVE, Merchant.Status.SUSPENDED)


def allowed_status_moves(
    *, user: User, merchant: Merchant, can_change: bool | None = None
) -> list[str]:
    """The statuses ``user`` may move ``merchant`` to through merchant_change_status
    (``can_change``: the caller's answer to "may the user change it", if known)."""
    targets = Merchant.TRANSITIONS.get(merchant.status, set())
    if merchant.status in LIVE:
        allowed = user.has_perm("merchants.suspend_merchant")
    else:
        allowed = permissions.can(user, "change", merchant) if can_change is None else can_change
        # Active only through onboarding approval, which issues the MID.
        targets = targets - {Merchant.Status.ACTIVE}
    return [s for s in Merchant.Status.values if s in targets] if allowed else []


@transaction.atomic
def merchant_change_status(
    *, merchant: Merchant, actor: User, status: str, reason: str
) -> Merchant:
    """Move a merchant along ``Merchant.TRANSITIONS`` (not to active: that is
    ``merchant_activate``'s). Suspending, reinstating and offboarding a live
    merchant need ``suspend_merchant`` and a reason."""
    merchant = lock_merchant(merchant.pk)
    permissions.require(actor, "view", merchant)
    reason = (reason or "").strip()
    if status not in Merchant.Status.values:
        raise ValidationError({"status": _("Choose one of the listed statuses.")})
    if status == merchant.status:
        raise ValidationError({"status": _("The merchant already has this status.")})
    _check_status(merchant, status)
    if status not in allowed_status_moves(user=actor, merchant=merchant):
        raise PermissionDenied
    if merchant.status in LIVE and not reason:
        raise ValidationError({"reason": _("Say why the merchant's status changes.")})
    merchant.status = status
    merchant.full_clean()
    audit.stamp(merchant, actor=actor, reason=reason or f"status {status}")
    merchant.save(update_fields=["status", "updated_at"])
    return merchant


@transaction.atomic
def merchant_set_risk_level(
    *, merchant: Merchant, actor: User, risk_level: str, reason: str
) -> Merchant:
    """Risk's and compliance's rating of a merchant, with the reason for it."""
    if not actor.has_perm("merchants.set_risk_merchant"):
        raise PermissionDenied
    merchant = lock_merchant(merchant.pk)
    permissions.require(actor, "view", merchant)
    if risk_level not in Merchant.RiskLevel.values:
        raise ValidationError({"risk_level": _("Choose one of the listed risk levels.")})
    if risk_level == merchant.risk_level:
        raise ValidationError({"risk_level": _("The merchant already has this risk level.")})
    if not (reason or "").strip():
        raise ValidationError({"reason": _("Say why the risk level changes.")})
    merchant.risk_level = risk_level
    audit.stamp(merchant, actor=actor, reason=reason.strip())
    merchant.save(update_fields=["risk_level", "updated_at"])
    return merchant
