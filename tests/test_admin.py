"""Admin commands in Telegram: only for BOT_ADMIN_IDS, only in private, paginated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import VerifiedUser
from bot.demo.sandbox import FakeTelegram, FakeVerify
from tests.helpers import ADMIN_ID, Chat, login


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


async def test_users_is_refused_to_non_admins_without_revealing_anything(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify
) -> None:
    await login(chat, verify)
    text = await chat.say("/users")
    assert text == "Sorry, I don't know that command. /help lists what I can do."
    assert "+44" not in text


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
