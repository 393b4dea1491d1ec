"""Admin commands in Telegram: only for BOT_ADMIN_IDS, only in private, paginated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import AuthEvent, VerifiedUser
from bot.demo.sandbox import FakeTelegram, FakeVerify, SentMessage
from tests.helpers import ADMIN_ID, NUMBER, Chat, Clock, login


async def _add_users(db: async_sessionmaker[AsyncSession], count: int) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    async with db.begin() as session:
        for i in range(count):
            session.add(
                VerifiedUser(
                    chat_id=5000 + i,
                    user_id=5000 + i,
                    phone_number=f"+4474001{i:05d}",
                    username=f"user{i}",
                    full_name=f"User {i}",
                    verified_at=base + timedelta(minutes=i),
                )
            )


async def test_users_lists_verified_users_for_admins(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify
) -> None:
    await login(chat, verify)
    admin = Chat(tg, ADMIN_ID, "Boss", "boss")
    text = await admin.say("/users")
    assert text.startswith("Verified users (1), page 1 of 1:")
    assert f"+44 7400 123123 · chat {chat.id} · Ada (@ada) · " in text


async def test_users_in_a_group_points_to_the_private_chat(
    tg: FakeTelegram, bot: object, verify: FakeVerify
) -> None:
    tg.user(ADMIN_ID, "Boss")
    tg.send_text(-100, "/users", user_id=ADMIN_ID, chat_type="group")
    answer = await tg.next_reply(-100)
    assert answer.text.startswith("For your privacy")
    assert "https://t.me/LoginTestBot" in answer.text


async def test_users_pages_with_buttons_newest_first(
    tg: FakeTelegram, bot: object, db: async_sessionmaker[AsyncSession]
) -> None:
    await _add_users(db, 23)
    admin = Chat(tg, ADMIN_ID, "Boss")
    first = (await admin.send("/users"))[0]
    assert first.text.startswith("Verified users (23), page 1 of 3:")
    lines = first.text.splitlines()[1:]
    assert len(lines) == 10
    assert lines[0].startswith("+44 7400 100022 ")  # the newest
    assert [text for text, _ in first.inline_buttons] == ["Next »"]

    tg.click(first, "Next »")
    await tg.wait_for(
        lambda: tg.messages(ADMIN_ID)[-1].text.startswith("Verified users (23), page 2")
    )
    second = tg.messages(ADMIN_ID)[-1]
    assert [text for text, _ in second.inline_buttons] == ["« Previous", "Next »"]

    last = await admin.say("/users 3")
    assert last.startswith("Verified users (23), page 3 of 3:")
    assert len(last.splitlines()) == 1 + 3
    beyond = await admin.say("/users 99")
    assert beyond.startswith("Verified users (23), page 3 of 3:")


async def test_users_with_nobody_logged_in(tg: FakeTelegram, bot: object) -> None:
    admin = Chat(tg, ADMIN_ID, "Boss")
    assert await admin.say("/users") == "No verified users yet."


async def _answer(chat: Chat, text: str) -> list[tuple[str, object]]:
    """Everything the bot says back to one message: texts and keyboards."""
    first = await chat.send(text)
    return [(m.text, m.reply_markup) for m in first + await chat.quiet()]


async def _admin_events(db: async_sessionmaker[AsyncSession]) -> list[AuthEvent]:
    async with db() as session:
        query = (
            select(AuthEvent)
            .where(AuthEvent.event.in_(["admin_lookup", "revoked"]))
            .order_by(AuthEvent.id)
        )
        return list((await session.execute(query)).scalars().all())


async def _press(tg: FakeTelegram, question: SentMessage, button: str) -> str:
    """Press a button under a question; returns the text the question is edited into."""
    asked = question.text
    tg.click(question, button)
    await tg.wait_for(lambda: question.text != asked)
    return question.text


async def test_admin_commands_get_non_admins_exactly_the_answer_of_an_unknown_command(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    commands = ("/users", "/users 2", f"/user {NUMBER}", f"/revoke {chat.id}", "/stats")

    async def same_as_unknown(state: str) -> None:
        unknown = await _answer(chat, "/nosuchcommand")
        for command in commands:
            assert await _answer(chat, command) == unknown, (state, command)

    await same_as_unknown("not logged in")
    await chat.send("/login")
    await same_as_unknown("waiting for the number")
    await chat.number(NUMBER)
    await same_as_unknown("waiting for the code")
    await chat.say(verify.last_code())
    await same_as_unknown("logged in")

    # In a group an unknown command gets no answer at all; so do admin commands.
    for command in (*commands, "/nosuchcommand"):
        tg.send_text(-100, command, user_id=chat.id, chat_type="group")
    await chat.quiet()
    assert tg.messages(-100) == []
    assert await _admin_events(db) == []
    async with db() as session:
        assert await session.get(VerifiedUser, chat.id) is not None


async def test_every_revoke_confirmation_is_an_audited_lookup(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await login(chat, verify)
    admin = Chat(tg, ADMIN_ID, "Boss")
    by_chat = (await admin.send(f"/revoke {chat.id}"))[0]
    assert "+44 7400 123123" in by_chat.text  # the number, seen without knowing it
    tg.click(by_chat, "No")
    await tg.wait_for(lambda: tg.messages(ADMIN_ID)[-1].text == "Nothing was revoked.")
    by_number = (await admin.send(f"/revoke {NUMBER}"))[0]
    assert f"chat {chat.id}" in by_number.text  # the chat, seen from the number
    events = await _admin_events(db)
    assert [(e.event, e.chat_id, e.number_masked) for e in events] == [
        ("admin_lookup", chat.id, "+44******123"),
        ("admin_lookup", chat.id, "+44******123"),
    ]
    assert all(e.detail and e.detail.startswith(f"by admin {ADMIN_ID}: revoke") for e in events)


async def test_a_revoke_button_revokes_nothing_once_the_chat_holds_another_login(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await login(chat, verify)
    admin = Chat(tg, ADMIN_ID, "Boss")
    question = (await admin.send(f"/revoke {chat.id}"))[0]
    assert question.text.startswith("End the login of +44 7400 123123")
    await chat.say("/logout")
    await login(chat, verify, "+44 7400 999888")

    answer = await _press(tg, question, "Yes, revoke")
    assert answer.startswith("Nothing was revoked: that login has changed")
    assert "999" not in answer
    async with db() as session:
        current = await session.get(VerifiedUser, chat.id)
    assert current is not None
    assert current.phone_number == "+447400999888"
    assert [e.event for e in await _admin_events(db)] == ["admin_lookup"]


async def test_a_revoke_button_expires_after_ten_minutes(
    tg: FakeTelegram,
    chat: Chat,
    verify: FakeVerify,
    db: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    await login(chat, verify)
    admin = Chat(tg, ADMIN_ID, "Boss")
    question = (await admin.send(f"/revoke {chat.id}"))[0]
    clock.advance(10 * 60 + 1)
    answer = await _press(tg, question, "Yes, revoke")
    assert answer.startswith("Nothing was revoked: this confirmation is more than 10 minutes")
    async with db() as session:
        assert await session.get(VerifiedUser, chat.id) is not None

    # A fresh confirmation, pressed in time, still works.
    question = (await admin.send(f"/revoke {chat.id}"))[0]
    clock.advance(10 * 60 - 1)
    assert (await _press(tg, question, "Yes, revoke")).startswith("Revoked: +44 7400 123123")
    async with db() as session:
        assert await session.get(VerifiedUser, chat.id) is None
