"""Bad input, abuse and faults: every message gets a sensible answer, nothing costs money it
should not, and the flow's state only changes when it should."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
import requests
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import AuthEvent, LoginFlow, VerificationStart, VerifiedUser
from bot.demo.sandbox import FakeTelegram, FakeVerify
from bot.telegram.handlers.base import BotApp
from tests.conftest import ADMIN_ID, VONAGE_KEY, VONAGE_SECRET, Chat, Clock, login, stop_bot

NUMBER = "+44 7400 123123"


async def _flow(db: async_sessionmaker[AsyncSession], chat_id: int) -> LoginFlow | None:
    async with db() as session:
        return await session.get(LoginFlow, chat_id)


async def _step(db: async_sessionmaker[AsyncSession], chat_id: int) -> str | None:
    flow = await _flow(db, chat_id)
    return flow.step if flow else None


# ---- input ------------------------------------------------------------------------------


async def test_anything_but_a_number_while_waiting_for_one_gets_a_reminder(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    first = await chat.send("/login")
    sends: list[Callable[[], Any]] = [
        lambda: tg.send_sticker(chat.id),
        lambda: tg.send_photo(chat.id),
        lambda: tg.send_voice(chat.id),
        lambda: tg.send_location(chat.id),
        lambda: tg.edit_text(chat.id, 1, "+44 7400 123123"),
        lambda: tg.send_text(chat.id, "/frobnicate"),
    ]
    assert first
    for send in sends:
        send()
        answer = await tg.next_reply(chat.id)
        assert answer.text == "I am waiting for your phone number (or /cancel to stop)."
        assert await _step(db, chat.id) == "number"
    assert verify.calls() == []


async def test_anything_but_a_code_while_waiting_for_one_gets_a_reminder(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    await chat.number(NUMBER)
    sends: list[Callable[[], Any]] = [
        lambda: tg.send_sticker(chat.id),
        lambda: tg.send_photo(chat.id),
        lambda: tg.send_text(chat.id, "/frobnicate"),
        lambda: tg.send_contact(chat.id, "447400123123"),
    ]
    for send in sends:
        send()
        answer = await tg.next_reply(chat.id)
        assert answer.text == (
            "I am waiting for the 6-digit code sent to +44 7400 123123 (or /cancel to stop)."
        )
    flow = await _flow(db, chat.id)
    assert flow is not None
    assert (flow.step, flow.tries_left) == ("code", 3)
    assert verify.calls("check") == []


async def test_private_message_outside_a_flow_points_to_login_or_to_logout(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify
) -> None:
    assert await chat.say("hello") == (
        "Send /login to log in with your phone number, or /help to see what I can do."
    )
    tg.send_sticker(chat.id)
    assert "/login" in (await tg.next_reply(chat.id)).text
    await login(chat, verify)
    answer = await chat.say("hello again")
    assert "/logout" in answer
    assert "/whoami" in answer
    assert verify.calls("start").__len__() == 1


@pytest.mark.parametrize("contact_user_id", [2002, None])
async def test_someone_elses_contact_is_refused_and_starts_nothing(
    tg: FakeTelegram,
    chat: Chat,
    verify: FakeVerify,
    db: async_sessionmaker[AsyncSession],
    contact_user_id: int | None,
) -> None:
    await chat.send("/login")
    tg.send_contact(chat.id, "447400123123", contact_user_id=contact_user_id)
    answer = await tg.next_reply(chat.id)
    assert answer.text.startswith("Please share your own number")
    assert verify.calls() == []
    assert await _step(db, chat.id) == "number"


async def test_forwarded_contact_is_refused(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify
) -> None:
    await chat.send("/login")
    tg.send_contact(chat.id, "447400123123", contact_user_id=2002, forward_from=2002)
    assert (await tg.next_reply(chat.id)).text.startswith("Please share your own number")
    assert verify.calls() == []


@pytest.mark.parametrize("bad_code", ["12", "abcdef", "12345678901", "12 34 5x", "１２３４５６"])
async def test_malformed_code_is_answered_locally_and_uses_no_try(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession], bad_code: str
) -> None:
    await chat.send("/login")
    await chat.number(NUMBER)
    assert await chat.say(bad_code) == (
        "The code is 6 digits, such as 123456. Please send just the digits."
    )
    assert verify.calls("check") == []
    flow = await _flow(db, chat.id)
    assert flow is not None
    assert flow.tries_left == 3


async def test_code_with_spaces_is_accepted(chat: Chat, verify: FakeVerify) -> None:
    await chat.send("/login")
    await chat.number(NUMBER)
    code = verify.last_code()
    spaced = f"{code[:3]} {code[3:]}"
    assert await chat.say(spaced) == "You are logged in as +44 7400 123123."


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
    assert await _flow(db, -500) is None
    assert await _flow(db, 1001) is None


async def test_login_during_a_flow_restarts_it_and_cancels_the_pending_request(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    await chat.number(NUMBER)
    first_request = verify.active_requests()[0].request_id
    restarted, ask = await chat.send("/login", replies=2)
    assert restarted.text == "Starting over: the earlier code will no longer work."
    assert "phone number" in ask.text
    assert [c.path for c in verify.calls("cancel")] == [f"/v2/verify/{first_request}"]
    assert await _step(db, chat.id) == "number"
    await chat.number(NUMBER)
    assert await chat.say(verify.last_code()) == "You are logged in as +44 7400 123123."


async def test_login_while_logged_in_says_the_number_and_can_change_it(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await login(chat, verify)
    ask = await chat.say("/login")
    assert ask.startswith("You are logged in as +44 7400 123123. To change it")
    assert (
        await chat.say(NUMBER) == "You are already logged in as +44 7400 123123. Nothing changed."
    )
    await chat.send("/login")
    await chat.number("+44 7400 999888")
    assert await chat.say(verify.last_code()) == "You are logged in as +44 7400 999888."
    async with db() as session:
        user = await session.get(VerifiedUser, chat.id)
    assert user is not None
    assert user.phone_number == "+447400999888"


# ---- limits -----------------------------------------------------------------------------


@pytest.fixture
def strict(start_bot: Callable[..., Any]) -> Callable[..., Any]:
    """Start the bot with the default limits (the other tests relax them)."""

    async def start(**overrides: Any) -> BotApp:
        values: dict[str, Any] = {
            "limit_cooldown_seconds": 60,
            "limit_starts_per_hour": 5,
            "limit_starts_per_day": 10,
        }
        values.update(overrides)
        application: BotApp = await start_bot(**values)
        return application

    return start


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


async def _numbers_at_once(chats: list[Chat], numbers: list[str]) -> list[str]:
    """Every chat (waiting for its number) sends one at the same moment, so the bot gets
    them in one batch of updates; returns each chat's first answer."""
    for chat, number in zip(chats, numbers, strict=True):
        chat.tg.send_text(chat.id, number)
    return [(await chat.tg.wait_for_messages(chat.id, 1, timeout=10))[0].text for chat in chats]


