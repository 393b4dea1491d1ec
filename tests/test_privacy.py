"""What the bot keeps and where it talks: /privacy says what is stored, /forget erases it after
confirmation, and in groups it only points to the private chat."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import VerificationStart, VerifiedUser
from bot.demo.sandbox import FakeTelegram, FakeVerify
from bot.telegram.handlers.base import BotApp
from tests.helpers import (
    NUMBER,
    Chat,
    login,
    saved_flow,
)


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
    assert await saved_flow(db, -500) is None
    assert await saved_flow(db, 1001) is None
