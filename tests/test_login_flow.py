"""The login conversation end to end: real Application, real Vonage SDK, real database;
only Telegram's and Vonage's servers are the wire-level fakes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import LoginFlow, VerifiedUser
from bot.sandbox import FakeTelegram, FakeVerify
from tests.conftest import Chat, login


async def test_whole_login_stores_number_and_deletes_the_code_message(
    chat: Chat, tg: FakeTelegram, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    ask = (await chat.send("/login"))[0]
    assert "phone number" in ask.text
    assert ask.requests_contact

    sent = await chat.say("+44 7400 123123")
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
        assert (user.chat_id, user.user_id, user.phone_number) == (chat.id, chat.id, "+447400123123")
        assert (await session.execute(select(LoginFlow))).first() is None
