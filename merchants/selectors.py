"""Reads of merchants for pages, API, exports and search: permission-filtered."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from django.db import models
from django.db.models import Case, Count, Prefetch, Q, QuerySet, Value, When
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from core import permissions
from core.models import User
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


# ---------------------------------------------------------------------------
# Records of a merchant (and of partners): they follow the merchant's visibility
# ---------------------------------------------------------------------------


def records_visible(*, user: User, model: type[models.Model]) -> QuerySet:
    """Records of ``model`` whose merchant ``user`` may see.

    Contacts and bank accounts of partners follow the partner rights (global
    ``view_partner``) instead.
    """
    qs = model._default_manager.all()
    by_merchant = permissions.visible_through(
        user, qs.filter(merchant__isnull=False), parent_field="merchant", parent_model=Merchant
    )
    if any(f.name == "partner" for f in model._meta.fields) and permissions.has_global(
        user, Partner, "view"
    ):
        return by_merchant | qs.filter(partner__isnull=False)
    return by_merchant


def record_get(*, user: User, model: type[models.Model], pk: int, merchant: Merchant | None = None):
    """One record the user may see (else 404), optionally of a given merchant."""
    qs = records_visible(user=user, model=model)
    if merchant is not None:
        qs = qs.filter(merchant=merchant)
    return get_object_or_404(qs, pk=pk)


def merchant_360(*, user: User, pk: int) -> Merchant:
    """The merchant with every record the 360 page shows, in a fixed number of queries."""
    current_docs = Document.objects.filter(is_current=True).select_related(
        "uploaded_by", "reviewed_by"
    )
    active_rates = PricingRate.objects.order_by("method")
    qs = merchant_list(user=user).prefetch_related(
        "contacts",
        "owners",
        "bank_accounts",
        Prefetch("documents", queryset=current_docs, to_attr="current_documents"),
        Prefetch(
            "pricing_plans",
            queryset=PricingPlan.objects.prefetch_related(Prefetch("rates", queryset=active_rates)),
        ),
        "contracts",
        "applications",
        "applications__information_requests",
    )
    return get_object_or_404(qs, pk=pk)


def shared_bank_accounts(*, merchant: Merchant) -> dict[int, list[Merchant]]:
    """For each of the merchant's accounts, the other merchants holding the same number.

    Names of other merchants are shown as a warning even when the user could not
    open them: knowing that the account is shared is the point.
    """
    hashes = {a.account_hash: a.pk for a in merchant.bank_accounts.all()}
    if not hashes:
        return {}
    others = (
        BankAccount.objects.filter(account_hash__in=hashes, merchant__isnull=False)
        .exclude(merchant=merchant)
        .select_related("merchant")
    )
    shared: dict[int, list[Merchant]] = {}
    for account in others:
        shared.setdefault(hashes[account.account_hash], []).append(account.merchant)
    return shared


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # an Activity.Kind value or "status"
    title: str
    body: str
    actor: User | None
    activity: Activity | None = None


RECORD_EVENTS = (
    # model, timeline kind, how the title reads, what names the record
    (Contact, "contact", _lazy("Contact added: %(label)s"), "name"),
    (BeneficialOwner, "owner", _lazy("Beneficial owner added: %(label)s"), "full_name"),
    (BankAccount, "bank", _lazy("Bank account added: %(label)s"), "bank_name"),
    (Document, "document", _lazy("Document uploaded: %(label)s"), "original_name"),
    (Contract, "contract", _lazy("Contract drafted: v%(label)s"), "version"),
    (PricingPlan, "pricing", _lazy("Pricing plan added: %(label)s"), "name"),
)


def merchant_timeline(*, merchant: Merchant, limit: int = 100) -> list[TimelineEntry]:
    """One timeline, newest first: activities, status changes and records added.

    Status changes and additions come from history, so they name who did them.
    A fixed number of queries: one per source plus one for the people.
    """
    activities = list(
        merchant.activities.select_related("created_by", "assignee").order_by(
            "-occurred_at", "-pk"
        )[:limit]
    )
    entries = [
        TimelineEntry(
            at=a.occurred_at,
            kind=a.kind,
            title=a.subject,
            body=a.body,
            actor=a.created_by,
            activity=a,
        )
        for a in activities
    ]
    pending: list[tuple] = []  # (at, kind, title, body, user id)
    status_rows = merchant.history.order_by("history_date", "history_id").values(
        "status", "history_date", "history_user", "history_change_reason"
    )
    labels = dict(Merchant.Status.choices)
    previous = None
    for row in status_rows:
        if row["status"] != previous:
            title = (
                _("Created as %(status)s") % {"status": labels[row["status"]]}
                if previous is None
                else _("Status: %(old)s → %(new)s")
                % {"old": labels[previous], "new": labels[row["status"]]}
            )
            reason = row["history_change_reason"] or ""
            pending.append((row["history_date"], "status", title, reason, row["history_user"]))
            previous = row["status"]
    for model, kind, template, label_field in RECORD_EVENTS:
        added = (
            model.history.filter(merchant_id=merchant.pk, history_type="+")
            .order_by("-history_date")
            .values("history_date", "history_user", label_field)[:limit]
        )
        for row in added:
            title = template % {"label": row[label_field]}
            pending.append((row["history_date"], kind, title, "", row["history_user"]))
    reviewed = merchant.documents.filter(reviewed_at__isnull=False).values(
        "reviewed_at", "reviewed_by", "original_name", "status", "rejection_reason"
    )
    for row in reviewed:
        title = _("Document %(status)s: %(name)s") % {
            "status": Document.Status(row["status"]).label.lower(),
            "name": row["original_name"],
        }
        pending.append(
            (row["reviewed_at"], "review", title, row["rejection_reason"], row["reviewed_by"])
        )
    users = User.objects.in_bulk({p[4] for p in pending} - {None})
    entries += [
        TimelineEntry(at=at, kind=kind, title=title, body=body, actor=users.get(user_id))
        for at, kind, title, body, user_id in pending
    ]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def my_open_tasks(*, user: User) -> QuerySet[Activity]:
    """Open tasks assigned to ``user`` on merchants they can still see; overdue first."""
    today = timezone.localdate()
    return (
        records_visible(user=user, model=Activity)
        .filter(kind=Activity.Kind.TASK, assignee=user, done_at__isnull=True)
        .select_related("merchant")
        .annotate(
            overdue=Case(When(due_on__lt=today, then=Value(0)), default=Value(1)),
        )
        .order_by("overdue", "due_on", "pk")
    )


def documents_expiring(*, user: User, within_days: int = 30) -> QuerySet[Document]:
    """Current documents already expired or expiring within ``within_days``."""
    horizon = timezone.localdate() + timedelta(days=within_days)
    return (
        records_visible(user=user, model=Document)
        .filter(is_current=True, expires_on__isnull=False, expires_on__lte=horizon)
        .select_related("merchant", "merchant__owner")
        .order_by("expires_on", "pk")
    )


def partner_list(*, user: User) -> QuerySet[Partner]:
    if not permissions.has_global(user, Partner, "view"):
        return Partner.objects.none()
    # Counts only the merchants this user can see: totals are information too.
    visible = merchant_list(user=user).values("pk")
    return Partner.objects.select_related("parent").annotate(
        merchant_count=Count("merchants", filter=Q(merchants__in=visible))
    )


def partner_get(*, user: User, pk: int) -> Partner:
    return get_object_or_404(partner_list(user=user), pk=pk)


@dataclass
class PartnerNode:
    partner: Partner
    depth: int
    children: list[PartnerNode]


def partner_tree(*, user: User) -> list[PartnerNode]:
    """All visible partners as a forest (one query), children sorted by name."""
    partners = list(partner_list(user=user).order_by("name", "pk"))
    nodes = {p.pk: PartnerNode(partner=p, depth=0, children=[]) for p in partners}
    roots = []
    for p in partners:
        parent = nodes.get(p.parent_id)
        (parent.children if parent else roots).append(nodes[p.pk])

    def set_depth(node: PartnerNode, depth: int) -> None:
        node.depth = depth
        for child in node.children:
            set_depth(child, depth + 1)

    for root in roots:
        set_depth(root, 0)
    return roots


def partner_descendant_ids(*, partner: Partner) -> set[int]:
    """Ids of the partner and every partner below it (one query)."""
    children: dict[int | None, list[int]] = {}
    for pk, parent_id in Partner.objects.values_list("pk", "parent_id"):
        children.setdefault(parent_id, []).append(pk)
    found, stack = set(), [partner.pk]
    while stack:
        pk = stack.pop()
        if pk not in found:
            found.add(pk)
            stack.extend(children.get(pk, []))
    return found
