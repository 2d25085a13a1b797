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
        {"label": _("API docs"), "url": reverse("api-docs"), "icon": "braces"},
    ]
    if user.is_staff:
        items.append({"label": _("Admin"), "url": reverse("admin:index"), "icon": "gear"})
    path = request.path
    for item in items:
        item["active"] = path.startswith(item["url"]) and (item["url"] != "/" or path == "/")
    return {"nav_items": items}
