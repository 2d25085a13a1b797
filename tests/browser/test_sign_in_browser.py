"""The first journey: sign in with a password and a TOTP code, see your merchants."""

import base64
import re

import pytest
from django_otp.oath import totp

from tests.factories.core import PASSWORD
from tests.factories.merchants import MerchantFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _code(key: bytes, *, steps_ahead: int = 0) -> str:
    return f"{totp(key, step=30, t0=-30 * steps_ahead, digits=6):06d}"


def _sign_in(page, username: str) -> None:
    page.goto("/merchants/")
    page.wait_for_url(re.compile(r"/accounts/sign-in/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()


def test_sales_user_enrols_signs_in_with_totp_and_sees_only_their_merchants(page, sales1, sales2):
    mine = MerchantFactory.create_batch(3, owner=sales1)
    theirs = MerchantFactory.create_batch(2, owner=sales2)

    # first sign-in: enrol an authenticator from the key on the page
    _sign_in(page, "sales1")
    page.wait_for_url(re.compile(r"/accounts/sign-in/enrol/"))
    assert page.locator("[data-testid=totp-qr] svg").is_visible()
    secret = page.locator("[data-testid=totp-secret]").inner_text().replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    page.get_by_label("Code from your app").fill(_code(key))
    page.get_by_role("button", name="Confirm and continue").click()

    # ten backup codes, shown once
    assert page.locator("[data-testid=backup-codes] li").count() == 10
    page.get_by_role("link", name=re.compile("continue")).click()

    page.wait_for_url(re.compile(r"/merchants/$"))
    table = page.locator("[data-testid=merchant-table]").inner_text()
    for merchant in mine:
        assert merchant.legal_name in table
    for merchant in theirs:
        assert merchant.legal_name not in table

    # a later sign-in asks for a code; the app shows the next step's code by then
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/accounts/sign-in/"))
    _sign_in(page, "sales1")
    page.wait_for_url(re.compile(r"/accounts/sign-in/verify/"))
    page.get_by_label("Code").fill(_code(key, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r"/merchants/$"))
    assert page.locator("[data-testid=result-count]").inner_text() == "3 merchants"


def test_a_wrong_code_keeps_the_user_on_the_verify_page(page, sales1):
    from tests.conftest import confirmed_device

    confirmed_device(sales1)
    _sign_in(page, "sales1")
    page.wait_for_url(re.compile(r"/accounts/sign-in/verify/"))
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Verify").click()
    assert "not valid" in page.locator("[data-field=code]").inner_text()
    assert "/accounts/sign-in/verify/" in page.url
