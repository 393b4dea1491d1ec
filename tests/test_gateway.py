"""The Telegram Gateway as the first channel (VERIFY_WORKFLOW=telegram,sms,voice), through the
real bot, the stand-in Gateway and Verify servers and a real database: a code delivered in
Telegram logs the user in without any SMS; when Telegram cannot deliver, when the code is not
used in time, or when the user asks, the code comes by SMS instead, within the same login
(counted and paid once at the Gateway), and the Telegram message is revoked."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import AuthEvent, VerificationStart, VerifiedUser
from bot.demo.sandbox import FakeGateway, FakeTelegram, FakeVerify, SentMessage
from bot.telegram.handlers.base import BotApp
from bot.telegram.handlers.login import announce_fallbacks
from tests.helpers import ADMIN_ID, GATEWAY_TOKEN, NUMBER, Chat, Clock, saved_flow

E164 = "+447400123123"
BY_TELEGRAM = "as a Telegram message from \u201cVerification Codes\u201d"
LOGGED_IN = "You are logged in as +44 7400 123123."


@pytest.fixture
async def gw_bot(start_bot: Callable[..., Any], gateway_settings: dict[str, Any]) -> BotApp:
    """The bot with the Gateway first."""
    application: BotApp = await start_bot(**gateway_settings)
    return application


async def _code_sent(chat: Chat, number: str = NUMBER) -> SentMessage:
    await chat.send("/login")
    (sent,) = await chat.send(number)
    return sent


async def _events(db: async_sessionmaker[AsyncSession], event: str) -> list[str | None]:
    async with db() as session:
        rows = await session.execute(
            select(AuthEvent.detail).where(AuthEvent.event == event).order_by(AuthEvent.id)
        )
        return list(rows.scalars())


async def _method(db: async_sessionmaker[AsyncSession], chat_id: int) -> str | None:
    async with db() as session:
        login = await session.get(VerifiedUser, chat_id)
        return login.channel if login else None


async def _starts(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(VerificationStart)) or 0)


async def test_a_telegram_user_logs_in_by_gateway_code_without_any_sms(
    tg: FakeTelegram,
    gateway: FakeGateway,
    verify: FakeVerify,
    gw_bot: BotApp,
    db: async_sessionmaker[AsyncSession],
) -> None:
    chat = Chat(tg, 1001)
    sent = await _code_sent(chat)
    assert BY_TELEGRAM in sent.text
    assert [label for label, _ in sent.inline_buttons] == ["Send a new code", "Send by SMS instead"]
    ability, message = gateway.requests
    assert (ability.method, ability.params) == ("checkSendAbility", {"phone_number": E164})
    assert message.method == "sendVerificationMessage"
    # The ability check's request is reused, so the check is not paid for a second time.
    request_id = gateway.request(gateway.messages[0].request_id).request_id
    assert message.params["request_id"] == request_id
    assert message.params["code_length"] == 6
    assert message.params["ttl"] == 200  # VERIFY_CHANNEL_TIMEOUT: then the SMS
    assert "callback_url" not in message.params  # the bot serves no HTTP here

    assert await chat.say(gateway.last_code(E164)) == LOGGED_IN
    assert verify.requests == []
    assert gateway.paid == 0.01
    assert await _method(db, chat.id) == "telegram_gateway"
    assert (await _events(db, "verified"))[-1] == "telegram_gateway"
    assert "proven by a code in Telegram" in await chat.say("/whoami")


async def test_a_number_telegram_cannot_reach_gets_the_sms_after_the_ability_check(
    tg: FakeTelegram,
    gateway: FakeGateway,
    verify: FakeVerify,
    gw_bot: BotApp,
    db: async_sessionmaker[AsyncSession],
) -> None:
    gateway.cannot_deliver = ("+447400",)
    chat = Chat(tg, 1001)
    sent = await _code_sent(chat)
    assert "by SMS; if it does not arrive, you will get a call" in sent.text
    assert [label for label, _ in sent.inline_buttons] == ["Send a new code", "Call me instead"]
    assert [c.method for c in gateway.requests] == ["checkSendAbility"]
    (start,) = verify.calls("start")
    assert [step["channel"] for step in start.json_body["workflow"]] == ["sms", "voice"]
    assert await chat.say(verify.last_code()) == LOGGED_IN
    assert await _method(db, chat.id) == "sms"
    assert gateway.paid == 0
    # One start, priced as the SMS it became (not as a Telegram code).
    assert await _events(db, "code_sent") == ["start sms"]


async def test_a_telegram_code_not_used_in_time_comes_by_sms_and_stops_working(
    tg: FakeTelegram,
    gateway: FakeGateway,
    verify: FakeVerify,
    gw_bot: BotApp,
    clock: Clock,
    db: async_sessionmaker[AsyncSession],
) -> None:
    chat = Chat(tg, 1001)
    await _code_sent(chat)
    telegram_code = gateway.last_code(E164)
    before = await saved_flow(db, chat.id)
    assert before is not None

    clock.advance(199)
    assert await announce_fallbacks(gw_bot) == 0  # not yet
    clock.advance(2)
    assert await announce_fallbacks(gw_bot) == 1
    told = await tg.next_reply(chat.id)
    assert told.text.startswith("The Telegram code was not used in time, so a new code is on")
    assert "by SMS; if it does not arrive, you will get a call" in told.text
    assert [label for label, _ in told.inline_buttons] == ["Send a new code", "Call me instead"]
    assert len(verify.calls("start")) == 1
    assert gateway.requests[-1].method == "revokeVerificationMessage"
    assert gateway.requests[-1].params == {"request_id": before.request_id}
    assert await announce_fallbacks(gw_bot) == 0  # once

    after = await saved_flow(db, chat.id)
    assert after is not None
    assert after.expires_at == before.expires_at  # one expiry for the whole login
    # The revoked Telegram code is wrong now, and costs a try like any wrong code.
    sms_code = verify.last_code()
    if telegram_code != sms_code:
        assert "2 tries left" in await chat.say(telegram_code)
    assert await chat.say(sms_code) == LOGGED_IN
    assert await _method(db, chat.id) == "sms"
    # The same login: one counted start, one Gateway message paid, then one SMS.
    assert await _starts(db) == 1
    assert gateway.paid == 0.01
    assert await _events(db, "code_sent") == [None, "sms"]


async def test_send_by_sms_instead_sends_the_sms_and_revokes_the_telegram_message(
    tg: FakeTelegram,
    gateway: FakeGateway,
    verify: FakeVerify,
    gw_bot: BotApp,
    db: async_sessionmaker[AsyncSession],
) -> None:
    chat = Chat(tg, 1001)
    sent = await _code_sent(chat)
    request_id = gateway.messages[0].request_id
    tg.click(sent, "Send by SMS instead")
    answer = await tg.next_reply(chat.id)
    assert answer.text.startswith("A new code is on its way to +44 7400 123123 by SMS")
    assert "the Telegram code no longer works" in answer.text
    assert gateway.request(request_id).delivery == "revoked"
    assert len(verify.calls("start")) == 1
    assert await chat.say(verify.last_code()) == LOGGED_IN
    assert await _method(db, chat.id) == "sms"
    assert await _starts(db) == 1

    # The button of a login that is over does nothing more.
    tg.click(sent, "Send by SMS instead")
    await tg.wait_for(lambda: len(tg.callback_answers) == 2)
    assert len(verify.calls("start")) == 1


async def test_a_wrong_gateway_code_counts_like_any_other(
    tg: FakeTelegram,
    gateway: FakeGateway,
    start_bot: Callable[..., Any],
    gateway_settings: dict[str, Any],
    db: async_sessionmaker[AsyncSession],
) -> None:
    # The bot's own count ends the login, before the Gateway's (3) would.
    await start_bot(**gateway_settings, verify_max_attempts=2)
    chat = Chat(tg, 1001)
    await _code_sent(chat)
    request_id = gateway.messages[0].request_id
    wrong = "000000" if gateway.last_code() != "000000" else "111111"
    assert "1 try left" in await chat.say(wrong)
    assert "Too many wrong codes" in await chat.say(wrong)
    assert len(gateway.calls("checkVerificationStatus")) == 2
    assert gateway.requests[-1].method == "revokeVerificationMessage"
    assert gateway.request(request_id).delivery == "revoked"
    assert await saved_flow(db, chat.id) is None
    assert (await _events(db, "code_wrong"))[-2:] == ["1 left", "0 left"]


@pytest.mark.parametrize(
    ("method", "fault"),
    [
        ("checkSendAbility", (500, "INTERNAL_ERROR")),
        ("checkSendAbility", (429, "FLOOD_WAIT_5")),
        ("checkSendAbility", (400, "PHONE_NUMBER_INVALID")),
        ("checkSendAbility", "timeout"),
        ("sendVerificationMessage", (502, "BAD_GATEWAY")),
        ("sendVerificationMessage", "timeout"),
        ("checkSendAbility", "network"),
    ],
)
async def test_every_gateway_failure_at_the_start_falls_back_to_one_sms(
    tg: FakeTelegram,
    gateway: FakeGateway,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    gateway_settings: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    method: str,
    fault: tuple[int, str] | str,
) -> None:
    caplog.set_level(logging.INFO)
    await start_bot(**gateway_settings, vonage_timeout_seconds=1)
    if fault == "network":
        await gateway.stop()  # nothing listens there any more
    elif fault == "timeout":
        gateway.hang_next(3, method=method)
    else:
        assert isinstance(fault, tuple)
        gateway.fail_next(fault[0], fault[1], method=method)
    chat = Chat(tg, 1001)
    sent = await _code_sent(chat)
    assert "by SMS; if it does not arrive, you will get a call" in sent.text
    # Never sent twice: a message whose answer was lost may have gone out, and is paid once.
    assert len(gateway.calls("sendVerificationMessage")) <= 1
    assert len(verify.calls("start")) == 1
    assert await chat.say(verify.last_code()) == LOGGED_IN
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot."))
    assert GATEWAY_TOKEN not in logged
    assert "7400123123" not in logged


async def test_a_refused_token_alerts_the_admins_and_the_user_gets_the_sms(
    tg: FakeTelegram,
    gateway: FakeGateway,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    gateway_settings: dict[str, Any],
) -> None:
    await start_bot(**{**gateway_settings, "telegram_gateway_token": "not-the-token"})
    chat = Chat(tg, 1001)
    admin = Chat(tg, ADMIN_ID, "Boss")
    sent = await _code_sent(chat)
    assert "by SMS" in sent.text
    alert = await tg.next_reply(admin.id)
    assert "TELEGRAM_GATEWAY_TOKEN" in alert.text
    assert gateway.requests[0].status == 401
    assert await chat.say(verify.last_code()) == LOGGED_IN


async def test_a_gateway_check_that_fails_is_answered_and_uses_no_try(
    tg: FakeTelegram, gateway: FakeGateway, gw_bot: BotApp
) -> None:
    chat = Chat(tg, 1001)
    await _code_sent(chat)
    gateway.fail_next(500, method="checkVerificationStatus")
    answer = await chat.say(gateway.last_code())
    assert answer == "Sorry, I could not check the code just now. Please send it again."
    assert await chat.say(gateway.last_code()) == LOGGED_IN


async def test_a_new_login_revokes_the_running_telegram_message(
    tg: FakeTelegram, gateway: FakeGateway, gw_bot: BotApp
) -> None:
    chat = Chat(tg, 1001)
    await _code_sent(chat)
    first = gateway.messages[0]
    await chat.send("/login", replies=2)
    assert gateway.request(first.request_id).delivery == "revoked"


async def test_the_spend_prices_telegram_codes_and_the_smses_after_them(
    tg: FakeTelegram,
    gateway: FakeGateway,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    gateway_settings: dict[str, Any],
    clock: Clock,
) -> None:
    application: BotApp = await start_bot(
        **gateway_settings, price_per_sms="0.07", price_per_gateway_code="0.01"
    )
    gateway.cannot_deliver = ("+1",)
    by_telegram, no_telegram, too_late = Chat(tg, 1001), Chat(tg, 1002), Chat(tg, 1003)
    await _code_sent(by_telegram)
    assert await by_telegram.say(gateway.last_code()) == LOGGED_IN
    await _code_sent(no_telegram, "+1 201 555 0100")
    assert (await no_telegram.say(verify.last_code())).startswith("You are logged in")
    await _code_sent(too_late, "+44 7400 555555")
    clock.advance(201)
    assert await announce_fallbacks(application) == 1
    await tg.next_reply(too_late.id)
    assert (await too_late.say(verify.last_code())).startswith("You are logged in")

    services = application.bot_data.services
    assert services is not None
    stats = await services.admin.stats(1)
    assert (stats.total.starts, stats.total.verified) == (3, 3)
    assert stats.total.sends == {"telegram": 2, "sms": 2}
    assert stats.spend(stats.total) == Decimal("0.16")
    assert gateway.paid == 0.02


async def test_a_fallback_vonage_refuses_keeps_the_telegram_code_and_is_not_retried_at_once(
    tg: FakeTelegram,
    gateway: FakeGateway,
    verify: FakeVerify,
    gw_bot: BotApp,
    clock: Clock,
) -> None:
    chat = Chat(tg, 1001)
    await _code_sent(chat)
    clock.advance(201)
    verify.fail_next(503, path_kind="start")
    assert await announce_fallbacks(gw_bot) == 0
    assert await announce_fallbacks(gw_bot) == 0  # not again on the next sweep
    assert len(verify.calls("start")) == 1
    assert await chat.quiet() == []
    assert await chat.say(gateway.last_code()) == LOGGED_IN


@pytest.mark.parametrize("fault", ["timeout", 502])
async def test_a_gateway_send_that_may_have_gone_out_is_revoked_before_the_one_sms(
    tg: FakeTelegram,
    gateway: FakeGateway,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    gateway_settings: dict[str, Any],
    fault: str | int,
) -> None:
    await start_bot(**gateway_settings, vonage_timeout_seconds=1)
    # Telegram sends the message, but its answer is lost (late, or a 5xx).
    if fault == "timeout":
        gateway.hang_next(3, method="sendVerificationMessage", processed=True)
    else:
        assert isinstance(fault, int)
        gateway.fail_next(fault, method="sendVerificationMessage", processed=True)
    chat = Chat(tg, 1001)
    sent = await _code_sent(chat)
    assert "by SMS; if it does not arrive, you will get a call" in sent.text
    (message,) = gateway.messages
    ability = gateway.calls("checkSendAbility")[0]
    assert gateway.calls("sendVerificationMessage")[0].params["request_id"] == message.request_id
    revokes = gateway.calls("revokeVerificationMessage")
    assert [call.params["request_id"] for call in revokes] == [message.request_id]
    assert gateway.request(message.request_id).delivery == "revoked"
    assert ability.status == 200
    # Exactly one SMS: the code the user can use.
    assert len(verify.calls("start")) == 1
    assert len(verify.deliveries) == 1
    assert await chat.say(verify.last_code()) == LOGGED_IN


async def test_a_refused_gateway_token_alerts_the_admins_even_when_vonage_then_fails(
    tg: FakeTelegram,
    gateway: FakeGateway,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    gateway_settings: dict[str, Any],
) -> None:
    await start_bot(**{**gateway_settings, "telegram_gateway_token": "not-the-token"})
    verify.fail_next(500, path_kind="start")
    chat = Chat(tg, 1001)
    admin = Chat(tg, ADMIN_ID, "Boss")
    sent = await _code_sent(chat)
    assert sent.text.startswith("Sorry, I cannot send codes right now.")
    assert gateway.requests[0].status == 401
    assert len(verify.calls("start")) == 1
    alert = await tg.next_reply(admin.id)
    assert "TELEGRAM_GATEWAY_TOKEN" in alert.text
