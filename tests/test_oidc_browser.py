"""A real browser (headless Chromium, tests/browser.py) logs in to the example website
(examples/website.py, a stock Authlib client) through the real bot: it follows "Log in with
Telegram" to the login page, the person opens the page's link in the fake Telegram and taps
the page's number, and the browser ends on the website's callback showing the verified
number; with scripts on (the page polls) and off (its meta refresh)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page

from bot.demo.sandbox import FakeTelegram, FakeVerify
from bot.demo.web import load_website, serving_website, website_socket
from tests.helpers import BOT_USERNAME, Chat, Provider, login, tap

LINK = re.compile(rf"https://t\.me/{BOT_USERNAME}\?start=([A-Za-z0-9_-]{{1,64}})")


@pytest.fixture
async def site(provider: Provider) -> AsyncIterator[str]:
    """The example website, registered with the running bot; its URL."""
    with website_socket() as sock:
        async with serving_website(
            provider.application, load_website(), issuer=provider.issuer, site=sock
        ) as url:
            yield url


@pytest.fixture
async def ada(tg: FakeTelegram, verify: FakeVerify, provider: Provider) -> Chat:
    """A logged-in chat: the web login asks it only to tap the page's number."""
    chat = Chat(tg, 1001, first_name="Ada", username="ada")
    await login(chat, verify)
    return chat


async def log_in_on(page: Page, site: str, provider: Provider, ada: Chat) -> None:
    """Open the website, click "Log in with Telegram", and answer the login page in
    Telegram as its reader would: the link (or its QR code), then the page's number."""
    await page.goto(site)
    await page.get_by_role("link", name="Log in with Telegram").click()
    await page.wait_for_url(f"{provider.issuer}/authorize?*")

    button = page.locator("#telegram-link")
    assert await button.inner_text() == "Log in with Telegram"
    link = LINK.fullmatch(await button.get_attribute("href") or "")
    assert link is not None
    qr = page.get_by_role("img", name="QR code of the Telegram link")
    assert await qr.locator("svg").count() == 1  # inline SVG, no image request
    number = await page.locator("#match-number").inner_text()
    assert re.fullmatch(r"\d\d", number)

    question = (await ada.send(f"/start {link[1]}"))[0]
    assert question.text.startswith("Acme Shop (127.0.0.1) asks to log you in as +44 7400 123123.")
    done = await tap(ada, question, number)
    assert done.text.startswith("Done: you are logged in to Acme Shop.")


async def test_a_browser_logs_in_to_the_website_with_the_page_polling(
    browser: Browser, provider: Provider, site: str, ada: Chat
) -> None:
    page = await browser.new_page()
    await log_in_on(page, site, provider, ada)

    await page.wait_for_url(f"{site}callback?**", timeout=10_000)
    assert await page.locator("#who").inner_text() == "logged in as +44 7400 123123"


async def test_without_javascript_the_page_moves_on_by_its_meta_refresh(
    browser: Browser, provider: Provider, site: str, ada: Chat
) -> None:
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await log_in_on(page, site, provider, ada)

    await page.wait_for_url(f"{site}callback?**", timeout=10_000)
    assert await page.locator("#who").inner_text() == "logged in as +44 7400 123123"
    await context.close()
