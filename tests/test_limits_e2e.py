"""The start limits through the whole bot: cooldown, hourly, daily and global limits and
refused destinations cost no Verify call, hold when numbers arrive together, and survive a
restart and /forget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import VerificationStart
from bot.demo.sandbox import FakeTelegram, FakeVerify
from tests.helpers import (
    ADMIN_ID,
    NUMBER,
    Chat,
    Clock,
    login,
    numbers_at_once,
    saved_step,
    stop_bot,
)


async def test_cooldown_between_two_starts_for_a_chat(
    tg: FakeTelegram, verify: FakeVerify, strict: Callable[..., Any], clock: Clock
) -> None:
    await strict()
    chat = Chat(tg, 1001)
    await chat.send("/login")
    await chat.number(NUMBER)
    await chat.send("/login", replies=2)
    answer = await chat.say("+44 7400 555666")
    assert answer.startswith("Too many codes were asked for this chat or this number.")
    assert "try again after" in answer
    assert len(verify.calls("start")) == 1
    clock.advance(61)
    assert "code is on its way" in await chat.number("+44 7400 555666")


async def test_cooldown_is_counted_per_number_across_chats(
    tg: FakeTelegram, verify: FakeVerify, strict: Callable[..., Any]
) -> None:
    await strict()
    ada, bob = Chat(tg, 1001), Chat(tg, 1002, "Bob", "bob")
    await ada.send("/login")
    await ada.number(NUMBER)
    await bob.send("/login")
    assert (await bob.say(NUMBER)).startswith("Too many codes were asked")
    assert len(verify.calls("start")) == 1


async def test_hourly_and_daily_limits(
    tg: FakeTelegram, verify: FakeVerify, strict: Callable[..., Any], clock: Clock
) -> None:
    await strict(limit_cooldown_seconds=0, limit_starts_per_hour=2, limit_starts_per_day=3)
    chat = Chat(tg, 1001)
    for n in range(2):
        await chat.send("/login", replies=1 if n == 0 else 2)
        await chat.number(f"+44 7400 12312{n}")
    await chat.send("/login", replies=2)
    assert (await chat.say("+44 7400 123129")).startswith("Too many codes")
    clock.advance(3601)
    await chat.number("+44 7400 123129")
    await chat.send("/login", replies=2)
    clock.advance(3601)
    answer = await chat.say("+44 7400 123128")
    assert answer.startswith("Too many codes")  # 3 today: the daily limit
    assert len(verify.calls("start")) == 3


async def test_global_limit_refuses_everyone_and_tells_admins_once(
    tg: FakeTelegram, verify: FakeVerify, strict: Callable[..., Any]
) -> None:
    await strict(limit_global_starts_per_hour=2)
    tg.user(ADMIN_ID, "Admin")
    for i in range(2):
        user = Chat(tg, 1001 + i)
        await user.send("/login")
        await user.number(f"+44 7400 20000{i}")
    for i in range(2, 4):
        user = Chat(tg, 1001 + i)
        await user.send("/login")
        answer = await user.say(f"+44 7400 20000{i}")
        assert answer.startswith("I am receiving too many login requests right now.")
    await tg.wait_idle()
    alerts = tg.messages(ADMIN_ID)
    assert len(alerts) == 1
    assert "LIMIT_GLOBAL_STARTS_PER_HOUR" in alerts[0].text
    assert len(verify.calls("start")) == 2


async def test_numbers_arriving_together_still_respect_the_global_limit(
    tg: FakeTelegram, verify: FakeVerify, strict: Callable[..., Any]
) -> None:
    await strict(limit_global_starts_per_hour=3)
    tg.user(ADMIN_ID, "Admin")
    chats = [Chat(tg, 1001 + i, f"User{i}", None) for i in range(6)]
    for chat in chats:
        await chat.send("/login")
    answers = await numbers_at_once(chats, [f"+44 7400 30000{i}" for i in range(6)])
    sent = [a for a in answers if "code is on its way" in a]
    refused = [a for a in answers if a.startswith("I am receiving too many login requests")]
    assert (len(sent), len(refused)) == (3, 3), answers
    await tg.wait_idle()
    assert len(verify.calls("start")) == 3
    assert len(tg.messages(ADMIN_ID)) == 1


async def test_one_number_from_two_chats_at_once_gets_one_code(
    tg: FakeTelegram, verify: FakeVerify, strict: Callable[..., Any]
) -> None:
    await strict()
    ada, bob = Chat(tg, 1001), Chat(tg, 1002, "Bob", "bob")
    for chat in (ada, bob):
        await chat.send("/login")
    answers = await numbers_at_once([ada, bob], [NUMBER, NUMBER])
    assert sorted(answer[:30] for answer in answers) == [
        "A 6-digit code is on its way t",
        "Too many codes were asked for ",
    ], answers
    await tg.wait_idle()
    assert len(verify.calls("start")) == 1


@pytest.mark.parametrize(
    ("setting", "number", "expected"),
    [
        ({"allowed_country_codes": "44,49"}, "+1 201 555 0123", "in that country"),
        ({"denied_country_codes": "1"}, "+1 201 555 0123", "in that country"),
        # +1 876 is Jamaica, not the US; +44 7797 is Jersey, not the UK.
        ({"allowed_regions": "US,CA"}, "+1 876 210 1234", "in that country"),
        ({"allowed_regions": "GB"}, "+44 7797 900123", "in that country"),
        ({"denied_regions": "JM,DO"}, "+1 876 210 1234", "in that country"),
        ({"allowed_country_codes": "1", "denied_regions": "jm"}, "+1 876 210 1234", "country"),
        ({"denied_number_prefixes": "+4470,+4474001"}, "+44 7400 123123", "to that number"),
    ],
)
async def test_refused_destinations_never_reach_vonage(
    tg: FakeTelegram,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    db: async_sessionmaker[AsyncSession],
    setting: dict[str, str],
    number: str,
    expected: str,
) -> None:
    await start_bot(**setting)
    chat = Chat(tg, 1001)
    await chat.send("/login")
    answer = await chat.say(number)
    assert answer.startswith("Sorry, I cannot send codes")
    assert expected in answer
    assert verify.calls() == []
    assert await saved_step(db, chat.id) == "number"
    async with db() as session:
        assert (await session.execute(select(VerificationStart))).first() is None


@pytest.mark.parametrize(
    ("setting", "number"),
    [
        ({"allowed_regions": "US,CA"}, "+1 201 555 0123"),
        ({"allowed_regions": "GB"}, "+44 7400 123123"),
        ({"allowed_country_codes": "1", "denied_regions": "JM"}, "+1 201 555 0123"),
    ],
)
async def test_numbers_of_the_allowed_regions_get_their_code(
    tg: FakeTelegram,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    db: async_sessionmaker[AsyncSession],
    setting: dict[str, str],
    number: str,
) -> None:
    await start_bot(**setting)
    chat = Chat(tg, 1001)
    await chat.send("/login")
    assert "code is on its way" in await chat.number(number)
    assert len(verify.calls("start")) == 1
    assert await saved_step(db, chat.id) == "code"


async def test_limits_survive_a_restart(
    tg: FakeTelegram, verify: FakeVerify, strict: Callable[..., Any]
) -> None:
    first = await strict()
    chat = Chat(tg, 1001)
    await chat.send("/login")
    await chat.number(NUMBER)
    await stop_bot(first)
    await strict()
    await chat.send("/login", replies=2)
    assert (await chat.say(NUMBER)).startswith("Too many codes")
    assert len(verify.calls("start")) == 1


async def test_forget_does_not_lift_the_chats_limits(
    tg: FakeTelegram, verify: FakeVerify, strict: Callable[..., Any]
) -> None:
    await strict()
    chat = Chat(tg, 1001)
    await login(chat, verify)
    question = (await chat.send("/forget"))[0]
    tg.click(question, "Yes, erase everything")
    await tg.wait_for(lambda: tg.messages(chat.id)[-1].text.startswith("Done: everything"))
    await chat.send("/login")
    assert (await chat.say("+44 7400 555666")).startswith("Too many codes")
    assert len(verify.calls("start")) == 1
