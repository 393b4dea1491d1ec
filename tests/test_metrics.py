"""Prometheus metrics as an operator scrapes them: GET /metrics (METRICS_PORT in polling
mode, the webhook server otherwise) shows each figure move by exactly what happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from bot import texts
from bot.db.engine import make_engine
from bot.demo.sandbox import FakeGateway, FakeTelegram, FakeVerify, free_port
from bot.i18n import ENGLISH
from bot.telegram.handlers.base import BotApp
from bot.telegram.lifecycle import running
from tests.helpers import (
    NUMBER,
    TOKEN,
    Browser,
    Chat,
    Clock,
    Provider,
    Scrape,
    authorize_url,
    exchange,
    login,
    open_link,
    query_of,
    refuse_new_logins,
    scrape,
    tap,
)

STARTS = "phone_login_verification_starts_total"
CHECKS = "phone_login_code_checks_total"
LOGINS = "phone_login_logins_total"
TRIPPED = "phone_login_limits_tripped_total"
VERIFY_CALLS = "phone_login_provider_call_seconds_count"
TELEGRAM_CALLS = "phone_login_telegram_call_seconds_count"
RATE_LIMITED = "phone_login_telegram_rate_limited_total"
UPDATES = "phone_login_update_handling_seconds_count"
DATABASE_ERRORS = "phone_login_database_errors_total"
WEB = "phone_login_web_logins_total"


def provider_calls(moved: Scrape, provider: str) -> dict[tuple[str, str], float]:
    """How many calls to a code provider moved, by (operation, outcome); none that did not."""
    calls: dict[tuple[str, str], float] = {}
    for (name, labels), value in moved.samples.items():
        shown = dict(labels)
        if name == VERIFY_CALLS and shown["provider"] == provider and value:
            calls[shown["operation"], shown["outcome"]] = value
    return calls


async def test_a_login_a_wrong_code_a_refusal_and_a_verify_failure_move_exactly_their_counters(
    start_bot: Callable[..., Any], tg: FakeTelegram, verify: FakeVerify
) -> None:
    port = free_port()
    await start_bot(metrics_port=port, denied_country_codes="49")
    url = f"http://127.0.0.1:{port}/metrics"
    ada, bob, eve = Chat(tg, 1001), Chat(tg, 1002), Chat(tg, 1003)
    sent_before = len(tg.calls_to("sendMessage"))
    before = await scrape(url)

    # Ada logs in, with one wrong code first; Telegram makes the bot wait once on the way.
    tg.fail_next("sendMessage", 429, retry_after=1)
    await ada.send("/login")
    await ada.number(NUMBER)
    right = verify.last_code()
    wrong = "000000" if right != "000000" else "111111"
    assert await ada.say(wrong) == ENGLISH.plural(texts.WRONG_CODE, 2)
    assert await ada.say(right) == texts.VERIFIED.format(number="+44 7400 123123")
    # Bob's number is in a country the bot never sends to.
    await bob.send("/login")
    await bob.send("+49 151 23456789")
    # Vonage fails Eve's start.
    await eve.send("/login")
    verify.fail_next(500, path_kind="start")
    await eve.send("+33 6 12 34 56 78")
    await ada.quiet()
    moved = await scrape(url) - before

    assert moved.value(STARTS, region="GB", channel="sms", outcome="sent", reason="") == 1
    assert moved.value(STARTS, region="DE", channel="sms", outcome="refused", reason="country") == 1
    failed = {"outcome": "failed", "reason": "unavailable"}
    assert moved.value(STARTS, region="FR", channel="sms", **failed) == 1
    assert moved.total(STARTS) == 3
    assert moved.value(TRIPPED, rule="country") == 1
    assert moved.total(TRIPPED) == 1
    assert moved.value(CHECKS, result="wrong", region="GB") == 1
    assert moved.value(CHECKS, result="verified", region="GB") == 1
    assert moved.total(CHECKS) == 2
    assert moved.value(LOGINS, outcome="completed") == 1
    assert moved.total(LOGINS) == 1
    # Verify: two starts (one failed), two checks (one wrong); nothing else.
    assert provider_calls(moved, "verify") == {
        ("start", "ok"): 1,
        ("start", "unavailable"): 1,
        ("check", "wrong_code"): 1,
        ("check", "ok"): 1,
    }
    assert moved.total(VERIFY_CALLS) == 4
    # Telegram: every sendMessage the fake received, one of them answered with 429.
    sends = len(tg.calls_to("sendMessage")) - sent_before
    assert moved.value(TELEGRAM_CALLS, method="sendMessage", status="200") == sends - 1
    assert moved.value(TELEGRAM_CALLS, method="sendMessage", status="429") == 1
    assert moved.value(RATE_LIMITED, method="sendMessage") == 1
    # Eight messages: four of Ada's, two each of Bob's and Eve's; all done, none waiting.
    assert moved.value(UPDATES, type="message") == 8
    assert moved.total(UPDATES) == 8
    after = await scrape(url)
    assert after.value("phone_login_updates_in_flight") == 0
    assert after.value("phone_login_updates_waiting") == 0
    assert moved.total(DATABASE_ERRORS) == 0


async def test_cancelled_expired_and_failed_logins_and_a_rate_limit_are_counted_apart(
    start_bot: Callable[..., Any], tg: FakeTelegram, verify: FakeVerify, clock: Clock
) -> None:
    port = free_port()
    application: BotApp = await start_bot(metrics_port=port, limit_starts_per_hour=1)
    url = f"http://127.0.0.1:{port}/metrics"
    ada, bob, cy = Chat(tg, 1001), Chat(tg, 1002), Chat(tg, 1003)
    before = await scrape(url)

    # Ada cancels while her code is awaited, then asks again within the hour: limited.
    await ada.send("/login")
    await ada.number(NUMBER)
    assert await ada.say("/cancel") == texts.CANCELLED
    await ada.send("/login")
    assert (await ada.say(NUMBER)).startswith("Too many codes were asked")
    # Bob never types his code: the sweeper expires it.
    await bob.send("/login")
    await bob.number("+44 7400 123124")
    clock.advance(600)
    services = application.bot_data.services
    assert services is not None
    assert await services.login.expire_due() == 1
    # Cy types three wrong codes.
    await cy.send("/login")
    await cy.number("+33 6 12 34 56 78")
    wrong = "000000" if verify.last_code() != "000000" else "111111"
    for tries in (2, 1):
        assert await cy.say(wrong) == ENGLISH.plural(texts.WRONG_CODE, tries)
    assert await cy.say(wrong) == texts.TOO_MANY_WRONG
    await ada.quiet()
    moved = await scrape(url) - before

    assert moved.value(LOGINS, outcome="cancelled") == 1
    assert moved.value(LOGINS, outcome="expired") == 1
    assert moved.value(LOGINS, outcome="failed") == 1
    assert moved.total(LOGINS) == 3
    limited = {"outcome": "limited", "reason": "hour"}
    assert moved.value(STARTS, region="GB", channel="sms", **limited) == 1
    assert moved.total(STARTS, outcome="sent") == 3
    assert moved.total(STARTS) == 4
    assert moved.value(TRIPPED, rule="hour") == 1
    assert moved.total(TRIPPED) == 1
    assert moved.value(CHECKS, result="wrong", region="FR") == 2
    assert moved.value(CHECKS, result="too_many", region="FR") == 1
    assert moved.total(CHECKS) == 3
    # Ada's and Bob's requests were cancelled at Vonage.
    assert moved.value(VERIFY_CALLS, provider="verify", operation="cancel", outcome="ok") == 2


async def test_gateway_calls_are_timed_and_starts_counted_by_the_channel_the_code_went_by(
    start_bot: Callable[..., Any],
    tg: FakeTelegram,
    verify: FakeVerify,
    gateway: FakeGateway,
    gateway_settings: dict[str, Any],
) -> None:
    port = free_port()
    await start_bot(metrics_port=port, **gateway_settings)
    url = f"http://127.0.0.1:{port}/metrics"
    gateway.cannot_deliver = ("+33",)
    ada, bob = Chat(tg, 1001), Chat(tg, 1002)
    before = await scrape(url)

    # Ada's code comes in Telegram; she mistypes it once.
    await ada.send("/login")
    await ada.send(NUMBER)
    right = gateway.last_code("+447400123123")
    wrong = "000000" if right != "000000" else "111111"
    assert await ada.say(wrong) == ENGLISH.plural(texts.WRONG_CODE, 2)
    assert await ada.say(right) == texts.VERIFIED.format(number="+44 7400 123123")
    # Telegram cannot reach Bob's number: his code goes by SMS.
    await bob.send("/login")
    await bob.number("+33 6 12 34 56 78")
    await ada.quiet()
    moved = await scrape(url) - before

    assert moved.value(STARTS, region="GB", channel="telegram", outcome="sent", reason="") == 1
    assert moved.value(STARTS, region="FR", channel="sms", outcome="sent", reason="") == 1
    assert moved.total(STARTS) == 2
    assert provider_calls(moved, "gateway") == {
        ("ability", "ok"): 1,
        ("send", "ok"): 1,
        ("check", "wrong_code"): 1,
        ("check", "ok"): 1,
        ("ability", "cannot_deliver"): 1,
    }
    assert provider_calls(moved, "verify") == {("start", "ok"): 1}
    assert moved.value(CHECKS, result="wrong", region="GB") == 1
    assert moved.value(LOGINS, outcome="completed") == 1


async def test_updates_in_flight_and_waiting_are_gauged_while_vonage_is_slow(
    start_bot: Callable[..., Any], tg: FakeTelegram, verify: FakeVerify
) -> None:
    port = free_port()
    await start_bot(metrics_port=port, vonage_timeout_seconds=10)
    url = f"http://127.0.0.1:{port}/metrics"
    ada = Chat(tg, 1001)
    await ada.send("/login")
    verify.hang_next(4, path_kind="start")
    # Ada's number waits on Vonage; her next message waits for it (one chat, in order).
    tg.send_text(ada.id, NUMBER)
    tg.send_text(ada.id, "/whoami")

    deadline = time.monotonic() + 3.5
    shown = await scrape(url)
    while (
        shown.value("phone_login_updates_in_flight"),
        shown.value("phone_login_updates_waiting"),
    ) != (1, 1) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        shown = await scrape(url)
    assert shown.value("phone_login_updates_in_flight") == 1
    assert shown.value("phone_login_updates_waiting") == 1

    await tg.wait_for_messages(ada.id, 2, timeout=10)
    await ada.quiet()
    shown = await scrape(url)
    assert shown.value("phone_login_updates_in_flight") == 0
    assert shown.value("phone_login_updates_waiting") == 0
    # The wait shows in both histograms: Vonage's latency and the update's handling time.
    start = {"provider": "verify", "operation": "start", "outcome": "ok"}
    assert shown.value("phone_login_provider_call_seconds_sum", **start) >= 4
    assert shown.value("phone_login_update_handling_seconds_sum", type="message") >= 4


async def test_no_label_holds_a_chat_id_a_number_or_the_token(
    start_bot: Callable[..., Any], tg: FakeTelegram, verify: FakeVerify
) -> None:
    port = free_port()
    await start_bot(metrics_port=port)
    ada = Chat(tg, 5123456789)
    await ada.send("/login")
    await ada.number(NUMBER)
    await ada.say(verify.last_code())
    await ada.quiet()
    shown = await scrape(f"http://127.0.0.1:{port}/metrics")

    values = {value for _, labels in shown.samples for _, value in labels}
    assert "sendMessage" in values  # labels are there, just none of these
    for private in ("5123456789", "447400123123", TOKEN.partition(":")[2]):
        assert not any(private in value for value in values), private


async def test_a_database_error_is_counted_by_its_kind(
    start_bot: Callable[..., Any], tg: FakeTelegram, verify: FakeVerify, database_url: str
) -> None:
    port = free_port()
    await start_bot(metrics_port=port)
    url = f"http://127.0.0.1:{port}/metrics"
    ada = Chat(tg, 1001)
    await refuse_new_logins(database_url)
    before = await scrape(url)
    await ada.send("/login")
    await ada.number(NUMBER)

    assert await ada.say(verify.last_code()) == texts.APOLOGY
    moved: Scrape = await scrape(url) - before
    assert moved.value(DATABASE_ERRORS, kind="IntegrityError") == 1
    assert moved.total(DATABASE_ERRORS) == 1
    assert moved.value(LOGINS, outcome="completed") == 0


async def test_a_database_error_in_the_sweeper_is_counted(
    make_settings: Callable[..., Any], clock: Clock, database_url: str
) -> None:
    port = free_port()
    engine = make_engine(database_url, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE login_flows RENAME TO login_flows_gone"))
    await engine.dispose()
    url = f"http://127.0.0.1:{port}/metrics"

    async with running(make_settings(metrics_port=port), clock=clock, sweep_seconds=0.05):
        deadline = time.monotonic() + 10
        shown = await scrape(url)
        while not shown.total(DATABASE_ERRORS) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            shown = await scrape(url)

    kinds = {
        dict(labels)["kind"]
        for (name, labels), n in shown.samples.items()
        if n and name == DATABASE_ERRORS
    }
    # No such table: SQLite's driver says OperationalError, asyncpg's ProgrammingError.
    assert kinds in ({"OperationalError"}, {"ProgrammingError"}), shown.samples


async def test_a_website_login_and_a_refused_one_move_the_web_login_counters(
    provider: Provider, tg: FakeTelegram, verify: FakeVerify, person: Browser
) -> None:
    url = f"{provider.issuer}/metrics"  # the bot's HTTP server (polling mode, OIDC on)
    ada = Chat(tg, 1001)
    await login(ada, verify)
    before = await scrape(url)
    shop = provider.shop.client_id

    page = await person.open(authorize_url(provider, shop))
    await tap(ada, await open_link(ada, page), str(page.number))
    code = query_of(await person.answer(page))["code"]
    assert (await exchange(provider, code))[0] == 200
    refused = await person.open(authorize_url(provider, shop))
    await tap(ada, await open_link(ada, refused), "Not me")
    await person.get(authorize_url(provider, "made-up-client"))
    moved = await scrape(url) - before

    assert moved.value(WEB, client=shop, outcome="opened", reason="") == 2
    assert moved.value(WEB, client=shop, outcome="approved", reason="") == 1
    assert moved.value(WEB, client=shop, outcome="exchanged", reason="") == 1
    assert moved.value(WEB, client=shop, outcome="refused", reason="not_me") == 1
    assert moved.value(WEB, client="-", outcome="refused", reason="unknown_client") == 1
    assert moved.total(WEB) == 6
    assert moved.total(WEB, client="made-up-client") == 0
