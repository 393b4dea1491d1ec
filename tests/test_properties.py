"""Property-based: thousands of random updates (texts, commands, numbers, codes, contacts,
stickers, edits, group messages) in random order across chats, through the real bot.
Whatever arrives: no unhandled error, every private message answered, no Verify call without
a valid number of the sender's own, no login without a completed check."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import VerifiedUser
from bot.demo.sandbox import FakeTelegram, FakeVerify
from bot.login import phone
from bot.telegram.handlers.base import BotApp

CHATS = [3001, 3002, 3003, 3004, 3005, 3006, 3007, 3008]
VALID = ["+44 7400 123123", "+44 7400 555666", "0044 7400 999000", "+1 (201) 555-0123"]
INVALID = ["12345", "+44 7400", "hello", "+999 1234567", "07400 123123", ""]
COMMANDS = [
    "/login",
    "/cancel",
    "/whoami",
    "/status",
    "/logout",
    "/help",
    "/start",
    "/privacy",
    "/users",
    "/frobnicate",
    "/login@LoginTestBot",
]

ACTION = st.one_of(
    st.tuples(st.just("text"), st.sampled_from(VALID + INVALID + COMMANDS)),
    st.tuples(st.just("text"), st.text(max_size=30)),
    st.tuples(st.just("code"), st.sampled_from(["right", "wrong", "junk", "spaced"])),
    st.tuples(st.just("contact"), st.sampled_from(["own", "other", "none"])),
    st.tuples(st.just("media"), st.sampled_from(["sticker", "photo", "location", "voice"])),
    st.tuples(st.just("edit"), st.sampled_from([*VALID, "123456"])),
    st.tuples(st.just("group"), st.sampled_from(["/login", "+44 7400 123123", "/whoami"])),
)
STEP = st.lists(
    st.tuples(st.sampled_from(CHATS), ACTION),
    min_size=1,
    max_size=4,
    unique_by=lambda item: item[0],
)


@dataclass
class Ledger:
    """What the users really did, to judge the bot by."""

    own_numbers: set[str] = field(default_factory=set)  # digits of valid numbers sent as own
    last_text: dict[int, int] = field(default_factory=dict)  # chat -> its last text message
    sent: int = 0


def _send(
    tg: FakeTelegram, verify: FakeVerify, ledger: Ledger, chat: int, action: tuple[str, str]
) -> bool:
    """Perform one action; True if it is a new private message that must be answered."""
    kind, value = action
    if kind == "text":
        ledger.last_text[chat] = tg.send_text(chat, value)
        number = phone.parse(value)
        if number is not None:
            ledger.own_numbers.add(number.digits)
        return True
    if kind == "code":
        code = {
            "right": verify.deliveries[-1].code if verify.deliveries else "123456",
            "wrong": "000000",
            "junk": "12ab",
            "spaced": "123 456",
        }[value]
        ledger.last_text[chat] = tg.send_text(chat, code)
        return True
    if kind == "contact":
        contact_user = {"own": chat, "other": chat + 1, "none": None}[value]
        tg.send_contact(chat, "447400777888", contact_user_id=contact_user)
        if value == "own":
            ledger.own_numbers.add("447400777888")
        return True
    if kind == "media":
        media: dict[str, Callable[[int], int]] = {
            "sticker": tg.send_sticker,
            "photo": tg.send_photo,
            "voice": tg.send_voice,
            "location": tg.send_location,
        }
        media[value](chat)
        return True
    if kind == "edit":
        last = ledger.last_text.get(chat)
        # (The bot deletes a message that carried a right code: that one cannot be edited.)
        if last is not None and last not in tg.deleted(chat):
            tg.edit_text(chat, last, value)
        return False
    tg.send_text(-chat, value, user_id=chat, chat_type="group")
    return False


@pytest.fixture
def ledger() -> Ledger:
    """Shared by every example of one run, like the bot, the fakes and the database."""
    return Ledger()


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING)
    return caplog


# Telegram allows a bot 20 messages a minute to one group, and PTB's rate limiter holds the
# group answers back accordingly: at the end of a run, updates of the busiest group may wait
# up to a minute for their turn, and stopping the bot waits for them.
@pytest.mark.timeout(300)
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=8, max_size=20))
async def test_random_updates_never_break_the_rules(
    tg: FakeTelegram,
    verify: FakeVerify,
    bot: BotApp,
    db: async_sessionmaker[AsyncSession],
    errors: pytest.LogCaptureFixture,
    ledger: Ledger,
    steps: list[list[tuple[int, tuple[str, str]]]],
) -> None:
    for chat in CHATS:
        tg.user(chat, f"U{chat}")
    for step in steps:
        before = {chat: len(tg.messages(chat)) for chat, _ in step}
        must_answer = [chat for chat, action in step if _send(tg, verify, ledger, chat, action)]
        # Every private message gets an answer (a chat left unanswered times out here)...
        await tg.wait_for(
            lambda: all(len(tg.messages(c)) > before[c] for c in must_answer),  # noqa: B023
            10,
            "an answer to every private message",
        )
        # ...and the bot has finished with this step before the next one starts.
        await tg.wait_idle(timeout=20, quiet=0.05)
        ledger.sent += len(step)

    assert ledger.sent >= 5
    unhandled = [r for r in errors.records if r.levelno >= logging.ERROR]
    assert unhandled == [], [r.getMessage() for r in unhandled]
    for call in verify.calls("start"):
        assert call.json_body is not None
        to = call.json_body["workflow"][0]["to"]
        assert to in ledger.own_numbers, to
    completed = {
        v.to
        for v in (verify.verification(d.request_id) for d in verify.deliveries)
        if v.status == "completed"
    }
    async with db() as session:
        logins = (await session.execute(select(VerifiedUser))).scalars().all()
    for login in logins:
        assert login.phone_number.lstrip("+") in completed
