import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from core import services
from core.models import AuthEvent, BackupCode, User
from tests.conftest import confirmed_device, sign_in_verified, totp_now
from tests.factories.core import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = reverse("core:login")


def _password_step(client: Client, user: User, password: str = PASSWORD, next_url: str = ""):
    data = {"username": user.username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post(LOGIN, data, REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="pytest-browser")


@pytest.mark.parametrize(
    "url", [reverse("home"), reverse("merchants:list"), reverse("merchants:create"), "/admin/"]
)
def test_anonymous_visitor_is_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_anonymous_api_call_is_refused(client):
    response = client.get("/api/v1/merchants/")
    assert response.status_code == 403


def test_healthz_is_public_and_reports_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["status"] == "ok"


def test_password_alone_reaches_no_page_until_a_device_is_enrolled(client, sales1):
    # when
    response = _password_step(client, sales1)
    # then: straight to enrolment, and nothing else opens
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("core:enrol"))
    for url in (reverse("home"), reverse("merchants:list"), "/admin/"):
        blocked = client.get(url)
        assert blocked.status_code == 302
        assert blocked["Location"].startswith(reverse("core:verify"))
    assert client.get("/api/v1/merchants/").status_code == 403
    assert client.get("/api/schema/").status_code == 403


def test_enrolment_shows_qr_and_key_then_issues_ten_hashed_backup_codes(client, sales1):
    _password_step(client, sales1)
    page = client.get(reverse("core:enrol"))
    assert page.status_code == 200
    assert b"<svg" in page.content
    device = TOTPDevice.objects.get(user=sales1, confirmed=False)
    key_on_page = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page.content.decode())
    assert key_on_page, "the key must be shown in text for manual entry"

    wrong = client.post(reverse("core:enrol"), {"code": "000000"})
    assert wrong.status_code == 400
    assert "not valid" in wrong.content.decode()

    # django-otp throttles a device for a second after a miss, as a person would wait
    with time_machine.travel(timezone.now() + timedelta(seconds=2)):
        done = client.post(reverse("core:enrol"), {"code": totp_now(device)})
    assert done.status_code == 200
    codes = re.findall(r"\b[A-Z2-9]{5}-[A-Z2-9]{5}\b", done.content.decode())
    assert len(codes) == 10
    stored = list(
        BackupCode.objects.filter(device__user=sales1).values_list("code_hash", flat=True)
    )
    assert len(stored) == 10
    for code in codes:
        assert all(code.replace("-", "") not in h and code not in h for h in stored)
    assert client.get(reverse("merchants:list")).status_code == 200
    assert AuthEvent.objects.filter(user=sales1, kind=AuthEvent.Kind.DEVICE_ENROLLED).exists()


def test_later_sign_in_asks_for_the_totp_code(client, sales1):
    device = confirmed_device(sales1)
    response = _password_step(client, sales1, next_url=reverse("merchants:list"))
    assert response["Location"].startswith(reverse("core:verify"))
    assert client.get(reverse("merchants:list")).status_code == 302

    verified = client.post(
        reverse("core:verify"), {"code": totp_now(device), "next": reverse("merchants:list")}
    )
    assert verified.status_code == 302
    assert verified["Location"] == reverse("merchants:list")
    assert client.get(reverse("merchants:list")).status_code == 200
    kinds = set(AuthEvent.objects.filter(user=sales1).values_list("kind", flat=True))
    assert {AuthEvent.Kind.SIGN_IN, AuthEvent.Kind.SECOND_FACTOR_VERIFIED} <= kinds
    event = AuthEvent.objects.filter(user=sales1, kind=AuthEvent.Kind.SIGN_IN).get()
    assert event.ip_address == "203.0.113.7"
    assert event.user_agent == "pytest-browser"


def test_a_totp_code_cannot_be_replayed(client, sales1):
    device = confirmed_device(sales1)
    code = totp_now(device)
    _password_step(client, sales1)
    assert client.post(reverse("core:verify"), {"code": code}).status_code == 302

    other = Client()
    _password_step(other, sales1)
    replay = other.post(reverse("core:verify"), {"code": code})
    assert replay.status_code == 400


