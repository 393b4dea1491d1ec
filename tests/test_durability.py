"""The flow's state lives in the database: a restarted bot continues every login, and memory
keeps nothing of the chats that walked away."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import LoginFlow, VerifiedUser
from bot.demo.sandbox import FakeTelegram, FakeVerify
from bot.telegram.handlers.base import BotApp
from bot.telegram.handlers.login import FlowConversationHandler
from tests.helpers import Chat, Clock, stop_bot


async def test_code_sent_before_a_restart_logs_in_after_it(
    tg: FakeTelegram,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    db: async_sessionmaker[AsyncSession],
) -> None:
    first = await start_bot()
    chat = Chat(tg, 1001)
    await chat.send("/login")
    await chat.number("+44 7400 123123")
    await stop_bot(first)

    await start_bot()
    assert await chat.say(verify.last_code()) == "You are logged in as +44 7400 123123."
    async with db() as session:
        assert await session.get(VerifiedUser, chat.id) is not None


async def test_number_step_survives_a_restart(
    tg: FakeTelegram, verify: FakeVerify, start_bot: Callable[..., Any]
) -> None:
    first = await start_bot()
    chat = Chat(tg, 1001)
    await chat.send("/login")
    await stop_bot(first)

    await start_bot()
    assert "code is on its way" in await chat.number("+44 7400 123123")


async def test_code_that_expired_while_the_bot_was_down_is_answered_as_expired(
    tg: FakeTelegram, verify: FakeVerify, start_bot: Callable[..., Any], clock: Clock
) -> None:
    first = await start_bot()
    chat = Chat(tg, 1001)
    await chat.send("/login")
    await chat.number("+44 7400 123123")
    code = verify.last_code()
    await stop_bot(first)

    clock.advance(601)
    await start_bot()
    assert await chat.say(code) == (
        "Your code expired before it was used. Send /login to get a new one."
    )
    # The expired request was cancelled at Vonage, and the code logs nobody in.
    assert len(verify.calls("cancel")) == 1
    assert verify.calls("check") == []
    assert "/login" in await chat.say(code)


async def test_a_flow_removed_while_vonage_sends_the_code_is_recorded_again(
    tg: FakeTelegram,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    db: async_sessionmaker[AsyncSession],
) -> None:
    await start_bot()
    chat = Chat(tg, 1001)
    await chat.send("/login")
    verify.latency = 0.5
    tg.send_text(chat.id, "+44 7400 123123")
    await tg.wait_for(lambda: len(verify.calls("start")) == 1, 5)
    async with db.begin() as session:  # e.g. purged as stale meanwhile
        await session.execute(delete(LoginFlow).where(LoginFlow.chat_id == chat.id))
    (sent,) = await tg.wait_for_messages(chat.id, 1)
    assert "code is on its way" in sent.text
    assert (await chat.say(verify.last_code())).startswith("You are logged in as")
    async with db() as session:
        login = await session.get(VerifiedUser, chat.id)
    assert login is not None
    assert login.phone_number == "+447400123123"


async def test_abandoned_logins_leave_nothing_in_memory_and_still_continue(
    tg: FakeTelegram, verify: FakeVerify, bot: BotApp
) -> None:
    at_number = [Chat(tg, 2000 + index) for index in range(20)]
    at_code = [Chat(tg, 3000 + index) for index in range(20)]
    for chat in [*at_number, *at_code]:
        await chat.send("/login")
    for index, chat in enumerate(at_code):
        await chat.number(f"+44 7400 {index:06d}")
    await tg.wait_idle()
    (conversation,) = [h for h in bot.handlers[0] if isinstance(h, FlowConversationHandler)]
    assert conversation.chats_in_memory == 0
    # The steps were kept where they belong: each chat continues where it left.
    assert "code is on its way" in await at_number[0].number("+44 7400 999999")
    code = verify.last_code(to="+447400000000")
    assert await at_code[0].say(code) == "You are logged in as +44 7400 000000."
    assert conversation.chats_in_memory == 0
