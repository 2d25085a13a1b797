from base64 import b32encode

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import services
from core.forms import CodeForm, EnrolForm, SignInForm
from core.middleware import before_second_factor, public


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse(settings.LOGIN_REDIRECT_URL)


def _with_next(url_name: str, next_url: str) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': next_url})}"


@public
@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.user.is_verified():
        return redirect(_next_url(request))
    form = SignInForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        outcome = services.sign_in_check_password(
            request=request,
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password"],
            client=services.ClientInfo.from_request(request),
        )
        if outcome.ok:
            login(request, outcome.user)
            step = "core:verify" if services.user_has_authenticator(outcome.user) else "core:enrol"
            return redirect(_with_next(step, _next_url(request)))
        form.add_error(None, outcome.error)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "registration/login.html",
        {"form": form, "next": _next_url(request)},
        status=status,
    )


@before_second_factor
@never_cache
def verify_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_verified():
        return redirect(_next_url(request))
    if not services.user_has_authenticator(request.user):
        return redirect(_with_next("core:enrol", _next_url(request)))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        outcome = services.second_factor_verify(
            request=request,
            user=request.user,
            token=form.cleaned_data["code"],
            client=services.ClientInfo.from_request(request),
        )
        if outcome.ok:
            return redirect(_next_url(request))
        if outcome.locked:
            logout(request)
            messages.error(request, outcome.error)
            return redirect("core:login")
        form.add_error("code", outcome.error)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "registration/verify.html",
        {"form": form, "next": _next_url(request)},
        status=status,
    )


@before_second_factor
@never_cache
def enrol_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_verified():
        return redirect(_next_url(request))
    if services.user_has_authenticator(request.user):
        return redirect(_with_next("core:verify", _next_url(request)))
    device = services.totp_enrolment_device(user=request.user)
    form = EnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        outcome = services.totp_enrol_confirm(
            request=request,
            user=request.user,
            device=device,
            token=form.cleaned_data["code"],
            client=services.ClientInfo.from_request(request),
        )
        if outcome.ok:
            # Shown this once only: the database keeps nothing but their hashes.
            return render(
                request,
                "registration/backup_codes.html",
                {"codes": outcome.backup_codes, "next": _next_url(request)},
            )
        if outcome.locked:
            logout(request)
            messages.error(request, outcome.error)
            return redirect("core:login")
        form.add_error("code", outcome.error)
    secret = b32encode(device.bin_key).decode()
    ctx = {
        "form": form,
        "next": _next_url(request),
        "qr_svg": segno.make(device.config_url, error="m").svg_inline(scale=5, border=2),
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
    }
    return render(request, "registration/enrol.html", ctx, status=400 if form.errors else 200)


@before_second_factor
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, _("You have signed out."))
    return redirect("core:login")


@public
@require_GET
def healthz_view(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    healthy = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {exc.__class__.__name__}"
        healthy = False
    if settings.REDIS_URL:
        from config.celery import app

        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"error: {exc.__class__.__name__}"
            healthy = False
    else:
        checks["broker"] = "not configured (tasks run eagerly)"
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503
    )


@require_http_methods(["GET", "POST"])
@never_cache
def notifications_view(request: HttpRequest) -> HttpResponse:
    """The signed-in user's notifications, newest first; POST marks them read."""
    from django.core.paginator import Paginator

    from core import notifications

    if request.method == "POST":
        notifications.mark_read(user=request.user)
        return redirect("core:notifications")
    page = Paginator(request.user.notifications.all(), 30).get_page(request.GET.get("page"))
    return render(request, "core/notifications.html", {"page": page})
