"""Signing a fresh browser context in, as a user with a confirmed authenticator."""

import re

from tests.conftest import confirmed_device, totp_now
from tests.factories.core import PASSWORD, UserFactory


def sign_in(browser, live_server, username: str, *, width: int = 1280):
    """A new page signed in as a new ``username`` (password, then TOTP code), on the dashboard."""
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_on(page, UserFactory(username=username), "/accounts/sign-in/", landing=r"/$")
    return page


def sign_in_on(page, user, path: str, *, landing: str | None = None) -> None:
    """Open ``path`` on ``page``, sign in as ``user`` (password, then a TOTP
    code of a confirmed authenticator) and wait to land on ``landing`` (a
    regex; by default ``path`` itself)."""
    device = confirmed_device(user)
    page.goto(path)
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/verify/"))
    page.get_by_label("Code").fill(totp_now(device))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(landing or re.escape(path) + "$"))
