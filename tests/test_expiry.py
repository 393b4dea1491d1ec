"""Codes that are not used in time: the request is cancelled at Vonage and the user told on
the next message; the request's own timeouts fit the flow's."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.demo.sandbox import FakeVerify
from bot.telegram.handlers.base import BotApp
from tests.helpers import (
    NUMBER,
    Chat,
    Clock,
    saved_flow,
    saved_step,
)


async def test_unused_code_expires_is_cancelled_and_explained_on_the_next_message(
    chat: Chat, verify: FakeVerify, bot: BotApp, clock: Clock, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    await chat.number(NUMBER)
    code = verify.last_code()
    services = bot.bot_data.services
    assert services is not None
    assert await services.login.expire_due() == 0
    clock.advance(600)
    assert await services.login.expire_due() == 1
    assert verify.active_requests() == []
    assert await saved_step(db, chat.id) == "expired"
    assert await chat.say(code) == (
        "Your code expired before it was used. Send /login to get a new one."
    )
    assert verify.calls("check") == []
    assert await saved_flow(db, chat.id) is None


async def test_verify_request_asks_for_six_digits_and_fits_the_ttl(
    chat: Chat, verify: FakeVerify
) -> None:
    await chat.send("/login")
    await chat.number(NUMBER)
    body = verify.calls("start")[0].json_body
    assert body is not None
    assert body["code_length"] == 6
    assert body["channel_timeout"] == 300
    assert [step["channel"] for step in body["workflow"]] == ["sms", "voice"]
