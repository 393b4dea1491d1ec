"""The buttons under "code sent": a new code once the cooldown is over, a voice call instead,
and a clear way on when the new code cannot be sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.demo.sandbox import FakeTelegram, FakeVerify
from tests.helpers import (
    NUMBER,
    Chat,
    Clock,
    saved_step,
)


async def test_new_code_button_waits_for_the_cooldown_then_replaces_the_code(
    tg: FakeTelegram, verify: FakeVerify, strict: Callable[..., Any], clock: Clock
) -> None:
    await strict()
    chat = Chat(tg, 1001)
    await chat.send("/login")
    tg.send_text(chat.id, NUMBER)
    (buttons,) = await tg.wait_for_messages(chat.id, 1)
    assert "code is on its way" in buttons.text
    assert "No code? In 60 s you can ask for a new one, or for a call" in buttons.text
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
    (buttons,) = await tg.wait_for_messages(chat.id, 1)
    tg.click(buttons, "Call me instead")
    assert (await tg.next_reply(chat.id)).text == "You will get a call with your code shortly."
    assert len(verify.calls("next")) == 1
    delivery = verify.last_delivery()
    assert delivery is not None
    assert delivery.channel == "voice"
    tg.click(buttons, "Call me instead")
    assert (await tg.next_reply(chat.id)).text.startswith("A call is not available")
    assert await chat.say(verify.last_code()) == "You are logged in as +44 7400 123123."


async def test_failed_new_code_says_to_send_the_number_again(
    tg: FakeTelegram, chat: Chat, verify: FakeVerify, db: async_sessionmaker[AsyncSession]
) -> None:
    await chat.send("/login")
    tg.send_text(chat.id, NUMBER)
    (buttons,) = await tg.wait_for_messages(chat.id, 1)
    verify.fail_next(500, path_kind="start")
    tg.click(buttons, "Send a new code")
    failed, again = await tg.wait_for_messages(chat.id, 2)
    assert failed.text.startswith("Sorry, I cannot send codes right now.")
    assert again.text == (
        "The earlier code no longer works: send your number again to get a new one."
    )
    assert await saved_step(db, chat.id) == "number"
    assert "code is on its way" in await chat.number(NUMBER)
