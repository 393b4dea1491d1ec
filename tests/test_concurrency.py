"""Many updates at once: one chat's are handled in order, one busy chat does not hold up the
others, and a burst of logins is batched and recorded in full."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import AuthEvent, LoginFlow, VerificationStart, VerifiedUser
from bot.demo.sandbox import FakeTelegram, FakeVerify
from tests.helpers import (
    NUMBER,
    Chat,
    numbers_at_once,
)


async def test_a_burst_from_one_chat_is_handled_in_order(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify
) -> None:
    verify.latency = 0.3
    # /login and the number arrive together: the number must meet the NUMBER step.
    tg.send_text(chat.id, "/login")
    tg.send_text(chat.id, NUMBER)
    tg.send_text(chat.id, "/whoami")
    texts = [m.text for m in await tg.wait_for_messages(chat.id, 3, timeout=10)]
    assert "phone number" in texts[0]
    assert "code is on its way" in texts[1]
    assert texts[2] == "You are not logged in yet; a login is in progress. /cancel stops it."
    assert len(verify.calls("start")) == 1


async def test_one_chats_queue_does_not_hold_up_other_chats(
    tg: FakeTelegram, verify: FakeVerify, start_bot: Callable[..., Any]
) -> None:
    await start_bot(max_concurrent_updates=2)
    busy, other = Chat(tg, 1001), Chat(tg, 1002, "Bob", "bob")
    await busy.send("/login")
    verify.latency = 1.0
    tg.send_text(busy.id, NUMBER)  # its Verify call takes a second...
    for _ in range(4):
        tg.send_text(busy.id, "123")  # ...and these wait for their chat's turn
    await tg.wait_for(lambda: len(verify.requests) == 1, 5)
    tg.send_text(other.id, "/help")
    await tg.wait_for(lambda: bool(tg.messages(other.id)), 5)
    # The other chat was answered while the busy chat's number was still at Vonage.
    assert not any("code is on its way" in m.text for m in tg.messages(busy.id))


async def test_a_burst_of_logins_all_succeed_and_are_recorded(
    tg: FakeTelegram,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.db.batching")
    await start_bot()
    chats = [Chat(tg, 2001 + i, f"User{i}", None) for i in range(30)]
    numbers = [f"+44 7400 4{i:05d}" for i in range(30)]
    for chat in chats:
        await chat.send("/login")
    answers = await numbers_at_once(chats, numbers)
    assert all("code is on its way" in answer for answer in answers), answers
    for chat, number in zip(chats, numbers, strict=True):
        tg.send_text(chat.id, verify.last_code(to=number.replace(" ", "")))
    for chat in chats:
        (done,) = await tg.wait_for_messages(chat.id, 1, timeout=10)
        assert done.text.startswith("You are logged in as"), done.text
    async with db() as session:
        rows = await session.execute(select(VerifiedUser.chat_id, VerifiedUser.phone_number))
        logins = {chat_id: number for chat_id, number in rows}
        counted = await session.scalar(select(func.count()).select_from(VerificationStart))
        sent_events = await session.scalar(
            select(func.count()).select_from(AuthEvent).where(AuthEvent.event == "code_sent")
        )
        flows = await session.scalar(select(func.count()).select_from(LoginFlow))
    assert logins == {
        chat.id: number.replace(" ", "") for chat, number in zip(chats, numbers, strict=True)
    }
    assert (counted, sent_events, flows) == (30, 30, 0)
    # Each step of the burst was done in batches, none of which had to be retried alone.
    assert [r.getMessage() for r in caplog.records if r.name == "bot.db.batching"] == []
