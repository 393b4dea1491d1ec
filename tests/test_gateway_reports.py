"""The Telegram Gateway's delivery reports on the bot's HTTP server (here: the web login's, in
polling mode): a report signed with the token and fresh is recorded in the audit trail; a
forged, stale or unsigned one is refused and changes nothing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.db.models import AuthEvent
from bot.demo.sandbox import FakeGateway, FakeTelegram
from bot.telegram.webhook import gateway_callback_url
from tests.helpers import Chat, Provider


@pytest.fixture
def provider_settings(gateway_settings: dict[str, Any]) -> dict[str, Any]:
    """The web login's bot, with the Gateway first."""
    return gateway_settings


async def _reports(db: async_sessionmaker[AsyncSession]) -> list[tuple[int, str | None]]:
    async with db() as session:
        rows = await session.execute(
            select(AuthEvent.chat_id, AuthEvent.detail)
            .where(AuthEvent.event == "delivery_report")
            .order_by(AuthEvent.id)
        )
        return [(chat_id, detail) for chat_id, detail in rows]


async def _code_by_telegram(tg: FakeTelegram, gateway: FakeGateway) -> str:
    chat = Chat(tg, 1001)
    await chat.send("/login")
    await chat.send("+44 7400 123123")
    return gateway.messages[-1].request_id


async def test_a_signed_delivery_report_is_recorded(
    tg: FakeTelegram,
    gateway: FakeGateway,
    provider: Provider,
    db: async_sessionmaker[AsyncSession],
) -> None:
    request_id = await _code_by_telegram(tg, gateway)
    sent = gateway.calls("sendVerificationMessage")[-1]
    assert sent.params["callback_url"] == f"{provider.issuer}/gateway/report"
    gateway.request(request_id).delivery = "delivered"
    assert await gateway.send_report(request_id) == 200
    assert await _reports(db) == [(1001, "delivered")]


@pytest.mark.parametrize("forgery", ["wrong signature", "stale", "unsigned", "other token"])
async def test_a_forged_or_stale_delivery_report_is_refused(
    tg: FakeTelegram,
    gateway: FakeGateway,
    provider: Provider,
    db: async_sessionmaker[AsyncSession],
    forgery: str,
) -> None:
    request_id = await _code_by_telegram(tg, gateway)
    url = f"{provider.issuer}/gateway/report"
    if forgery == "wrong signature":
        status = await gateway.send_report(request_id, signature="0" * 64)
    elif forgery == "stale":
        status = await gateway.send_report(request_id, timestamp=time.time() - 3600)
    elif forgery == "other token":
        other = FakeGateway(token="someone-else")
        stamp = str(int(time.time()))
        body = b'{"request_id": "%s", "delivery_status": {"status": "read"}}' % request_id.encode()
        headers = {"X-Request-Timestamp": stamp, "X-Request-Signature": other.sign(stamp, body)}
        async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
            status = r.status
    else:
        async with aiohttp.ClientSession() as http, http.post(url, data=b"{}") as response:
            status = response.status
    assert status == 403
    assert await _reports(db) == []


def test_reports_go_to_the_webhook_origin_in_webhook_mode(
    make_settings: Callable[..., Settings], gateway_settings: dict[str, Any]
) -> None:
    settings = make_settings(
        **gateway_settings,
        webhook_url="https://bot.example/telegram/hook",
        webhook_secret="s" * 32,
    )
    assert gateway_callback_url(settings) == "https://bot.example/gateway/report"
    assert gateway_callback_url(make_settings(**gateway_settings)) is None


@pytest.mark.parametrize(
    "stamp",
    ["\u00b2", "9" * 4400, "9" * 400],
    ids=["superscript digit", "too many digits for int", "too large for a float"],
)
async def test_a_report_with_a_malformed_timestamp_is_refused_without_an_error(
    tg: FakeTelegram,
    gateway: FakeGateway,
    provider: Provider,
    db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
    stamp: str,
) -> None:
    request_id = await _code_by_telegram(tg, gateway)
    body = b'{"request_id": "%s", "delivery_status": {"status": "read"}}' % request_id.encode()
    # Signed with the right token: only the timestamp is wrong.
    headers = {
        "X-Request-Timestamp": stamp,
        "X-Request-Signature": gateway.sign(stamp, body),
    }
    url = f"{provider.issuer}/gateway/report"
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        status = r.status
    assert status == 403
    assert await _reports(db) == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == []
