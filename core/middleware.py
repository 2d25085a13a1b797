from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from simple_history.models import HistoricalRecords

from core import audit
from core.services import client_ip

PUBLIC = "paycrm_public"  # reachable without signing in
BEFORE_SECOND_FACTOR = "paycrm_before_second_factor"  # signed in, code not yet given


def public(view: Callable) -> Callable:
    setattr(view, PUBLIC, True)
    return view


def before_second_factor(view: Callable) -> Callable:
    setattr(view, BEFORE_SECOND_FACTOR, True)
    return view


class RequireSecondFactorMiddleware:
    """Deny by default: every view needs a signed-in user with a verified device.

    Views opt out with ``@public`` or ``@before_second_factor``. API paths get
    JSON 403 instead of a redirect.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        view = getattr(view_func, "view_class", None) or view_func
        if getattr(view_func, PUBLIC, False) or getattr(view, PUBLIC, False):
            return None
        user = request.user
        is_api = request.path.startswith("/api/")
        if not user.is_authenticated:
            if is_api:
                return JsonResponse({"detail": _("Sign in first.")}, status=403)
            return redirect(
                f"{reverse('core:login')}?{urlencode({'next': request.get_full_path()})}"
            )
        if user.is_verified() or getattr(view_func, BEFORE_SECOND_FACTOR, False):
            return None
        if is_api:
            return JsonResponse(
                {"detail": _("This session has not passed the second factor.")}, status=403
            )
        return redirect(f"{reverse('core:verify')}?{urlencode({'next': request.get_full_path()})}")


class AuditContextMiddleware:
    """History rows written during a request name its user and its origin."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            kind = "api"
        elif request.path.startswith(reverse("admin:index")):
            kind = "admin"
        else:
            kind = "web"
        ip = client_ip(request) or ""
        agent = request.headers.get("user-agent", "")
        HistoricalRecords.context.request = request
        try:
            with audit.origin(f"{kind} {ip or '-'}", ip=ip, user_agent=agent):
                return self.get_response(request)
        finally:
            del HistoricalRecords.context.request
