"""A real headless browser for the tests: the system's Chromium (Debian's `chromium` package,
installed by `.ci/run` when missing) driven by Playwright, whose wheel ships its own driver.
`playwright install` is never used: it downloads a browser build, which this project does not.

The `browser` fixture in tests/conftest.py is the one way tests get it:

    async def test_...(browser: Browser) -> None:
        page = await browser.new_page()
        await page.goto("http://127.0.0.1:.../")
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, async_playwright

CHROMIUM = Path("/usr/bin/chromium")

# A sandbox needs privileges CI's root user does not have; GPU, QUIC and Chromium's own
# background traffic (updates, sync, field trials) have no place in a test on loopback.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def missing_reason() -> str | None:
    """Why no browser can be started here, or None when one can."""
    if CHROMIUM.exists():
        return None
    return f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)"


def must_have_browser() -> bool:
    """Under CI a missing browser is a failure, never a skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """The system's Chromium, headless, closed on the way out."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()
