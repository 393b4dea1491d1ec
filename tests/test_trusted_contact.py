"""TRUST_TELEGRAM_CONTACT: the user's own contact, shared from the button, logs them in
without any code; anything else (the setting off, a typed number, someone else's contact, a
number the destination rules refuse) is handled as before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import AuthEvent, VerifiedUser
from bot.demo.sandbox import FakeTelegram, FakeVerify
from tests.helpers import NUMBER, Chat

LOGGED_IN = "You are logged in as +44 7400 123123."


async def _verified_events(db: async_sessionmaker[AsyncSession]) -> list[AuthEvent]:
    async with db() as session:
        query = select(AuthEvent).where(AuthEvent.event == "verified")
        return list((await session.execute(query)).scalars().all())


async def test_own_contact_logs_in_at_once_without_any_code(
    tg: FakeTelegram,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    db: async_sessionmaker[AsyncSession],
) -> None:
    await start_bot(trust_telegram_contact=True)
    chat = Chat(tg, 1001)
    await chat.send("/login")
    assert await chat.contact("447400123123") == LOGGED_IN
    assert verify.requests == []
    assert await chat.quiet() == []
    async with db() as session:
        login = await session.get(VerifiedUser, chat.id)
    assert login is not None
    assert login.phone_number == "+447400123123"
    (event,) = await _verified_events(db)
    assert (event.chat_id, event.detail, event.request_id) == (chat.id, "telegram_contact", None)
    assert (await chat.say("/whoami")).startswith("You are logged in as +44 7400 123123")


async def test_without_the_setting_the_own_contact_still_needs_a_code(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    assert "code is on its way" in await chat.contact("447400123123")
    assert len(verify.calls("start")) == 1
    async with db() as session:
        assert await session.get(VerifiedUser, chat.id) is None


async def test_someone_elses_contact_or_a_typed_number_still_need_a_code(
    tg: FakeTelegram,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    db: async_sessionmaker[AsyncSession],
) -> None:
    await start_bot(trust_telegram_contact=True)
    chat = Chat(tg, 1001)
    await chat.send("/login")
    answer = await chat.contact("447400123123", own=False)
    assert answer.startswith("Please share your own number")
    assert verify.requests == []
    assert "code is on its way" in await chat.number(NUMBER)
    assert len(verify.calls("start")) == 1
    assert await _verified_events(db) == []


async def test_a_trusted_contact_is_still_refused_where_codes_may_not_go(
    tg: FakeTelegram,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    db: async_sessionmaker[AsyncSession],
) -> None:
    await start_bot(trust_telegram_contact=True, denied_regions="GB")
    chat = Chat(tg, 1001)
    await chat.send("/login")
    assert (await chat.contact("447400123123")).startswith("Sorry, I cannot send codes")
    assert verify.requests == []
    async with db() as session:
        assert await session.get(VerifiedUser, chat.id) is None
    assert await _verified_events(db) == []
