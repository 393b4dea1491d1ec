"""Webhook mode in-process: the secret token is checked before anything else, updates are
handled before the answer, and /healthz tells whether the database answers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.db.locks import ChatLocks
from bot.db.models import LoginFlow
from bot.demo.sandbox import FakeTelegram
from bot.telegram.handlers.base import BotApp
from bot.telegram.lifecycle import running
from bot.telegram.ordering import ChatOrderedUpdateProcessor
from bot.telegram.webhook import SECRET_HEADER, webhook_app
from tests.helpers import Clock

SECRET = "s3cret-token_for-tests"


class Hook:
    """A running webhook server for one started bot."""

    def __init__(self, url: str, http: aiohttp.ClientSession, application: BotApp) -> None:
        self.url = url
        self.http = http
        self.application = application

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        async with self.http.post(f"{self.url}/hook/path", json=update, headers=headers) as r:
            return r.status

    async def health(self) -> int:
        async with self.http.get(f"{self.url}/healthz") as response:
            return response.status


@pytest.fixture
async def serve_hook(
    make_settings: Callable[..., Any], clock: Clock
) -> AsyncIterator[Callable[..., Any]]:
    """Start the bot (no polling) behind the webhook server on a free port."""
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())

        async def start(**overrides: Any) -> Hook:
            application: BotApp = await stack.enter_async_context(
                running(make_settings(**overrides), clock=clock, sweep_seconds=0)
            )
            runner = web.AppRunner(webhook_app(application, path="/hook/path", secret=SECRET))
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            return Hook(f"http://127.0.0.1:{port}", http, application)

        yield start


async def test_updates_without_the_secret_are_refused_and_reach_no_handler(
    tg: FakeTelegram, serve_hook: Callable[..., Any], db: async_sessionmaker[AsyncSession]
) -> None:
    hook: Hook = await serve_hook()
    tg.user(1001, "Ada")
    tg.send_text(1001, "/login")
    (update,) = tg.take_updates()
    assert await hook.post(update, secret=None) == 403
    assert await hook.post(update, secret="wrong") == 403
    await tg.wait_idle()
    assert tg.messages(1001) == []
    async with db() as session:
        assert (await session.execute(select(LoginFlow))).first() is None

    assert await hook.post(update) == 200
    # Handled before the answer: the reply is already there.
    assert "phone number" in tg.messages(1001)[0].text
    async with db() as session:
        assert (await session.execute(select(LoginFlow))).first() is not None


async def test_garbage_bodies_are_refused(serve_hook: Callable[..., Any]) -> None:
    hook: Hook = await serve_hook()
    async with hook.http.post(
        f"{hook.url}/hook/path", data=b"not json", headers={SECRET_HEADER: SECRET}
    ) as response:
        assert response.status == 400


async def test_healthz_answers_200_with_a_database_and_503_without(
    serve_hook: Callable[..., Any], tmp_path: Any
) -> None:
    healthy: Hook = await serve_hook()
    assert await healthy.health() == 200
    broken: Hook = await serve_hook(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/missing/dir/bot.db"
    )
    assert await broken.health() == 503


async def test_an_update_whose_chat_another_process_keeps_too_long_gets_the_apology(
    tg: FakeTelegram,
    serve_hook: Callable[..., Any],
    database_url: str,
    db: async_sessionmaker[AsyncSession],
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("chat claims are for webhook processes sharing PostgreSQL")
    hook: Hook = await serve_hook(
        webhook_url="https://bot.example/hook/path", webhook_secret=SECRET
    )
    services = hook.application.bot_data.services
    assert services is not None
    processor = hook.application.update_processor
    assert isinstance(processor, ChatOrderedUpdateProcessor)
    # The bot's own claims, waiting 0.3 s instead of 30 for a chat another process holds.
    impatient = ChatLocks(services.engine, wait=0.3)
    processor.share_chats(impatient, on_busy=hook.application.process_error)
    other_process = ChatLocks(services.engine)
    tg.user(1001, "Ada")
    tg.send_text(1001, "/login")
    (update,) = tg.take_updates()
    async with other_process.hold(1001, update["update_id"] - 1):
        assert await hook.post(update) == 200
    assert [m.text for m in tg.messages(1001)] == [texts.APOLOGY]
    async with db() as session:
        assert (await session.execute(select(LoginFlow))).first() is None  # not acted on
    await other_process.close()
    await impatient.close()
