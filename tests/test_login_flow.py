"""The login conversation end to end: real Application, real Vonage SDK, real database;
only Telegram's and Vonage's servers are the wire-level fakes."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import LoginFlow, VerifiedUser
from bot.demo.sandbox import FakeTelegram, FakeVerify
from tests.helpers import ADMIN_ID, Chat, login, saved_flow


async def test_whole_login_stores_number_and_deletes_the_code_message(
    chat: Chat, tg: FakeTelegram, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    ask = (await chat.send("/login"))[0]
    assert "phone number" in ask.text
    assert ask.requests_contact

    sent = await chat.number("+44 7400 123123")
    assert "code is on its way to +44 7400 123123" in sent

    start = verify.calls("start")[0]
    assert start.json_body is not None
    assert start.json_body["workflow"] == [
        {"channel": "sms", "to": "447400123123"},
        {"channel": "voice", "to": "447400123123"},
    ]
    assert start.json_body["code_length"] == 6

    code = verify.last_code("447400123123")
    code_message_id = tg.send_text(chat.id, code)
    done = await tg.next_reply(chat.id)
    assert done.text == "You are logged in as +44 7400 123123."
    assert code_message_id in tg.deleted(chat.id)

    async with db() as session:
        user = (await session.execute(select(VerifiedUser))).scalar_one()
        assert (user.chat_id, user.user_id, user.phone_number) == (
            chat.id,
            chat.id,
            "+447400123123",
        )
        assert (await session.execute(select(LoginFlow))).first() is None


async def test_a_whole_login_is_three_messages_with_the_buttons_under_the_code_sent_one(
    chat: Chat, tg: FakeTelegram, verify: FakeVerify
) -> None:
    assert (await chat.send("/login"))[0].requests_contact
    tg.send_text(chat.id, "+44 7400 123123")
    sent = await tg.next_reply(chat.id)
    assert "code is on its way to +44 7400 123123" in sent.text
    assert sent.text.endswith(
        "\n\nNo code? You can ask for a new one, or for a call with the buttons below."
    )
    assert [text for text, _ in sent.inline_buttons] == ["Send a new code", "Call me instead"]
    assert await chat.quiet() == []  # nothing follows it

    assert await chat.say(verify.last_code()) == "You are logged in as +44 7400 123123."
    # The share-contact keyboard went with the answer to the code.
    assert tg.current_keyboard(chat.id) is None
    assert len(tg.messages(chat.id)) == 3
    edits = [c for c in tg.calls if c.method.startswith("editMessage")]
    assert edits == []


async def test_the_first_answer_after_the_number_takes_the_share_contact_keyboard_away(
    chat: Chat, tg: FakeTelegram, verify: FakeVerify
) -> None:
    await chat.send("/login")
    assert tg.current_keyboard(chat.id) is not None
    await chat.number("+44 7400 123123")
    right = verify.last_code()
    assert await chat.say("000000" if right != "000000" else "111111") == (
        "That code is not right. 2 tries left."
    )
    assert tg.current_keyboard(chat.id) is None


async def _login_row(db: async_sessionmaker[AsyncSession], chat_id: int) -> VerifiedUser | None:
    async with db() as session:
        return await session.get(VerifiedUser, chat_id)


@pytest.mark.parametrize(
    ("typed", "digits"),
    [
        ("+44 7400 123123", "447400123123"),
        ("0044 7400 123123", "447400123123"),
        ("+1 (201) 555-0123", "12015550123"),
        ("+49 151 23456789", "4915123456789"),
    ],
)
async def test_common_number_forms_are_normalised_to_e164(
    chat: Chat, verify: FakeVerify, typed: str, digits: str
) -> None:
    await chat.send("/login")
    answer = await chat.number(typed)
    assert "code is on its way" in answer
    assert verify.calls("start")[-1].json_body["workflow"][0]["to"] == digits


@pytest.mark.parametrize(
    "bad",
    ["12345", "hello", "+44 7400", "07400 123123", "+999 123456789", "+49 30 1234567890123"],
)
async def test_invalid_number_is_answered_and_the_bot_keeps_waiting(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession], bad: str
) -> None:
    await chat.send("/login")
    answer = await chat.say(bad)
    assert "does not look like a valid phone number" in answer
    assert verify.calls() == []
    flow = await saved_flow(db, chat.id)
    assert flow is not None
    assert flow.step == "number"
    assert "code is on its way" in await chat.number("+44 7400 123123")


async def test_own_shared_contact_starts_a_verification(chat: Chat, verify: FakeVerify) -> None:
    await chat.send("/login")
    answer = await chat.contact("447400123123")
    assert "code is on its way to +44 7400 123123" in answer
    assert verify.calls("start")[0].json_body["workflow"][0]["to"] == "447400123123"


async def test_wrong_code_keeps_waiting_and_counts_down(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    await chat.number("+44 7400 123123")
    right = verify.last_code()
    wrong = "000000" if right != "000000" else "111111"
    assert await chat.say(wrong) == "That code is not right. 2 tries left."
    flow = await saved_flow(db, chat.id)
    assert flow is not None
    assert (flow.step, flow.tries_left) == ("code", 2)
    assert await chat.say(wrong) == "That code is not right. 1 try left."
    assert await chat.say(right) == "You are logged in as +44 7400 123123."
    assert await _login_row(db, chat.id) is not None


async def test_vonage_ending_the_request_410_ends_the_flow_and_login_restarts_cleanly(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    await chat.number("+44 7400 123123")
    verify.fail_next(410, path_kind="check")
    answer = await chat.say("123456")
    assert "Too many wrong codes" in answer
    assert "/login" in answer
    assert await saved_flow(db, chat.id) is None
    assert "phone number" in (await chat.send("/login"))[0].text
    assert "code is on its way" in await chat.number("+44 7400 123123")
    assert await chat.say(verify.last_code()) == "You are logged in as +44 7400 123123."


async def test_request_unknown_to_vonage_404_ends_the_flow_saying_it_expired(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    await chat.number("+44 7400 123123")
    verify.expire(verify.active_requests()[0].request_id)
    answer = await chat.say(verify.last_code())
    assert answer == "That code has expired. Send /login to get a new one."
    assert await saved_flow(db, chat.id) is None
    assert await _login_row(db, chat.id) is None


async def test_cancel_while_waiting_for_code_cancels_the_verify_request(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    await chat.number("+44 7400 123123")
    request_id = verify.active_requests()[0].request_id
    assert await chat.say("/cancel") == "Login cancelled."
    assert [c.path for c in verify.calls("cancel")] == [f"/v2/verify/{request_id}"]
    assert verify.active_requests() == []
    assert await saved_flow(db, chat.id) is None
    # The cancelled code no longer logs anyone in: the chat is outside any flow now.
    assert "/login" in await chat.say(verify.last_code())
    assert await _login_row(db, chat.id) is None


async def test_cancel_while_waiting_for_number_ends_the_flow(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    assert await chat.say("/cancel") == "Login cancelled."
    assert await saved_flow(db, chat.id) is None
    assert verify.calls() == []
    assert await chat.say("/cancel") == "There is no login in progress."


async def test_whoami_and_logout(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    assert await chat.say("/whoami") == "You are not logged in. Send /login to start."
    await login(chat, verify)
    assert (await chat.say("/status")).startswith("You are logged in as +44 7400 123123 (since ")
    assert await chat.say("/logout") == (
        "You are logged out. +44 7400 123123 is no longer linked to this chat."
    )
    assert await _login_row(db, chat.id) is None
    assert await chat.say("/whoami") == "You are not logged in. Send /login to start."
    assert await chat.say("/logout") == "You are not logged in. Send /login to start."


async def test_start_and_help_list_the_commands(chat: Chat) -> None:
    for command in ("/start", "/help"):
        text = await chat.say(command)
        for listed in ("/login", "/logout", "/whoami", "/cancel"):
            assert listed in text
        assert "/users" not in text


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ((422, "start"), "I could not send a code to that number."),
        ((429, "start"), "Too many codes are being sent right now."),
        ((500, "start"), "Sorry, I cannot send codes right now."),
        ((503, "start"), "Sorry, I cannot send codes right now."),
        ((409, "start"), "Another login is waiting for a code sent to that number."),
    ],
)
async def test_verify_start_errors_get_plain_answers_and_the_bot_keeps_going(
    chat: Chat,
    verify: FakeVerify,
    db: async_sessionmaker[AsyncSession],
    fault: tuple[int, str],
    expected: str,
) -> None:
    await chat.send("/login")
    status, kind = fault
    verify.fail_next(status, path_kind=kind)  # type: ignore[arg-type]
    answer = await chat.say("+44 7400 123123")
    assert answer.startswith(expected)
    for leak in ("http", "HTTP", "vonage", "Traceback", str(status)):
        assert leak not in answer
    flow = await saved_flow(db, chat.id)
    assert flow is not None
    assert flow.step == "number"
    # The same chat can go on at once (which failures count against the limits:
    # tests/test_paid_messages.py).
    assert "code is on its way" in await chat.number("+44 7400 123123")


async def test_verify_network_failure_and_timeout_get_plain_answers(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    verify.drop_next(path_kind="start")
    assert (await chat.say("+44 7400 123123")).startswith("Sorry, I cannot send codes right now.")
    verify.hang_next(6, path_kind="start")  # the client gives up after 3 s
    assert (await chat.say("+44 7400 123123")).startswith("Sorry, I cannot send codes right now.")
    flow = await saved_flow(db, chat.id)
    assert flow is not None
    assert flow.step == "number"


async def test_verify_trouble_while_checking_keeps_the_code_step_and_its_tries(
    chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    await chat.number("+44 7400 123123")
    verify.fail_next(500, path_kind="check")
    assert await chat.say(verify.last_code()) == (
        "Sorry, I could not check the code just now. Please send it again."
    )
    flow = await saved_flow(db, chat.id)
    assert flow is not None
    assert (flow.step, flow.tries_left) == ("code", 3)
    assert await chat.say(verify.last_code()) == "You are logged in as +44 7400 123123."


async def test_bad_credentials_tell_users_unavailable_and_admins_once(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify
) -> None:
    tg.user(ADMIN_ID, "Admin")
    verify.fail_next(401, path_kind="start", times=2)
    await chat.send("/login")
    assert (await chat.say("+44 7400 123123")).startswith("Sorry, I cannot send codes right now.")
    assert (await chat.say("+44 7400 123123")).startswith("Sorry, I cannot send codes right now.")
    await chat.quiet()
    alerts = tg.messages(ADMIN_ID)
    assert len(alerts) == 1
    assert "HTTP 401" in alerts[0].text
