"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when TEST_DATABASE_URL is set),
the wire-level fakes of Telegram and Verify, and the real bot wired to them."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from bot.app import build_application, start_polling, stop_polling
from bot.config import Settings
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.migrate import upgrade
from bot.demo.sandbox import FakeTelegram, FakeVerify, SentMessage
from bot.telegram.handlers.base import BotApp

TOKEN = "123456:TEST-token-abcdefghijklmnop"
BOT_USERNAME = "LoginTestBot"
VONAGE_KEY = "vkey"
VONAGE_SECRET = "vonage-secret-value"
ADMIN_ID = 900001


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
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
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


@dataclass
class Clock:
    """The bot's clock in tests: starts at the real time and moves only when told."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Per-test setting changes (a test overrides this fixture or mutates the dict)."""
    return {}


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
        application = build_application(make_settings(**overrides), clock=clock, sweep_seconds=0)
        # What run_polling() does, without taking over the test's event loop.
        await start_polling(application, poll_timeout=1)
        running.append(application)
        return application

    yield start
    for application in running:
        await stop_bot(application)


async def stop_bot(application: BotApp) -> None:
    """Stop polling, finish in-flight updates and close everything."""
    await stop_polling(application)


@pytest.fixture
async def bot(start_bot: Callable[..., Any], settings_overrides: dict[str, Any]) -> BotApp:
    """The running bot with the default test settings (plus `settings_overrides`)."""
    application: BotApp = await start_bot(**settings_overrides)
    return application


class Chat:
    """One simulated user's private chat: send things, read the bot's answers."""

    def __init__(
        self, tg: FakeTelegram, user_id: int, first_name: str = "Ada", username: str | None = "ada"
    ) -> None:
        self.tg = tg
        self.id = user_id
        tg.user(user_id, first_name, username)

    async def send(self, text: str, replies: int = 1) -> list[SentMessage]:
        """Send a text and wait for that many answers."""
        self.tg.send_text(self.id, text)
        return await self.tg.wait_for_messages(self.id, replies, timeout=10)

    async def say(self, text: str) -> str:
        """Send a text and return the text of the one answer."""
        return (await self.send(text))[0].text

    async def number(self, text: str) -> str:
        """Send a number that should start a verification: returns the "code sent" text,
        after checking the message with the new-code buttons that follows it."""
        sent, hint = await self.send(text, replies=2)
        assert hint.inline_buttons, hint.describe()
        return sent.text

    async def contact(self, phone_number: str, *, own: bool = True, replies: int = 1) -> str:
        """Share a contact (the user's own by default); return the first answer's text."""
        self.tg.send_contact(self.id, phone_number, contact_user_id=self.id if own else self.id + 1)
        answers = await self.tg.wait_for_messages(self.id, replies, timeout=10)
        return answers[0].text

    async def quiet(self) -> list[SentMessage]:
        """Wait until the bot is idle; return anything it said meanwhile (usually nothing)."""
        await self.tg.wait_idle(timeout=10)
        return self.tg.drain(self.id)


@pytest.fixture
def chat(tg: FakeTelegram, bot: BotApp) -> Chat:
    """A user (id 1001) in a private chat with the running bot."""
    return Chat(tg, 1001)


async def login(chat: Chat, verify: FakeVerify, number: str = "+44 7400 123123") -> str:
    """Do a whole login; returns the bot's last answer."""
    await chat.send("/login")
    await chat.number(number)
    code = verify.last_code()
    return await chat.say(code)


async def settle() -> None:
    """Let background tasks run."""
    await asyncio.sleep(0)
