"""When Telegram, Vonage or the database misbehave: a blocked bot, a 429, a flood after an
outage, a failing database and a stranded Verify request each end in a sensible answer and a
consistent state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.config import Settings
from bot.demo.sandbox import FakeTelegram, FakeVerify
from bot.telegram.polling import max_pending
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


async def test_a_failing_getupdates_is_retried_logged_once_and_the_updates_still_arrive(
    tg: FakeTelegram, chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    polls = len(tg.calls_to("getUpdates"))
    tg.fail_next("getUpdates", 502, "Bad Gateway")
    tg.drop_next("getUpdates")
    # The poll waiting now ends (1 s), then one answers 502 and one is dropped.
    await tg.wait_for(lambda: len(tg.calls_to("getUpdates")) >= polls + 3, 10)
    assert "/login" in await chat.say("hello")
    assert all(r.exc_info is None for r in caplog.records), "no traceback per failed poll"
    lines = [r.getMessage() for r in caplog.records if "etch" in r.getMessage()]
    assert lines == [
        "Cannot fetch updates from Telegram (NetworkError: Bad Gateway); retrying",
        "Fetching updates from Telegram again after 2 failures",
    ]


async def test_a_flood_is_fetched_only_as_fast_as_it_is_handled(
    tg: FakeTelegram, start_bot: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    settings = {"max_concurrent_updates": 4, "telegram_max_messages_per_second": 0}
    await start_bot(**settings)
    bound = max_pending(make_settings(**settings))
    flood = [Chat(tg, 5000 + index) for index in range(3 * bound)]
    tg.hang_next("sendMessage", times=None)  # no answer gets out, so no update finishes
    for chat in flood:
        tg.send_text(chat.id, "hello")
    await asyncio.sleep(1.0)
    # The bot holds at most `bound` of them; the rest still waits at Telegram, unconfirmed.
    assert tg.pending_updates >= len(flood) - bound
    tg.clear_faults()
    for chat in flood:
        answer = await tg.wait_for_messages(chat.id, 1, timeout=10)
        assert "/login" in answer[0].text
    await tg.wait_idle()
    assert tg.pending_updates == 0


async def test_one_chats_flood_does_not_take_the_room_other_chats_need(
    tg: FakeTelegram,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    make_settings: Callable[..., Settings],
) -> None:
    settings = {"max_concurrent_updates": 2, "telegram_max_messages_per_second": 0}
    await start_bot(**settings)
    bound = max_pending(make_settings(**settings))
    flood, other = Chat(tg, 1001), Chat(tg, 1002, "Bob", "bob")
    await flood.send("/login")
    verify.latency = 3.0
    tg.send_text(flood.id, NUMBER)  # at Vonage for 3 s, and the flood waits behind it
    for _ in range(2 * bound):
        tg.send_text(flood.id, "123")
    await tg.wait_for(lambda: len(verify.requests) == 1, 5)
    tg.send_text(other.id, "/help")
    await tg.wait_for(lambda: bool(tg.messages(other.id)), 2, "the other chat's answer")
    # Answered while the flooding chat's number was still at Vonage.
    assert not any("code is on its way" in m.text for m in tg.messages(flood.id))


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


async def test_while_the_database_is_down_users_get_the_apology_and_one_line_is_logged(
    chat: Chat,
    verify: FakeVerify,
    database_server: Callable[[str], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await chat.send("/login")
    await chat.number(NUMBER)
    code = verify.last_code()
    caplog.set_level(logging.INFO)
    await asyncio.to_thread(database_server, "stop")
    try:
        for text in ("hello", code, "/whoami", "/cancel"):
            assert await chat.say(text) == texts.APOLOGY
    finally:
        await asyncio.to_thread(database_server, "start")
    # The flow waited for its code all along: the same code still logs in.
    assert await chat.say(code) == "You are logged in as +44 7400 123123."
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].getMessage().startswith("The database cannot be reached (")
    assert all(r.exc_info is None for r in caplog.records), "no traceback per update"
    back = [r.getMessage() for r in caplog.records if "database answers again" in r.getMessage()]
    assert len(back) == 1, back
    assert verify.calls("check")[-1:] == verify.calls("check")  # checked once, after the outage


async def test_telegram_timing_out_is_not_taken_for_a_database_outage(
    tg: FakeTelegram, chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    tg.hang_next("sendMessage")  # the answer to "hello" times out (5 s), the apology gets out
    assert await chat.say("hello") == texts.APOLOGY
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"Unhandled TimedOut while handling an update from chat {chat.id}"]
    assert "database" not in caplog.text


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
