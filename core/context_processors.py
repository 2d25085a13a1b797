from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_verified():
        return {"nav_items": []}
    items = [
        {"label": _("Dashboard"), "url": reverse("home"), "icon": "speedometer2"},
        {"label": _("Merchants"), "url": reverse("merchants:list"), "icon": "shop"},
        {"label": _("Onboarding"), "url": reverse("onboarding:queue"), "icon": "inboxes"},
        {"label": _("My tasks"), "url": reverse("merchants:tasks"), "icon": "check2-square"},
        {
            "label": _("Expiring documents"),
            "url": reverse("merchants:documents_expiring"),
            "icon": "file-earmark-text",
        },
        {"label": _("Partners"), "url": reverse("merchants:partners"), "icon": "diagram-3"},
        {"label": _("API docs"), "url": reverse("api-docs"), "icon": "braces"},
    ]
    if user.has_perm("settlements.view_settlementrun"):
        partners_at = next(i for i, item in enumerate(items) if item["icon"] == "diagram-3")
        items.insert(
            partners_at + 1,
            {"label": _("Settlements"), "url": reverse("settlements:runs"), "icon": "cash-coin"},
        )
    if user.has_perm("settlements.view_transaction"):
        api_at = next(i for i, item in enumerate(items) if item["icon"] == "braces")
        items.insert(
            api_at,
            {
                "label": _("Transactions"),
                "url": reverse("settlements:transactions"),
                "icon": "receipt",
            },
        )
    if user.has_perm("onboarding.change_workflowdefinition"):
        items.append(
            {"label": _("Workflows"), "url": reverse("onboarding:workflows"), "icon": "diagram-2"}
        )
    if user.has_perm("core.view_auditentry"):
        items.append(
            {"label": _("Audit trail"), "url": reverse("core:audit"), "icon": "shield-check"}
        )
    if user.is_staff:
        items.append({"label": _("Admin"), "url": reverse("admin:index"), "icon": "gear"})
    path = request.path
    for item in items:
        item["active"] = path == item["url"] or (
            item["url"] not in ("/", "/merchants/") and path.startswith(item["url"])
        )
    # Agreements, FX rates and reconciliation sit under Settlements too.
    if path.startswith("/settlements/") and not any(i["active"] for i in items):
        for item in items:
            item["active"] = item["icon"] == "cash-coin"
    merchants_url = reverse("merchants:list")
    if path.startswith(merchants_url) and not any(i["active"] for i in items):
        items[1]["active"] = True
    unread = user.notifications.filter(read_at__isnull=True).count()
    return {"nav_items": items, "unread_notifications": unread}
