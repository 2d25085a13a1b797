"""Revenue-share agreements: one in force per partner at a time, tiers from zero,
and one basis along every referral path."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from core import audit, money
from core.models import User
from merchants.models import Partner
from settlements.models import AgreementTier, RevenueShareAgreement

AGREEMENT_FIELDS = (
    "basis",
    "tier_mode",
    "currency",
    "valid_from",
    "valid_to",
    "rounding",
    "minimum_payout",
    "notes",
)


def _overlapping(qs, valid_from: date, valid_to: date | None):
    """Agreements in ``qs`` whose validity meets [valid_from, valid_to]."""
    qs = qs.filter(Q(valid_to__isnull=True) | Q(valid_to__gte=valid_from))
    return qs.filter(valid_from__lte=valid_to) if valid_to else qs


def _path_partner_ids(partner: Partner) -> set[int]:
    """The partner's ancestors and descendants (one query for the whole tree)."""
    parents = dict(Partner.objects.values_list("pk", "parent_id"))
    children: dict[int, list[int]] = {}
    for pk, parent in parents.items():
        if parent:
            children.setdefault(parent, []).append(pk)
    related: set[int] = set()
    up = parents.get(partner.pk)
    while up and up not in related:
        related.add(up)
        up = parents.get(up)
    stack = list(children.get(partner.pk, []))
    while stack:
        pk = stack.pop()
        if pk not in related:
            related.add(pk)
            stack.extend(children.get(pk, []))
    related.discard(partner.pk)
    return related


def validate_tiers(tiers: list[dict[str, Any]]) -> list[tuple[Decimal, Decimal]]:
    """Tiers as (from_volume, rate_bps), sorted; the first starts at zero."""
    if not tiers:
        raise ValidationError({"tiers": _("An agreement needs at least one tier.")})
    parsed = []
    for n, tier in enumerate(tiers, start=1):
        try:
            start = Decimal(str(tier.get("from_volume", "0")))
            rate = Decimal(str(tier["rate_bps"]))
        except (KeyError, ArithmeticError, ValueError):
            raise ValidationError(
                {"tiers": _("Tier %(n)d needs a volume threshold and a rate.") % {"n": n}}
            ) from None
        if not start.is_finite() or start < 0:
            raise ValidationError(
                {"tiers": _("Tier %(n)d: the threshold cannot be negative.") % {"n": n}}
            )
        if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(10000):
            raise ValidationError(
                {"tiers": _("Tier %(n)d: the rate must be between 0 and 10,000 bps.") % {"n": n}}
            )
        # What the columns cannot hold exactly is refused, never rounded.
        for name, value in (("from_volume", start), ("rate_bps", rate)):
            try:
                AgreementTier._meta.get_field(name).run_validators(value)
            except ValidationError as exc:
                raise ValidationError(
                    {"tiers": _("Tier %(n)d: %(error)s") % {"n": n, "error": exc.messages[0]}}
                ) from None
        parsed.append((start, rate))
    parsed.sort()
    starts = [s for s, _r in parsed]
    if len(set(starts)) != len(starts):
        raise ValidationError({"tiers": _("Two tiers start at the same volume.")})
    if starts[0] != 0:
        raise ValidationError({"tiers": _("The first tier must start at a volume of 0.")})
    return parsed


@transaction.atomic
def agreement_create(
    *, actor: User, partner: Partner, tiers: list[dict[str, Any]], **fields: Any
) -> RevenueShareAgreement:
    """A new agreement for ``partner``.

    Locks the partner row so that two overlapping agreements cannot be saved
    at once; refuses an overlap with the partner's other agreements and a basis
    or currency that differs from agreements above or below it in the tree
    during the same dates.
    """
    if not actor.has_perm("settlements.add_revenueshareagreement"):
        raise PermissionDenied
    unknown = set(fields) - set(AGREEMENT_FIELDS)
    if unknown:
        raise ValidationError({name: _("This field cannot be set here.") for name in unknown})
    Partner.objects.select_for_update().get(pk=partner.pk)
    agreement = RevenueShareAgreement(partner=partner, created_by=actor, **fields)
    parsed = validate_tiers(tiers)
    agreement.full_clean()
    _check_scale(agreement, parsed)
    _check_against_others(agreement)
    audit.stamp(agreement, actor=actor, reason="agreement created")
    agreement.save()
    for start, rate in parsed:
        tier = AgreementTier(agreement=agreement, from_volume=start, rate_bps=rate)
        audit.stamp(tier, actor=actor)
        tier.save()
    return agreement


@transaction.atomic
def agreement_end(
    *, actor: User, agreement: RevenueShareAgreement, valid_to: date
) -> RevenueShareAgreement:
    """Set or bring forward an agreement's last day (to make room for a new one)."""
    if not actor.has_perm("settlements.change_revenueshareagreement"):
        raise PermissionDenied
    Partner.objects.select_for_update().get(pk=agreement.partner_id)
    agreement = RevenueShareAgreement.objects.select_for_update().get(pk=agreement.pk)
    agreement.valid_to = valid_to
    agreement.full_clean()
    if agreement.statements.filter(run__period_end__gt=valid_to).exists():
        raise ValidationError(
            {"valid_to": _("Settlement runs after this date already used the agreement.")}
        )
    audit.stamp(agreement, actor=actor, reason="end date set")
    agreement.save(update_fields=["valid_to", "updated_at"])
    return agreement


def _check_scale(agreement: RevenueShareAgreement, tiers: list[tuple[Decimal, Decimal]]) -> None:
    """Money in the agreement's currency has at most that currency's decimals."""
    try:
        money.validate_scale(agreement.minimum_payout, agreement.currency)
    except ValidationError as exc:
        raise ValidationError({"minimum_payout": exc.messages}) from None
    for n, (start, _rate) in enumerate(tiers, start=1):
        try:
            money.validate_scale(start, agreement.currency)
        except ValidationError as exc:
            raise ValidationError(
                {"tiers": _("Tier %(n)d: %(error)s") % {"n": n, "error": exc.messages[0]}}
            ) from None


def _check_against_others(agreement: RevenueShareAgreement) -> None:
    own = _overlapping(
        RevenueShareAgreement.objects.filter(partner_id=agreement.partner_id),
        agreement.valid_from,
        agreement.valid_to,
    ).exclude(pk=agreement.pk)
    clash = own.first()
    if clash:
        raise ValidationError(
            {
                "valid_from": _(
                    "This partner already has an agreement in force during these dates "
                    "(from %(start)s). End it first."
                )
                % {"start": clash.valid_from.isoformat()}
            }
        )
    related = _overlapping(
        RevenueShareAgreement.objects.filter(partner_id__in=_path_partner_ids(agreement.partner)),
        agreement.valid_from,
        agreement.valid_to,
    ).select_related("partner")
    for other in related:
        if other.basis != agreement.basis:
            raise ValidationError(
                {
                    "basis": _(
                        "%(partner)s, on the same referral path, is paid on %(basis)s in "
                        "these dates; agreements along one path must share the basis."
                    )
                    % {"partner": other.partner, "basis": other.get_basis_display()}
                }
            )
        if other.currency != agreement.currency:
            raise ValidationError(
                {
                    "currency": _(
                        "%(partner)s, on the same referral path, settles in %(currency)s "
                        "in these dates; agreements along one path share the currency."
                    )
                    % {"partner": other.partner, "currency": other.currency}
                }
            )
