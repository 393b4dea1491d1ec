"""/login again, during a login or after one: it starts over cleanly (the pending request is
cancelled) or changes the stored number."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import VerifiedUser
from bot.demo.sandbox import FakeVerify
from tests.helpers import (
    NUMBER,
    Chat,
    login,
    saved_step,
)


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
    assert await saved_step(db, chat.id) == "number"
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
