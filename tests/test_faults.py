"""When Telegram, Vonage or the database misbehave: a blocked bot, a 429, a failing database
and a stranded Verify request each end in a sensible answer and a consistent state."""

from __future__ import annotations

import asyncio

import requests
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.demo.sandbox import FakeTelegram, FakeVerify
from tests.helpers import (
    NUMBER,
    VONAGE_KEY,
    VONAGE_SECRET,
    Chat,
    login,
    saved_flow,
)


async def test_user_who_blocked_the_bot_is_dropped_from_the_flow(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    await chat.number(NUMBER)
    tg.block_user(chat.id)
    tg.send_text(chat.id, "hello")
    await tg.wait_idle()
    assert await saved_flow(db, chat.id) is None
    assert verify.active_requests() == []


async def test_telegram_429_is_waited_out_and_the_answer_still_arrives(
    tg: FakeTelegram, chat: Chat
) -> None:
    tg.fail_next("sendMessage", 429, description="Too Many Requests: retry after 1", retry_after=1)
    assert "/login" in await chat.say("hello")


async def test_database_error_gets_an_apology_and_leaves_nothing_half_written(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    await chat.number(NUMBER)
    async with db.begin() as session:
        await session.execute(text("ALTER TABLE verified_users RENAME TO verified_users_gone"))
    assert await chat.say(verify.last_code()) == (
        "Sorry, something went wrong on my side. Please try again in a moment."
    )
    flow = await saved_flow(db, chat.id)
    assert flow is not None  # the flow was not deleted without the login being saved
    assert flow.step == "code"
    async with db.begin() as session:
        await session.execute(text("ALTER TABLE verified_users_gone RENAME TO verified_users"))
    # The state is consistent: the flow is still there to cancel, and a new login works.
    assert await chat.say("/cancel") == "Login cancelled."
    assert await login(chat, verify) == "You are logged in as +44 7400 123123."


async def test_stranded_verification_for_the_number_is_cancelled_and_a_new_one_starts(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    # A request nobody owns any more (say the bot crashed right after Vonage accepted it)
    # makes Vonage answer 409 to the next start for that number.
    stranded = await asyncio.to_thread(
        requests.post,
        f"{verify.url}/v2/verify",
        json={"brand": "X", "workflow": [{"channel": "sms", "to": "447400123123"}]},
        auth=(VONAGE_KEY, VONAGE_SECRET),
        verify=str(verify.ca_path),
        timeout=5,
    )
    stranded_id = stranded.json()["request_id"]
    await chat.send("/login")
    assert "code is on its way" in await chat.number(NUMBER)
    assert verify.verification(stranded_id).status == "cancelled"
    assert await chat.say(verify.last_code()) == "You are logged in as +44 7400 123123."
