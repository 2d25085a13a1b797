"""Reads of merchants for pages, API, exports and search: permission-filtered."""

from __future__ import annotations

from dataclasses import dataclass, fields

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from core import permissions
from core.models import User
from merchants.models import Merchant


@dataclass(frozen=True)
class MerchantFilters:
    q: str = ""
    status: str = ""
    owner: int | None = None
    country: str = ""
    risk_level: str = ""

    @classmethod
    def from_params(cls, params) -> MerchantFilters:
        """Build from query parameters; values that cannot apply are ignored."""
        values = {f.name: (params.get(f.name) or "").strip() for f in fields(cls)}
        owner = values.pop("owner")
        return cls(**values, owner=int(owner) if owner.isdigit() else None)

    def apply(self, qs: QuerySet[Merchant]) -> QuerySet[Merchant]:
        if self.q:
            qs = qs.filter(
                Q(legal_name__icontains=self.q)
                | Q(trading_name__icontains=self.q)
                | Q(registration_number__icontains=self.q)
                | Q(mid__icontains=self.q)
            )
        if self.status:
            qs = qs.filter(status=self.status)
        if self.owner:
            qs = qs.filter(owner_id=self.owner)
        if self.country:
            qs = qs.filter(country=self.country.upper())
        if self.risk_level:
            qs = qs.filter(risk_level=self.risk_level)
        return qs


def merchant_list(*, user: User, filters: MerchantFilters | None = None) -> QuerySet[Merchant]:
    qs = permissions.visible(user, Merchant).select_related("owner", "team", "partner")
    return filters.apply(qs) if filters else qs


def merchant_get(*, user: User, pk: int, action: str = "view") -> Merchant:
    """The merchant, if ``user`` may see it (else 404) and ``action`` it (else 403)."""
    merchant = get_object_or_404(merchant_list(user=user), pk=pk)
    if action != "view":
        permissions.require(user, action, merchant)
    return merchant


def merchant_owner_choices(*, user: User) -> QuerySet[User]:
    """People a merchant may be assigned to: active members of the sales role."""
    return (
        User.objects.filter(is_active=True, groups__name="sales")
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


def merchant_owners_visible(*, user: User) -> QuerySet[User]:
    """Owners of the merchants ``user`` can see, for the list filter."""
    return User.objects.filter(pk__in=merchant_list(user=user).values("owner_id")).order_by(
        "first_name", "last_name", "username"
    )


def merchant_history(*, merchant: Merchant) -> QuerySet:
    return merchant.history.select_related("history_user").order_by("-history_date", "-history_id")
