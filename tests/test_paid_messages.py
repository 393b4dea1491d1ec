"""One start, at most one paid message: Vonage failing in the middle of an exchange (a dropped
connection, its answer lost after it acted, a 5xx) never makes the bot send a Verify call
twice, cancel a request it started itself, or lift the limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import VerificationStart
from bot.demo.sandbox import FakeTelegram, FakeVerify
from tests.helpers import NUMBER, Chat, Clock

UNAVAILABLE = "Sorry, I cannot send codes right now."
CHECK_UNAVAILABLE = "Sorry, I could not check the code just now. Please send it again."


async def _counted_starts(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(VerificationStart)) or 0)


async def _start_losing_the_answer(chat: Chat, verify: FakeVerify) -> None:
    """A login whose start Vonage acts on (the SMS goes out) but whose answer is lost."""
    verify.drop_next(path_kind="start", mode="close", processed=True)
    await chat.send("/login")
    assert (await chat.say(NUMBER)).startswith(UNAVAILABLE)
    assert len(verify.deliveries) == 1


async def test_vonage_dropping_every_connection_gets_one_start_and_a_plain_answer(
    chat: Chat, verify: FakeVerify
) -> None:
    verify.drop_all(mode="close")
    await chat.send("/login")
    assert (await chat.say(NUMBER)).startswith(UNAVAILABLE)
    assert len(verify.calls("start")) == 1


async def test_a_lost_answer_to_a_start_then_trying_again_sends_one_sms_and_logs_in(
    chat: Chat, verify: FakeVerify
) -> None:
    # The tests run with LIMIT_COOLDOWN_SECONDS=0: nothing here leans on the cooldown.
    await _start_losing_the_answer(chat, verify)
    # Trying again meets Vonage's 409 for the bot's own request: it is taken over, not
    # cancelled and paid for twice.
    assert (await chat.number(NUMBER)).startswith("A code was already sent to +44 7400 123123")
    assert len(verify.deliveries) == 1
    assert verify.calls("cancel") == []
    assert await chat.say(verify.last_code()) == "You are logged in as +44 7400 123123."


async def test_a_lost_answer_to_a_start_is_not_cancelled_for_another_chat(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify
) -> None:
    await _start_losing_the_answer(chat, verify)
    other = Chat(tg, 1002, "Bob", "bob")
    await other.send("/login")
    assert (await other.say(NUMBER)).startswith("Another login is waiting for a code")
    assert verify.calls("cancel") == []
    assert len(verify.deliveries) == 1
    assert len(verify.active_requests()) == 1


@pytest.mark.parametrize("right", [False, True], ids=["wrong code", "right code"])
async def test_a_check_whose_answer_is_lost_is_sent_once(
    chat: Chat, verify: FakeVerify, right: bool
) -> None:
    await chat.send("/login")
    await chat.number(NUMBER)
    delivery = verify.deliveries[-1]
    code = delivery.code if right else str((int(delivery.code) + 1) % 10**6).zfill(6)
    verify.drop_next(path_kind="check", mode="close", processed=True)
    assert await chat.say(code) == CHECK_UNAVAILABLE
    assert len(verify.calls("check")) == 1
    verification = verify.verification(delivery.request_id)
    if right:
        assert verification.status == "completed"
    else:
        # One wrong code typed spent one of Vonage's tries, and the right one still works.
        assert verification.wrong_attempts == 1
        assert await chat.say(delivery.code) == "You are logged in as +44 7400 123123."


@pytest.mark.parametrize(
    ("fault", "counted"),
    [(500, True), (503, True), ("drop", True), (422, False), (429, False), (409, False)],
)
async def test_only_a_refusal_uncounts_a_start(
    tg: FakeTelegram,
    verify: FakeVerify,
    db: async_sessionmaker[AsyncSession],
    start_bot: Callable[..., Any],
    fault: int | str,
    counted: bool,
) -> None:
    # A 5xx or a lost answer may have sent a code: the start counts, so the cooldown holds
    # while Vonage is degraded. A 4xx is Vonage saying it sent nothing.
    await start_bot(limit_cooldown_seconds=60)
    chat = Chat(tg, 1001)
    if fault == "drop":
        verify.drop_next(path_kind="start", processed=True)
    else:
        assert isinstance(fault, int)
        verify.fail_next(fault, path_kind="start")
    await chat.send("/login")
    await chat.say(NUMBER)
    assert await _counted_starts(db) == (1 if counted else 0)
    if counted:
        again = await chat.say(NUMBER)
        assert again.startswith("Too many codes were asked for this chat or this number.")
        assert len(verify.calls("start")) == 1
    else:
        assert "code is on its way" in await chat.number(NUMBER)
        assert await _counted_starts(db) == 1


async def test_a_request_older_than_any_start_may_wait_for_is_replaced(
    chat: Chat, verify: FakeVerify, clock: Clock
) -> None:
    # The chat's start lost its answer, and Vonage still holds the request after the code
    # TTL (by the bot's clock): no start can be waiting for it now, so it is stranded.
    await _start_losing_the_answer(chat, verify)
    stranded = verify.deliveries[-1].request_id
    clock.advance(601)
    assert "code is on its way" in await chat.number(NUMBER)
    assert verify.verification(stranded).status == "cancelled"
    assert await chat.say(verify.last_code()) == "You are logged in as +44 7400 123123."


async def test_a_request_the_bot_gave_up_on_is_replaced_when_it_blocks_a_start(
    chat: Chat, verify: FakeVerify
) -> None:
    # The bot knows this request (its answer was recorded) and ended the flow; only the
    # cancel did not reach Vonage. Nothing may be waiting for it: it is stranded.
    await chat.send("/login")
    await chat.number(NUMBER)
    given_up = verify.deliveries[-1].request_id
    verify.drop_next(path_kind="cancel")
    assert await chat.say("/cancel") == "Login cancelled."
    await chat.send("/login")
    assert "code is on its way" in await chat.number(NUMBER)
    assert verify.verification(given_up).status == "cancelled"
    assert await chat.say(verify.last_code()) == "You are logged in as +44 7400 123123."