def test_backup_code_works_once(client, sales1):
    _password_step(client, sales1)
    device = services.totp_enrolment_device(user=sales1)
    page = client.post(reverse("core:enrol"), {"code": totp_now(device)})
    code = re.findall(r"\b[A-Z2-9]{5}-[A-Z2-9]{5}\b", page.content.decode())[0]
    client.post(reverse("core:logout"))

    first = Client()
    _password_step(first, sales1)
    assert first.post(reverse("core:verify"), {"code": code.lower()}).status_code == 302
    assert AuthEvent.objects.filter(user=sales1, kind=AuthEvent.Kind.BACKUP_CODE_USED).count() == 1

    second = Client()
    _password_step(second, sales1)
    assert second.post(reverse("core:verify"), {"code": code}).status_code == 400


def test_five_wrong_passwords_lock_the_account_for_thirty_minutes(client, sales1):
    for _ in range(5):
        response = _password_step(client, sales1, password="wrong-password")
        assert response.status_code == 400
    sales1.refresh_from_db()
    assert sales1.is_locked()
    assert sales1.locked_until - timezone.now() > timedelta(minutes=29)

    refused = _password_step(client, sales1)
    assert refused.status_code == 400
    assert "locked" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuthEvent.objects.filter(user=sales1, kind=AuthEvent.Kind.LOCKED_OUT).count() == 1
    assert AuthEvent.objects.filter(user=sales1, kind=AuthEvent.Kind.SIGN_IN_FAILED).count() == 6

    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert _password_step(Client(), sales1).status_code == 302


def test_wrong_codes_count_towards_the_same_lockout(client, sales1):
    confirmed_device(sales1)
    _password_step(client, sales1, password="wrong-password")
    _password_step(client, sales1, password="wrong-password")
    _password_step(client, sales1)
    for _ in range(2):
        assert client.post(reverse("core:verify"), {"code": "123456"}).status_code == 400
    locked = client.post(reverse("core:verify"), {"code": "123456"})
    # the fifth failure locks the account and ends the half-signed-in session
    assert locked.status_code == 302
    assert locked["Location"] == LOGIN
    sales1.refresh_from_db()
    assert sales1.is_locked()
    assert "_auth_user_id" not in client.session


def test_unknown_username_is_recorded_and_refused_with_the_same_message(client):
    response = client.post(LOGIN, {"username": "nobody", "password": "whatever-it-is"})
    assert response.status_code == 400
    assert "Username or password is incorrect." in response.content.decode()
    assert AuthEvent.objects.filter(username="nobody", kind=AuthEvent.Kind.SIGN_IN_FAILED).exists()


def test_admin_unlock_action_reopens_the_account(web, admin1, sales1):
    sales1.locked_until = timezone.now() + timedelta(minutes=30)
    sales1.save()
    admin = web(admin1)
    response = admin.post(
        reverse("admin:core_user_changelist"),
        {"action": "unlock_accounts", "_selected_action": [sales1.pk]},
    )
    assert response.status_code == 302
    sales1.refresh_from_db()
    assert not sales1.is_locked()
    unlocked = AuthEvent.objects.get(user=sales1, kind=AuthEvent.Kind.UNLOCKED)
    assert "admin1" in unlocked.detail
    assert sales1.history.first().history_user == admin1
    assert _password_step(Client(), sales1).status_code == 302


def test_admin_requires_a_verified_device(client, admin1):
    client.force_login(admin1)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("core:verify"))
    sign_in_verified(client, admin1)
    assert client.get("/admin/").status_code == 200


def test_sign_out_is_recorded(client, sales1):
    sign_in_verified(client, sales1)
    response = client.post(reverse("core:logout"), REMOTE_ADDR="198.51.100.4")
    assert response.status_code == 302
    event = AuthEvent.objects.get(user=sales1, kind=AuthEvent.Kind.SIGN_OUT)
    assert event.ip_address == "198.51.100.4"
    assert client.get(reverse("merchants:list")).status_code == 302


def test_idle_session_ends_after_fifteen_minutes(client, sales1):
    sign_in_verified(client, sales1)
    assert client.get(reverse("merchants:list")).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=14)):
        assert client.get(reverse("merchants:list")).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=14 + 16)):
        assert client.get(reverse("merchants:list")).status_code == 302


def test_api_accepts_a_session_only_after_the_second_factor(sales1):
    from rest_framework.test import APIClient

    half = APIClient()
    half.force_login(sales1)
    assert half.get("/api/v1/merchants/").status_code == 403
    full = sign_in_verified(APIClient(), UserFactory(username="sales9", roles=["sales"]))
    assert full.get("/api/v1/merchants/").status_code == 200
