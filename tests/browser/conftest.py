"""Chromium through Playwright for Python, against pytest-django's live server.

Playwright's own browser download does not work here, so the system Chromium
(`apt-get install -y chromium`, or CHROMIUM_PATH) is driven. Without it the
tests skip with that hint, unless PAYCRM_REQUIRE_BROWSER is set (CI), where a
missing browser fails.
"""

import os
from pathlib import Path

import pytest

from tests.conftest import env_flag

# Playwright's sync API runs an event loop in this thread; the test's own ORM
# calls (fixtures, assertions) are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(reason: str):
    message = (
        f"browser tests need Chromium ({reason}): install it with "
        "`apt-get install -y chromium` or set CHROMIUM_PATH"
    )
    if env_flag("PAYCRM_REQUIRE_BROWSER"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser():
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(path).exists():
        _unavailable(f"{path} not found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
