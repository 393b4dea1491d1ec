"""The web login across real `python -m bot` processes on PostgreSQL: the page is served by
one, the Telegram update handled by the other, the code exchanged at the first; nothing but
the database joins them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.demo.sandbox import FakeTelegram, FakeVerify, free_port
from bot.login.oidc_clients import Clients, NewClient
from tests.helpers import (
    SHOP_CALLBACK,
    Browser,
    Chat,
    authorize_url,
    exchange,
    query_of,
    read_page,
)
from tests.test_process import HOOK_SECRET, Balancer, BotProcess
from tests.test_process import processes as processes  # the fixture, shared


@dataclass(frozen=True)
class Remote:
    """The provider as the website knows it: the public URL (process 0) and its client."""

    issuer: str
    shop: NewClient


@pytest.fixture
async def two_providers(
    tg: FakeTelegram,
    processes: Callable[..., BotProcess],
    database_url: str,
) -> AsyncIterator[tuple[Balancer, str]]:
    if not database_url.startswith("postgresql"):
        pytest.skip("several processes share a database only on PostgreSQL")
    ports = [free_port(), free_port()]
    issuer = f"http://127.0.0.1:{ports[0]}"  # the public URL, which reaches process 0
    bots = []
    for port in ports:
        bot = processes(
            WEBHOOK_URL="https://bot.example/hook/tg",
            WEBHOOK_LISTEN="127.0.0.1",
            WEBHOOK_PORT=str(port),
            WEBHOOK_SECRET=HOOK_SECRET,
            OIDC_ISSUER=issuer,
        )
        bot.start()
        bots.append(bot)
    balancer = Balancer(tg, [f"http://127.0.0.1:{port}/hook/tg" for port in ports], bots)
    for index, bot in enumerate(bots):
        await balancer.healthy(index, bot)
    yield balancer, issuer
    await balancer.http.close()


async def test_page_on_one_process_update_on_the_other_exchange_on_the_first(
    tg: FakeTelegram,
    verify: FakeVerify,
    two_providers: tuple[Balancer, str],
    db: async_sessionmaker[AsyncSession],
) -> None:
    lb, issuer = two_providers
    shop = await Clients(sessions=db).add(
        name="Acme Shop", redirect_uris=[SHOP_CALLBACK], public=False
    )
    provider = Remote(issuer, shop)
    chat = Chat(tg, 1001)
    for text in ("/login", "+44 7400 123123"):
        tg.send_text(chat.id, text)
        await lb.deliver(1)
    tg.send_text(chat.id, verify.last_code())
    await lb.deliver(1)

    browser = Browser()
    try:
        url = authorize_url(provider, shop.client_id)
        status, body, _ = await browser.get(url)  # process 0 serves the page
        assert status == 200
        page = read_page(url, body)
        tg.send_text(chat.id, f"/start {page.token}")
        await lb.deliver(1)  # process 1 handles the link
        question = tg.messages(chat.id)[-1]
        assert question.text.startswith("Acme Shop (shop.example) asks to log you in")
        tg.click(question, str(page.number))
        await lb.deliver(1)  # ... and the tap
        code = query_of(await browser.answer(page))["code"]  # process 0 again
    finally:
        await browser.close()
    status, token = await exchange(provider, code)
    assert status == 200, token
    claims = jwt.decode(token["id_token"], options={"verify_signature": False})
    assert claims["phone_number"] == "+447400123123"
    assert claims["iss"] == issuer


async def test_a_polling_process_serves_the_oidc_endpoints_on_webhook_port(
    tg: FakeTelegram, processes: Callable[..., BotProcess]
) -> None:
    port = free_port()
    issuer = "https://login.example.com/sso"
    bot = processes(WEBHOOK_PORT=str(port), OIDC_ISSUER=issuer)
    bot.start()
    browser = Browser()
    try:
        for _ in range(300):
            try:
                status, body, _ = await browser.get(
                    f"http://127.0.0.1:{port}/sso/.well-known/openid-configuration"
                )
                if status == 200:
                    break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(bot.output())
        metadata = json.loads(body)
        assert metadata["issuer"] == issuer
        assert metadata["token_endpoint"] == f"{issuer}/token"
        health, _, _ = await browser.get(f"http://127.0.0.1:{port}/healthz")
        assert health == 200
    finally:
        await browser.close()
    assert await bot.terminate() == 0, bot.output()
