"""The home page: it gathers figures from several apps, so it lives above them."""

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from merchants import selectors as merchant_selectors
from merchants.models import Merchant
from onboarding import selectors as onboarding_selectors


@never_cache
def dashboard_view(request: HttpRequest) -> HttpResponse:
    merchants = merchant_selectors.merchant_list(user=request.user)
    rows = merchants.order_by().values("status").annotate(n=Count("pk"))
    by_status = {row["status"]: row["n"] for row in rows}
    ctx = {
        "status_counts": [
            {"value": value, "label": label, "count": by_status.get(value, 0)}
            for value, label in Merchant.Status.choices
        ],
        "total": sum(by_status.values()),
        "recent": merchants.order_by("-created_at", "-pk")[:8],
        "onboarding": onboarding_selectors.onboarding_metrics(user=request.user),
    }
    return render(request, "core/home.html", ctx)