async def test_numbers_arriving_together_still_respect_the_global_limit(
    tg: FakeTelegram, verify: FakeVerify, strict: Callable[..., Any]
) -> None:
    await strict(limit_global_starts_per_hour=3)
    tg.user(ADMIN_ID, "Admin")
    chats = [Chat(tg, 1001 + i, f"User{i}", None) for i in range(6)]
    for chat in chats:
        await chat.send("/login")
    answers = await _numbers_at_once(chats, [f"+44 7400 30000{i}" for i in range(6)])
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
    answers = await _numbers_at_once([ada, bob], [NUMBER, NUMBER])
    assert sorted(answer[:30] for answer in answers) == [
        "A 6-digit code is on its way t",
        "Too many codes were asked for ",
    ], answers
    await tg.wait_idle()
    assert len(verify.calls("start")) == 1


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
    answers = await _numbers_at_once(chats, numbers)
    assert all("code is on its way" in answer for answer in answers), answers
    for chat in chats:  # the message with the buttons follows each
        await tg.wait_for_messages(chat.id, 1)
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


@pytest.mark.parametrize(
    ("setting", "number", "expected"),
    [
        ({"allowed_country_codes": "44,49"}, "+1 201 555 0123", "in that country"),
        ({"denied_country_codes": "1"}, "+1 201 555 0123", "in that country"),
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
    assert await _step(db, chat.id) == "number"
    async with db() as session:
        assert (await session.execute(select(VerificationStart))).first() is None


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


# ---- resend and call ------------------------------------------------------------------------


async def test_new_code_button_waits_for_the_cooldown_then_replaces_the_code(
    tg: FakeTelegram, verify: FakeVerify, strict: Callable[..., Any], clock: Clock
) -> None:
    await strict()
    chat = Chat(tg, 1001)
    await chat.send("/login")
    tg.send_text(chat.id, NUMBER)
    _, buttons = await tg.wait_for_messages(chat.id, 2)
    assert buttons.text.startswith("No code? In 60 s you can ask for a new one, or for a call")
    old_code = verify.last_code()
    old_request = verify.active_requests()[0].request_id

    tg.click(buttons, "Send a new code")
    await tg.wait_for(lambda: len(tg.callback_answers) == 1)
    assert tg.callback_answers[0].text == "You can ask for a new code in 60 s."
    assert len(verify.calls("start")) == 1

    clock.advance(61)
    tg.click(buttons, "Send a new code")
    resent = await tg.next_reply(chat.id)
    assert resent.text == (
        "A new code is on its way to +44 7400 123123; the earlier one no longer works."
    )
    assert len(verify.calls("start")) == 2
    assert verify.verification(old_request).status == "cancelled"
    new_code = verify.last_code()
    if new_code != old_code:
        assert "/login" in await chat.say(old_code) or "not right" in await chat.say(old_code)
    assert await chat.say(new_code) == "You are logged in as +44 7400 123123."


async def test_call_me_instead_moves_the_request_to_a_voice_call(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify
) -> None:
    await chat.send("/login")
    tg.send_text(chat.id, NUMBER)
    _, buttons = await tg.wait_for_messages(chat.id, 2)
    tg.click(buttons, "Call me instead")
    assert (await tg.next_reply(chat.id)).text == "You will get a call with your code shortly."
    assert len(verify.calls("next")) == 1
    delivery = verify.last_delivery()
    assert delivery is not None
    assert delivery.channel == "voice"
    tg.click(buttons, "Call me instead")
    assert (await tg.next_reply(chat.id)).text.startswith("A call is not available")
    assert await chat.say(verify.last_code()) == "You are logged in as +44 7400 123123."


# ---- expiry -----------------------------------------------------------------------------------


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
    assert await _step(db, chat.id) == "expired"
    assert await chat.say(code) == (
        "Your code expired before it was used. Send /login to get a new one."
    )
    assert verify.calls("check") == []
    assert await _flow(db, chat.id) is None


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


# ---- faults ----------------------------------------------------------------------------------


async def test_user_who_blocked_the_bot_is_dropped_from_the_flow(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    await chat.number(NUMBER)
    tg.block_user(chat.id)
    tg.send_text(chat.id, "hello")
    await tg.wait_idle()
    assert await _flow(db, chat.id) is None
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
    flow = await _flow(db, chat.id)
    assert flow is not None  # the flow was not deleted without the login being saved
    assert flow.step == "code"
    async with db.begin() as session:
        await session.execute(text("ALTER TABLE verified_users_gone RENAME TO verified_users"))
    # The state is consistent: the flow is still there to cancel, and a new login works.
    assert await chat.say("/cancel") == "Login cancelled."
    assert await login(chat, verify) == "You are logged in as +44 7400 123123."


# ---- privacy -----------------------------------------------------------------------------------


async def test_privacy_says_what_is_stored(chat: Chat) -> None:
    answer = await chat.say("/privacy")
    assert "never store or log the codes" in answer
    assert "/forget" in answer


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


async def test_a_burst_from_one_chat_is_handled_in_order(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify
) -> None:
    verify.latency = 0.3
    # /login and the number arrive together: the number must meet the NUMBER step.
    tg.send_text(chat.id, "/login")
    tg.send_text(chat.id, NUMBER)
    tg.send_text(chat.id, "/whoami")
    texts = [m.text for m in await tg.wait_for_messages(chat.id, 4, timeout=10)]
    assert "phone number" in texts[0]
    assert "code is on its way" in texts[1]
    assert texts[2].startswith("No code?")
    assert texts[3] == "You are not logged in yet; a login is in progress. /cancel stops it."
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


async def test_failed_new_code_says_to_send_the_number_again(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    tg.send_text(chat.id, NUMBER)
    _, buttons = await tg.wait_for_messages(chat.id, 2)
    verify.fail_next(500, path_kind="start")
    tg.click(buttons, "Send a new code")
    failed, again = await tg.wait_for_messages(chat.id, 2)
    assert failed.text.startswith("Sorry, I cannot send codes right now.")
    assert again.text == (
        "The earlier code no longer works: send your number again to get a new one."
    )
    assert await _step(db, chat.id) == "number"
    assert "code is on its way" in await chat.number(NUMBER)


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
