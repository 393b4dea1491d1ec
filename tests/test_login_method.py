"""How each login proved its number (sms, voice, telegram_contact; telegram_gateway once that
channel is used) is recorded with the login and shown wherever the login is: /whoami, /user,
`users show`, `users list --json` (key `method`) and the audit trail's `verified` event."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import AuthEvent
from bot.demo.sandbox import FakeTelegram, FakeVerify
from tests.helpers import ADMIN_ID, HASH_KEY, Chat, login, run_cli

SMS_NUMBER, CALL_NUMBER, CONTACT_NUMBER = "+447400123123", "+12015550100", "+447400999888"


async def _three_logins(tg: FakeTelegram, verify: FakeVerify) -> tuple[Chat, Chat, Chat]:
    """One login by SMS code, one by a code read out in a call, one by the own contact."""
    by_sms, by_call, by_contact = Chat(tg, 1001), Chat(tg, 1002, "Bo"), Chat(tg, 1003, "Cy")
    await login(by_sms, verify, SMS_NUMBER)
    await by_call.send("/login")
    tg.send_text(by_call.id, CALL_NUMBER)
    (buttons,) = await tg.wait_for_messages(by_call.id, 1)
    tg.click(buttons, "Call me instead")
    await tg.next_reply(by_call.id)
    assert (await by_call.say(verify.last_code())).startswith("You are logged in")
    await by_contact.send("/login")
    assert (await by_contact.contact(CONTACT_NUMBER[1:])).startswith("You are logged in")
    return by_sms, by_call, by_contact


async def test_each_login_shows_how_it_was_proven(
    tg: FakeTelegram,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    db: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    await start_bot(trust_telegram_contact=True)
    by_sms, by_call, by_contact = await _three_logins(tg, verify)

    whoami = re.compile(r"You are logged in as .+ \(since .+ UTC, proven by (.+)\)\.")
    said = [whoami.fullmatch(await c.say("/whoami")) for c in (by_sms, by_call, by_contact)]
    assert [m.group(1) if m else None for m in said] == [
        "an SMS code",
        "a code by voice call",
        "your own Telegram contact",
    ]

    admin = Chat(tg, ADMIN_ID, "Boss")
    shown = (await admin.say(f"/user {by_call.id}")).splitlines()
    assert shown[0].endswith(", by voice")
    assert any(line.endswith("verified +1******100 (voice)") for line in shown), shown

    env = {"DATABASE_URL": database_url, "NUMBER_HASH_KEY": HASH_KEY}
    listed = json.loads(run_cli("users", "list", "--json", env=env).stdout)
    assert {r["phone_number"]: r["method"] for r in listed} == {
        SMS_NUMBER: "sms",
        CALL_NUMBER: "voice",
        CONTACT_NUMBER: "telegram_contact",
    }
    show = run_cli("users", "show", CONTACT_NUMBER, env=env).stdout.splitlines()
    assert show[0].endswith(", by telegram_contact")

    async with db() as session:
        verified = (
            await session.execute(
                select(AuthEvent.chat_id, AuthEvent.detail).where(AuthEvent.event == "verified")
            )
        ).all()
    assert sorted(verified) == [
        (by_sms.id, "sms"),
        (by_call.id, "voice"),
        (by_contact.id, "telegram_contact"),
    ]
