"""Webhook mode in-process: the secret token is checked before anything else, updates are
handled before the answer, and /healthz tells whether the database answers."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.app import ALLOWED_UPDATES
from bot.db.locks import ChatLocks
from bot.db.models import LoginFlow
from bot.demo.sandbox import FakeTelegram, free_port
from bot.telegram.handlers.base import BotApp
from bot.telegram.lifecycle import running
from bot.telegram.ordering import ChatOrderedUpdateProcessor
from bot.telegram.updates import KINDS
from bot.telegram.webhook import SECRET_HEADER, health_routes, web_serving, webhook_routes
from bot.web.server import http_server
from tests.helpers import Clock, Scrape, scrape

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

    async def post_body(self, body: bytes) -> int:
        """Post these bytes as the body, with the right secret."""
        headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
        async with self.http.post(f"{self.url}/hook/path", data=body, headers=headers) as r:
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
            port = await stack.enter_async_context(
                http_server(
                    health_routes(application)
                    + webhook_routes(application, path="/hook/path", secret=SECRET),
                    host="127.0.0.1",
                    port=0,
                )
            )
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


# A message as Telegram sends it, for the bodies below to break one field each.
MESSAGE: dict[str, Any] = {
    "message_id": 1,
    "date": 1_700_000_000,
    "chat": {"id": 1001, "type": "private", "first_name": "Ada"},
    "from": {"id": 1001, "is_bot": False, "first_name": "Ada"},
    "text": "+44 7400 123123",
}
NOT_UPDATES = {
    "not json": b"+44 7400 123123 {",
    "not utf-8": b"\xff\xfe+447400123123",
    "a list": b"[1]",
    "a string": b'"+447400123123"',
    "null": b"null",
    "an empty object": b"{}",
    "update_id a string": b'{"update_id": "x"}',
    "update_id a boolean": b'{"update_id": true, "message": %s}' % json.dumps(MESSAGE).encode(),
    "chat a string": {"message": {**MESSAGE, "chat": "+447400123123"}},
    "chat id a string": {"message": {**MESSAGE, "chat": {"id": "1001", "type": "private"}}},
    "chat id beyond 64 bits": {"message": {**MESSAGE, "chat": {"id": 1 << 64, "type": "private"}}},
    "from a string": {"message": {**MESSAGE, "from": "+447400123123"}},
    "text a number": {"message": {**MESSAGE, "text": 447400123123}},
    "date a word": {"edited_message": {**MESSAGE, "date": "+447400123123"}},
    "command length a word": {
        "message": {
            **MESSAGE,
            "text": "/login",
            "entities": [{"type": "bot_command", "offset": 0, "length": "x"}],
        }
    },
    "contact without its number": {
        "message": {
            **{k: v for k, v in MESSAGE.items() if k != "text"},
            "contact": {"first_name": "Ada", "user_id": 1001},
        }
    },
    "button press without a sender": {
        "callback_query": {
            "id": "1",
            "chat_instance": "c",
            "data": "resend:new",
            "message": MESSAGE,
        },
    },
}


@pytest.mark.parametrize("body", NOT_UPDATES.values(), ids=NOT_UPDATES.keys())
async def test_a_body_that_is_not_an_update_is_accepted_logged_once_and_does_nothing(
    tg: FakeTelegram,
    serve_hook: Callable[..., Any],
    db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
    body: bytes | dict[str, Any],
) -> None:
    tg.user(1001, "Ada")
    hook: Hook = await serve_hook()
    raw = body if isinstance(body, bytes) else json.dumps({"update_id": 5, **body}).encode()
    caplog.clear()
    # 200: Telegram delivers again whatever is not answered 2xx, so any other answer would
    # bring the same body back, again and again.
    assert await hook.post_body(raw) == 200
    await tg.wait_idle()
    assert tg.messages(1001) == []
    async with db() as session:
        assert (await session.execute(select(LoginFlow))).first() is None
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelname) for r in warnings] == [("bot.telegram.webhook", "WARNING")]
    assert warnings[0].exc_info is None
    assert "7400" not in caplog.text
    assert "123123" not in caplog.text

    # The server goes on: the next update is handled.
    tg.send_text(1001, "/login")
    (update,) = tg.take_updates()
    assert await hook.post(update) == 200
    assert "phone number" in tg.messages(1001)[0].text


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


async def test_an_update_of_a_kind_the_bot_did_not_ask_for_is_accepted_and_ignored(
    tg: FakeTelegram,
    serve_hook: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    tg.user(1001, "Ada")
    hook: Hook = await serve_hook()
    channel_post = {**MESSAGE, "chat": {"id": "1001", "type": "channel"}}
    assert await hook.post({"update_id": 5, "channel_post": channel_post}) == 200
    await tg.wait_idle()
    assert tg.messages(1001) == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_webhook_checks_every_kind_of_update_the_bot_asks_for() -> None:
    assert sorted(KINDS) == sorted(ALLOWED_UPDATES)


async def test_the_bots_http_server_serves_the_metrics_of_the_updates_it_took(
    tg: FakeTelegram, make_settings: Callable[..., Any], clock: Clock
) -> None:
    port = free_port()
    settings = make_settings(
        webhook_url="https://bot.example/hook/path", webhook_secret=SECRET, webhook_port=port
    )
    url = f"http://127.0.0.1:{port}"
    async with (
        running(settings, clock=clock, sweep_seconds=0) as application,
        web_serving(application, settings),
        aiohttp.ClientSession() as http,
    ):
        before = await scrape(f"{url}/metrics")
        tg.user(1001, "Ada")
        tg.send_text(1001, "/login")
        (update,) = tg.take_updates()
        hook = Hook(url, http, application)
        assert await hook.post(update) == 200
        assert await hook.post(update, secret="wrong") == 403
        moved: Scrape = await scrape(f"{url}/metrics") - before

    assert moved.value("phone_login_update_handling_seconds_count", type="message") == 1
    assert moved.total("phone_login_update_handling_seconds_count") == 1
