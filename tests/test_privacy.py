"""What the bot keeps and where it talks: /privacy says what is stored and for how long, the
audit trail and the record of handled updates are deleted as they age out, /forget erases the
rest after confirmation, and in groups the bot only points to the private chat."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import AuthEvent, ProcessedUpdate, VerificationStart, VerifiedUser
from bot.demo.sandbox import FakeTelegram, FakeVerify
from bot.telegram.handlers.base import BotApp
from bot.telegram.lifecycle import sweeping
from tests.helpers import (
    NUMBER,
    Chat,
    Clock,
    login,
    saved_flow,
)

DAY = 24 * 3600


async def test_privacy_says_what_is_stored(chat: Chat) -> None:
    answer = await chat.say("/privacy")
    assert "never store or log the codes" in answer
    assert "as a keyed hash, for 400 days." in answer
    assert "/forget" in answer


async def test_the_sweeper_deletes_audit_events_and_handled_updates_as_they_age_out(
    tg: FakeTelegram,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    clock: Clock,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot: BotApp = await start_bot(audit_retention_days=30)
    chat = Chat(tg, 1001)
    assert "as a keyed hash, for 30 days." in await chat.say("/privacy")
    await login(chat, verify)
    async with db.begin() as session:
        session.add(ProcessedUpdate(update_id=1, at=clock.now))
    clock.advance(29 * DAY)
    await chat.say("/logout")

    async def kept() -> tuple[list[str], int]:
        async with db() as session:
            events = await session.execute(select(AuthEvent.event).order_by(AuthEvent.id))
            updates = await session.scalar(select(func.count()).select_from(ProcessedUpdate))
        return list(events.scalars()), int(updates or 0)

    async def sweep_until(expected: tuple[list[str], int]) -> None:
        async with sweeping(bot, 0.01, None):
            for _ in range(200):
                if await kept() == expected:
                    return
                await asyncio.sleep(0.02)
        assert await kept() == expected

    # 29 days on: the audit trail is whole; the handled update is long past redelivery.
    await sweep_until((["login_started", "code_sent", "verified", "logged_out"], 0))
    clock.advance(2 * DAY)
    # 31 days on: the login's events are gone, the logout (2 days old) stays.
    await sweep_until((["logged_out"], 0))


async def test_forget_erases_the_chat_after_confirmation(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await login(chat, verify)
    question = (await chat.send("/forget"))[0]
    tg.click(question, "No, keep it")
    await tg.wait_for(lambda: tg.messages(chat.id)[-1].text == "Nothing was erased.")
    async with db() as session:
        assert await session.get(VerifiedUser, chat.id) is not None

    question = (await chat.send("/forget"))[0]
    tg.click(question, "Yes, erase everything")
    await tg.wait_for(lambda: tg.messages(chat.id)[-1].text.startswith("Done: everything"))
    async with db() as session:
        assert await session.get(VerifiedUser, chat.id) is None
        starts = (await session.execute(select(VerificationStart))).scalars().all()
    # The counted start stays (no number, only its hash) so /forget cannot reset the limits.
    assert [s.chat_id for s in starts] == [chat.id]
    assert all("447400123123" not in s.number_hash for s in starts)


async def test_group_chats_get_a_link_and_no_number_is_read(
    tg: FakeTelegram, bot: BotApp, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    tg.user(1001, "Ada")
    tg.send_text(-500, "/login@LoginTestBot", user_id=1001, chat_type="supergroup")
    answer = await tg.next_reply(-500)
    assert answer.text == (
        "For your privacy, logging in happens in a private chat with me: https://t.me/LoginTestBot"
    )
    tg.send_text(-500, NUMBER, user_id=1001, chat_type="supergroup")
    tg.send_text(-500, "/whoami", user_id=1001, chat_type="supergroup")
    assert (await tg.next_reply(-500)).text.startswith("For your privacy")
    await tg.wait_idle()
    assert tg.drain(-500) == []
    assert verify.calls() == []
    assert await saved_flow(db, -500) is None
    assert await saved_flow(db, 1001) is None
