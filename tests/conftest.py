"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when TEST_DATABASE_URL is set),
the wire-level fakes of Telegram and Verify, and the real bot wired to them. Fixtures only:
what tests import (`Chat`, `login`, the test identities) lives in tests/helpers.py."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright import async_api as playwright
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from bot.config import Settings
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.migrate import upgrade
from bot.demo.sandbox import FakeGateway, FakeTelegram, FakeVerify, free_port
from bot.login.oidc_clients import Clients
from bot.telegram.handlers.base import BotApp
from bot.telegram.webhook import web_serving
from tests import browser as headless
from tests.helpers import (
    ADMIN_ID,
    APP_CALLBACK,
    BOT_USERNAME,
    GATEWAY_TOKEN,
    HASH_KEY,
    SHOP_CALLBACK,
    TOKEN,
    VONAGE_KEY,
    VONAGE_SECRET,
    Browser,
    Chat,
    Clock,
    Provider,
    start_polling_bot,
    stop_bot,
)


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database migrated to head: SQLite by default, PostgreSQL under
    TEST_DATABASE_URL (a new database per test, dropped afterwards)."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        await upgrade(url)
        yield url
        return
    name = f"t_{uuid.uuid4().hex[:16]}"
    # pool_pre_ping: a test may restart the server (`database_server`) before the drop.
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = server_url.rpartition("/")
    url = f"{base}/{name}"
    try:
        await upgrade(url)
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture
def database_server(database_url: str) -> Callable[[str], None]:
    """Stop (`"stop"`) and start again (`"start"`) the PostgreSQL server of the test database
    (scripts/with-postgres provides the control); the test is skipped without one."""
    control = os.environ.get("TEST_DATABASE_SERVER")
    if not control or database_url.startswith("sqlite"):
        pytest.skip("needs a PostgreSQL server the test may stop (scripts/with-postgres)")
    assert control is not None

    def command(action: str) -> None:
        subprocess.run(  # noqa: S603 - the control script with-postgres wrote
            [control, action], check=True, capture_output=True, timeout=60
        )

    return command


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database, for asserting on what it holds."""
    engine = make_engine(database_url, pool_size=2)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    """The stand-in Telegram Bot API."""
    async with FakeTelegram(token=TOKEN, bot_username=BOT_USERNAME) as fake:
        yield fake


@pytest.fixture
async def verify(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeVerify]:
    """The stand-in Verify v2 API over HTTPS; the SDK trusts its throwaway CA."""
    async with FakeVerify(api_key=VONAGE_KEY, api_secret=VONAGE_SECRET) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_path))
        yield fake


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    """The stand-in Telegram Gateway API (plain HTTP on loopback)."""
    async with FakeGateway(token=GATEWAY_TOKEN) as fake:
        yield fake


@pytest.fixture
def gateway_settings(gateway: FakeGateway) -> dict[str, Any]:
    """Settings that put the Telegram Gateway first, before SMS and a call."""
    return {
        "verify_workflow": "telegram,sms,voice",
        "telegram_gateway_token": GATEWAY_TOKEN,
        "telegram_gateway_url": gateway.url,
        # Three channels in the code's 10 minutes.
        "verify_channel_timeout": 200,
    }


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy settings from the machine running the tests; returns the monkeypatch to set
    some."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.fixture
def clock() -> Clock:
    """The bot's clock, moved by the test."""
    return Clock()


@pytest.fixture
def make_settings(
    database_url: str, tg: FakeTelegram, verify: FakeVerify
) -> Callable[..., Settings]:
    """Settings pointing at the fakes and the test database; keyword overrides win."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "telegram_bot_token": TOKEN,
            "telegram_base_url": tg.base_url,
            "vonage_api_key": VONAGE_KEY,
            "vonage_api_secret": VONAGE_SECRET,
            "vonage_api_host": verify.host,
            "vonage_brand": "AcmeLogin",
            "number_hash_key": HASH_KEY,
            "vonage_timeout_seconds": 3,
            "database_url": database_url,
            "bot_admin_ids": str(ADMIN_ID),
            # Most tests log in several times in a row; the limits' own tests set these.
            "limit_cooldown_seconds": 0,
            "limit_starts_per_hour": 100,
            "limit_starts_per_day": 100,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
async def start_bot(
    make_settings: Callable[..., Settings], clock: Clock
) -> AsyncIterator[Callable[..., Any]]:
    """Start the real bot (polling the fake Telegram); returns the running Application."""
    running: list[BotApp] = []

    async def start(**overrides: Any) -> BotApp:
        application = await start_polling_bot(make_settings(**overrides), clock)
        running.append(application)
        return application

    yield start
    for application in running:
        await stop_bot(application)


@pytest.fixture
async def bot(start_bot: Callable[..., Any]) -> BotApp:
    """The running bot with the default test settings."""
    application: BotApp = await start_bot()
    return application


@pytest.fixture
def chat(tg: FakeTelegram, bot: BotApp) -> Chat:
    """A user (id 1001) in a private chat with the running bot."""
    return Chat(tg, 1001)


@pytest.fixture
def strict(start_bot: Callable[..., Any]) -> Callable[..., Any]:
    """Start the bot with the default limits (the other tests relax them)."""

    async def start(**overrides: Any) -> BotApp:
        values: dict[str, Any] = {
            "limit_cooldown_seconds": 60,
            "limit_starts_per_hour": 5,
            "limit_starts_per_day": 10,
        }
        values.update(overrides)
        application: BotApp = await start_bot(**values)
        return application

    return start


@pytest.fixture
def provider_settings() -> dict[str, Any]:
    """Setting changes for the `provider` fixture (a test module overrides this)."""
    return {}


@pytest.fixture
async def provider(
    start_bot: Callable[..., Any],
    make_settings: Callable[..., Settings],
    db: async_sessionmaker[AsyncSession],
    clock: Clock,
    provider_settings: dict[str, Any],
) -> AsyncIterator[Provider]:
    """The running bot with OIDC_ISSUER set, and its HTTP server (what `python -m bot` starts
    in polling mode) on a free port."""
    port = free_port()
    values: dict[str, Any] = {
        "oidc_issuer": f"http://127.0.0.1:{port}",
        "webhook_port": port,
        **provider_settings,
    }
    application = await start_bot(**values)
    clients = Clients(sessions=db, clock=clock)
    shop = await clients.add(name="Acme Shop", redirect_uris=[SHOP_CALLBACK], public=False)
    app = await clients.add(name="Acme App", redirect_uris=[APP_CALLBACK], public=True)
    async with web_serving(application, make_settings(**values)):
        yield Provider(values["oidc_issuer"], application, shop, app, clients)


@pytest.fixture
async def person() -> AsyncIterator[Browser]:
    """A person's browser at the provider, as an HTTP client (`browser` is a real one)."""
    person = Browser()
    yield person
    await person.close()


@pytest.fixture
async def browser() -> AsyncIterator[playwright.Browser]:
    """A real headless Chromium (tests/browser.py). Skipped only where it is not installed
    and CI is not set: under CI a missing browser fails the test."""
    reason = headless.missing_reason()
    if reason is not None:
        if headless.must_have_browser():
            pytest.fail(f"CI needs the headless browser: {reason}")
        pytest.skip(reason)
    async with headless.chromium() as chromium:
        yield chromium
