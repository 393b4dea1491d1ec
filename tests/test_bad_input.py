"""Input the bot does not expect at that step: every message gets a clear answer, nothing
reaches Vonage, and the flow stays where it was."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import AuthEvent, VerifiedUser
from bot.demo.sandbox import FakeTelegram, FakeVerify
from bot.telegram.commands import COMMANDS
from tests.helpers import (
    ADMIN_ID,
    NUMBER,
    Chat,
    login,
    saved_flow,
    saved_step,
)


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
        assert await saved_step(db, chat.id) == "number"
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
    flow = await saved_flow(db, chat.id)
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
    assert await saved_step(db, chat.id) == "number"


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
    flow = await saved_flow(db, chat.id)
    assert flow is not None
    assert flow.tries_left == 3


async def test_code_with_spaces_is_accepted(chat: Chat, verify: FakeVerify) -> None:
    await chat.send("/login")
    await chat.number(NUMBER)
    code = verify.last_code()
    spaced = f"{code[:3]} {code[3:]}"
    assert await chat.say(spaced) == "You are logged in as +44 7400 123123."


# -- edited messages: an edit never acts, as a command, a number or a code -------------------

#: every command name the bot knows, as a user would type it
COMMAND_TEXTS = [f"/{name}" for c in COMMANDS for name in c.names]


async def test_editing_a_message_into_any_command_outside_a_flow_does_nothing(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await login(chat, verify)
    hello = tg.send_text(chat.id, "hello")
    assert "/logout" in (await tg.next_reply(chat.id)).text
    for text in [*COMMAND_TEXTS, "/users 1", f"/user {chat.id}", f"/revoke {chat.id}"]:
        tg.edit_text(chat.id, hello, text)
        assert await chat.quiet() == [], text
    # One chat's updates are handled in order: a late answer to an edit would come first.
    assert (await chat.say("/whoami")).startswith("You are logged in as +44 7400 123123 ")
    assert await saved_flow(db, chat.id) is None
    assert len(verify.calls()) == 2  # the login's start and check, nothing since


async def test_an_admin_editing_a_message_into_an_admin_command_gets_nothing(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await login(chat, verify)
    admin = Chat(tg, ADMIN_ID, "Boss", "boss")
    hello = tg.send_text(admin.id, "hello")
    await tg.next_reply(admin.id)
    for text in ["/users", "/user +447400123123", f"/revoke {chat.id}", "/stats", "/help"]:
        tg.edit_text(admin.id, hello, text)
        assert await admin.quiet() == [], text
    # One chat's updates are handled in order: a late answer to an edit would come first.
    assert (await admin.say("/help")).startswith("I log you in")
    async with db() as session:
        assert await session.get(VerifiedUser, chat.id) is not None
        lookups = await session.scalar(
            select(func.count()).select_from(AuthEvent).where(AuthEvent.event == "admin_lookup")
        )
    assert lookups == 0


@pytest.mark.parametrize("step", ["number", "code"])
async def test_editing_a_message_during_a_flow_gets_the_reminder_and_changes_nothing(
    tg: FakeTelegram,
    chat: Chat,
    verify: FakeVerify,
    db: async_sessionmaker[AsyncSession],
    step: str,
) -> None:
    await login(chat, verify)
    hello = tg.send_text(chat.id, "hello")
    await tg.next_reply(chat.id)
    await chat.send("/login")
    reminder = "I am waiting for your phone number (or /cancel to stop)."
    if step == "code":
        await chat.number("+44 7400 555666")
        reminder = "I am waiting for the 6-digit code sent to +44 7400 555666 (or /cancel to stop)."
    before = await saved_flow(db, chat.id)
    calls = len(verify.calls())
    edits = ["/cancel", "/logout", "/login", "/forget", "+44 7400 777888"]
    if step == "code":
        edits.append(verify.last_code())
    for text in edits:
        tg.edit_text(chat.id, hello, text)
        assert (await tg.next_reply(chat.id)).text == reminder, text
    assert await chat.quiet() == []
    after = await saved_flow(db, chat.id)
    assert before is not None
    assert after is not None
    assert (after.step, after.tries_left, after.request_id) == (
        before.step,
        before.tries_left,
        before.request_id,
    )
    assert len(verify.calls()) == calls
    async with db() as session:
        assert await session.get(VerifiedUser, chat.id) is not None


async def test_editing_a_group_message_into_a_command_gets_no_answer(
    tg: FakeTelegram, chat: Chat
) -> None:
    hello = tg.send_text(-100, "hello", user_id=chat.id, chat_type="group")
    for text in ["/login", "/help"]:
        tg.edit_text(-100, hello, text)
        assert await chat.quiet() == [], text
        assert tg.drain(-100) == [], text
    tg.send_text(-100, "/login", user_id=chat.id, chat_type="group")
    assert (await tg.next_reply(-100)).text.startswith("For your privacy")


# -- updates that name no sender (`from` absent) or lack what a button needs ---------------

NO_SENDER = (
    "I cannot tell who sent that, so I cannot act on it. Please write to me from your own "
    "Telegram account."
)


def without(tg: FakeTelegram, send: Callable[[], object], *fields: str) -> None:
    """Do `send`, but deliver its update without the given fields of what it carries (the
    message, the edit or the button press): as Telegram sends a message of an anonymous or
    channel-linked sender, or as a malformed update is."""
    send()
    updates = tg.take_updates()
    for kind in ("message", "edited_message", "callback_query"):
        if kind in updates[-1]:
            carried = updates[-1][kind]
            updates[-1][kind] = {key: value for key, value in carried.items() if key not in fields}
    for update in updates:  # the ones before were fetched, not confirmed yet: as they were
        tg.send_update(update)


def no_error_logged(caplog: pytest.LogCaptureFixture) -> bool:
    return not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_message_without_a_sender_outside_a_flow_is_answered_and_changes_nothing(
    tg: FakeTelegram,
    chat: Chat,
    verify: FakeVerify,
    db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await login(chat, verify)
    for text in ["hello", "/login", "/logout", "/whoami", "/cancel", "/forget", "/users"]:
        without(tg, functools.partial(tg.send_text, chat.id, text), "from")
        assert (await tg.next_reply(chat.id)).text == NO_SENDER, text
    without(tg, lambda: tg.send_sticker(chat.id), "from")
    assert (await tg.next_reply(chat.id)).text == NO_SENDER
    assert await chat.quiet() == []
    assert no_error_logged(caplog)
    assert await saved_flow(db, chat.id) is None
    async with db() as session:
        assert await session.get(VerifiedUser, chat.id) is not None
    assert len(verify.calls()) == 2


async def test_a_message_without_a_sender_while_a_number_is_awaited_starts_nothing(
    tg: FakeTelegram,
    chat: Chat,
    verify: FakeVerify,
    db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await chat.send("/login")
    sends: list[Callable[[], object]] = [
        lambda: tg.send_text(chat.id, NUMBER),
        lambda: tg.send_contact(chat.id, "447400123123"),
        lambda: tg.send_text(chat.id, "/cancel"),
        lambda: tg.send_text(chat.id, "/login"),
        lambda: tg.send_photo(chat.id),
    ]
    for send in sends:
        without(tg, send, "from")
        assert (await tg.next_reply(chat.id)).text == NO_SENDER
        assert await saved_step(db, chat.id) == "number"
    assert await chat.quiet() == []
    assert no_error_logged(caplog)
    assert verify.calls() == []


async def test_a_code_or_a_button_without_a_sender_uses_no_try_and_sends_nothing(
    tg: FakeTelegram,
    chat: Chat,
    verify: FakeVerify,
    db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await chat.send("/login")
    tg.send_text(chat.id, NUMBER)
    (buttons,) = await tg.wait_for_messages(chat.id, 1)
    code = verify.last_code()
    for text in [code, "/cancel", "/login"]:
        without(tg, functools.partial(tg.send_text, chat.id, text), "from")
        assert (await tg.next_reply(chat.id)).text == NO_SENDER, text
    without(tg, lambda: tg.click(buttons, "Send a new code"), "from")
    await tg.wait_for(lambda: len(tg.callback_answers) == 1)
    # An edit without a sender changes nothing either (and, like other edits, is not acted on).
    without(tg, lambda: tg.edit_text(chat.id, 1, code), "from")
    assert await chat.quiet() == []
    assert no_error_logged(caplog)
    flow = await saved_flow(db, chat.id)
    assert flow is not None
    assert (flow.step, flow.tries_left) == ("code", 3)
    assert [call.kind for call in verify.calls()] == ["start"]
    assert await chat.say(code) == "You are logged in as +44 7400 123123."


async def test_a_button_press_without_a_sender_or_a_message_is_answered_and_does_nothing(
    tg: FakeTelegram,
    chat: Chat,
    verify: FakeVerify,
    db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await login(chat, verify)
    question = (await chat.send("/forget"))[0]
    without(tg, lambda: tg.click(question, "Yes, erase everything"), "from")
    await tg.wait_for(lambda: len(tg.callback_answers) == 1)
    without(tg, lambda: tg.click(question, "Yes, erase everything"), "message")
    await tg.wait_for(lambda: len(tg.callback_answers) == 2)
    assert await chat.quiet() == []
    assert no_error_logged(caplog)
    async with db() as session:
        assert await session.get(VerifiedUser, chat.id) is not None
