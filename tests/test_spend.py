"""What the logins cost: with PRICE_PER_* set, /stats and `python -m bot stats` turn the paid
sends of the audit trail into an estimated spend per day, per region and per verified login."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from bot.demo.sandbox import FakeTelegram, FakeVerify
from tests.helpers import ADMIN_ID, HASH_KEY, NUMBER, Chat, login, run_cli

PRICES = {"price_per_sms": "0.05", "price_per_voice_call": "0.12", "price_currency": "EUR"}


def _paid_sends(lines: list[str]) -> str:
    """The one line of /stats that sums up the paid sends and their spend."""
    (line,) = [line for line in lines if line.startswith("Paid sends:")]
    return line


async def _two_logins_a_call_and_three_unused_codes(tg: FakeTelegram, verify: FakeVerify) -> None:
    """2 logins by SMS (GB, US), one of them after "Call me instead", and 3 codes to Jamaica
    never used: 5 SMS and 1 call, 0.37 in all, 0.185 per verified login."""
    await login(Chat(tg, 1001), verify)
    caller = Chat(tg, 1002, "Bo")
    await caller.send("/login")
    tg.send_text(caller.id, "+1 201 555 0100")
    (buttons,) = await tg.wait_for_messages(caller.id, 1)
    tg.click(buttons, "Call me instead")
    assert (await tg.next_reply(caller.id)).text == "You will get a call with your code shortly."
    assert await caller.say(verify.last_code()) == "You are logged in as +1 201-555-0100."
    for i in range(3):
        user = Chat(tg, 2000 + i, f"P{i}")
        await user.send("/login")
        await user.number(f"+1 876 210 12{i:02d}")


async def test_stats_report_the_spend_per_day_region_and_verified_login(
    tg: FakeTelegram, verify: FakeVerify, start_bot: Callable[..., Any]
) -> None:
    await start_bot(**PRICES)
    await _two_logins_a_call_and_three_unused_codes(tg, verify)
    lines = (await Chat(tg, ADMIN_ID, "Boss").say("/stats")).splitlines()
    assert _paid_sends(lines) == (
        "Paid sends: sms 5, voice 1; estimated spend EUR 0.3700, EUR 0.1850 per verified login"
    )
    (today,) = lines[lines.index("Per day:") + 1 : lines.index("Per region:")]
    assert today.endswith(": 5 started, 2 verified, 40%, spend EUR 0.3700")
    per_region = lines[lines.index("Per region:") + 1 : lines.index("Per region:") + 4]
    assert per_region == [
        "  JM (+1): 3 started, 0 verified, 0%, spend EUR 0.1500",
        "  GB (+44): 1 started, 1 verified, 100%, spend EUR 0.0500",
        "  US (+1): 1 started, 1 verified, 100%, spend EUR 0.1700",
    ]


async def test_a_channel_without_a_price_makes_the_spend_unknown_not_guessed(
    tg: FakeTelegram, verify: FakeVerify, start_bot: Callable[..., Any]
) -> None:
    await start_bot(price_per_sms="0.05", price_per_voice_call="")
    await _two_logins_a_call_and_three_unused_codes(tg, verify)
    lines = (await Chat(tg, ADMIN_ID, "Boss").say("/stats")).splitlines()
    assert _paid_sends(lines) == "Paid sends: sms 5, voice 1; spend unknown (no price for voice)"
    assert "  GB (+44): 1 started, 1 verified, 100%, spend USD 0.0500" in lines
    assert "  US (+1): 1 started, 1 verified, 100%, spend USD unknown" in lines


async def test_without_prices_stats_count_the_sends_and_say_how_to_price_them(
    chat: Chat, verify: FakeVerify, tg: FakeTelegram
) -> None:
    await login(chat, verify)
    lines = (await Chat(tg, ADMIN_ID, "Boss").say("/stats")).splitlines()
    summary = _paid_sends(lines)
    assert summary == (
        "Paid sends: sms 1; spend unknown (set PRICE_PER_SMS, PRICE_PER_VOICE_CALL, "
        "PRICE_PER_GATEWAY_CODE)"
    )
    assert all("spend" not in line for line in lines if line != summary)


async def test_command_line_stats_give_the_spend_as_exact_decimals(
    tg: FakeTelegram, verify: FakeVerify, start_bot: Callable[..., Any], database_url: str
) -> None:
    await start_bot()
    await _two_logins_a_call_and_three_unused_codes(tg, verify)
    env = {
        "DATABASE_URL": database_url,
        "NUMBER_HASH_KEY": HASH_KEY,
        **{name.upper(): value for name, value in PRICES.items()},
    }
    done = run_cli("stats", "--days", "1", "--json", env=env)
    assert done.returncode == 0, done.stderr
    spend = json.loads(done.stdout)["spend"]
    assert spend["currency"] == "EUR"
    assert spend["prices"] == {"sms": "0.0500", "voice": "0.1200", "telegram": None}
    assert spend["total"] == {
        "sends": {"sms": 5, "voice": 1},
        "spend": "0.3700",
        "per_verified": "0.1850",
    }
    assert spend["per_region"]["JM"] == {
        "sends": {"sms": 3},
        "spend": "0.1500",
        "per_verified": None,
    }
    text = run_cli("stats", "--days", "1", env=env).stdout
    assert "estimated spend EUR 0.3700, EUR 0.1850 per verified login" in text


def test_a_bad_price_stops_the_command_line_naming_the_setting(database_url: str) -> None:
    done = run_cli("stats", env={"DATABASE_URL": database_url, "PRICE_PER_SMS": "five cents"})
    assert done.returncode == 2
    assert "PRICE_PER_SMS" in done.stderr
    assert NUMBER not in done.stderr


# What an admin reads in each language: the headings, the flag on a pumped region and the
# spend line; the English of the same sentences must not appear.
_STATS_IN = {
    "es": (
        "Últimos 7 día(s) desde el ",
        "Por día:",
        "Por región:",
        "  JM (+1): 10 iniciados, 0 verificados, 0%, gasto EUR 0.5000  <- CONVERSIÓN BAJA: "
        "posible bombeo de SMS",
        "Envíos de pago: sms 12, voice 1; gasto estimado EUR 0.7200, EUR 0.3600 por inicio de "
        "sesión verificado",
    ),
    "ru": (
        "За 7 дн. с ",
        "По дням:",
        "По регионам:",
        "  JM (+1): начато 10, подтверждено 0, 0%, расходы EUR 0.5000  <- НИЗКАЯ КОНВЕРСИЯ: "
        "возможна накрутка SMS-трафика",
        "Платные отправки: sms 12, voice 1; оценка расходов EUR 0.7200, EUR 0.3600 на "
        "подтверждённый вход",
    ),
}
_ENGLISH = re.compile(
    r"\b(Last|day\(s\)|started|verified|conversion|spend|Per day|Per region|Failures|Limits|"
    r"tripped|Paid sends|Web logins|none|nothing|LOW CONVERSION|pumping)\b"
)


@pytest.mark.parametrize("code", sorted(_STATS_IN))
async def test_stats_speak_the_admins_language_and_the_command_line_stays_english(
    code: str,
    tg: FakeTelegram,
    verify: FakeVerify,
    start_bot: Callable[..., Any],
    database_url: str,
) -> None:
    await start_bot(**PRICES)
    await _two_logins_a_call_and_three_unused_codes(tg, verify)
    for i in range(3, 10):  # 10 codes to Jamaica, none used: flagged as pumping
        user = Chat(tg, 2000 + i, f"P{i}")
        await user.send("/login")
        await user.number(f"+1 876 210 12{i:02d}")
    answer = await Chat(tg, ADMIN_ID, "Boss", language_code=code).say("/stats")
    lines = answer.splitlines()
    header, per_day, per_region, pumped, paid = _STATS_IN[code]
    assert lines[0].startswith(header), lines[0]
    assert per_day in lines
    assert per_region in lines
    assert pumped in lines
    assert paid in lines
    assert not _ENGLISH.search(answer), _ENGLISH.findall(answer)

    env = {
        "DATABASE_URL": database_url,
        "NUMBER_HASH_KEY": HASH_KEY,
        **{name.upper(): value for name, value in PRICES.items()},
    }
    done = run_cli("stats", "--days", "1", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Last 1 day(s) since ")
    assert "Per day:" in done.stdout
    assert "Per region:" in done.stdout
    assert "estimated spend EUR 0.7200, EUR 0.3600 per verified login" in done.stdout
