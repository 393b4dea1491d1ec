"""The aiohttp backend under python-telegram-bot: what the bot relies on when it talks to the
Bot API (timeouts, errors without the token, uploads, a bounded pool), against a small
HTTP server standing in for Telegram."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from bot.telegram.http import AiohttpRequest

TOKEN = "424242:SECRET-token-never-in-errors"
T = TypeVar("T")
ME = {"id": 424242, "is_bot": True, "first_name": "Bot", "username": "HttpTestBot"}


@dataclass
class Server:
    base_url: str
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, user agent)
    form: dict[str, object] = field(default_factory=dict)
    in_flight: int = 0
    most_in_flight: int = 0
    delay: float = 0.0


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """Answers every Bot API method: getMe with a bot, sendDocument with what it received,
    anything else with `true`, after `delay` seconds."""
    state = Server(base_url="")

    async def api(request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        state.calls.append((method, request.headers.get("User-Agent", "")))
        state.in_flight += 1
        state.most_in_flight = max(state.most_in_flight, state.in_flight)
        try:
            await asyncio.sleep(state.delay)
            if method == "getMe":
                return web.json_response({"ok": True, "result": ME})
            if method == "sendDocument":
                reader = await request.multipart()
                async for part in reader:
                    if part.filename:  # type: ignore[union-attr]
                        state.form[part.name or ""] = (part.filename, await part.read())  # type: ignore[union-attr]
                    else:
                        state.form[part.name or ""] = await part.text()  # type: ignore[union-attr]
                message = {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": 7, "type": "private"},
                    "document": {"file_id": "f", "file_unique_id": "u", "file_name": "a.txt"},
                }
                return web.json_response({"ok": True, "result": message})
            form = await request.post()
            state.form.update(form)
            return web.json_response({"ok": True, "result": True})
        finally:
            state.in_flight -= 1

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", api)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.base_url = f"http://127.0.0.1:{port}/bot"
    yield state
    await runner.cleanup()


def make_bot(base_url: str, request: AiohttpRequest) -> Bot:
    return Bot(TOKEN, base_url=base_url, request=request, get_updates_request=AiohttpRequest())


async def test_calls_reach_the_api_form_encoded(server: Server) -> None:
    async with make_bot(server.base_url, AiohttpRequest()) as bot:
        assert (await bot.get_me()).username == "HttpTestBot"
        assert await bot.set_my_description("Logs you in") is True
    # Bot.initialize() asks getMe once itself.
    assert [method for method, _ in server.calls] == ["getMe", "getMe", "setMyDescription"]
    assert all(agent.startswith("python-telegram-bot") for _, agent in server.calls)
    assert server.form["description"] == "Logs you in"


async def test_a_slow_answer_times_out(server: Server) -> None:
    async with make_bot(server.base_url, AiohttpRequest(read_timeout=0.2)) as bot:
        server.delay = 1.0
        with pytest.raises(TimedOut):
            await bot.set_my_description("x")
        # A longer timeout for one call is honoured.
        assert await bot.set_my_description("x", read_timeout=3) is True


async def test_an_unreachable_api_is_a_network_error_without_the_token(server: Server) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    async with make_bot(server.base_url, AiohttpRequest()) as bot:
        bot._base_url = f"http://127.0.0.1:{port}/bot{TOKEN}"  # the API goes away
        with pytest.raises(NetworkError) as raised:
            await bot.set_my_description("x")
    assert not isinstance(raised.value, TimedOut)
    assert TOKEN not in str(raised.value)
    assert "SECRET" not in repr(raised.value)


async def test_files_are_uploaded_as_multipart(server: Server) -> None:
    async with make_bot(server.base_url, AiohttpRequest()) as bot:
        await bot.send_document(7, document=b"hello, file", filename="a.txt", caption="c")
    assert server.form["chat_id"] == "7"
    assert server.form["caption"] == "c"
    uploaded = [value for value in server.form.values() if isinstance(value, tuple)]
    assert uploaded == [("a.txt", b"hello, file")]


async def test_the_pool_bounds_requests_in_flight(server: Server) -> None:
    server.delay = 0.2
    async with make_bot(server.base_url, AiohttpRequest(connection_pool_size=2)) as bot:
        results = await asyncio.gather(*(bot.set_my_description(f"{i}") for i in range(6)))
    assert results == [True] * 6
    assert server.most_in_flight == 2


async def test_a_proxy_from_the_environment_carries_the_calls(
    server: Server, no_proxies: pytest.MonkeyPatch
) -> None:
    # The stand-in answers as the proxy: the API's own host does not exist.
    no_proxies.setenv("HTTP_PROXY", server.base_url.removesuffix("/bot"))
    async with make_bot("http://api.telegram.invalid/bot", AiohttpRequest()) as bot:
        assert await bot.set_my_description("via the proxy") is True
    assert server.form["description"] == "via the proxy"


class CountingExecutor(ThreadPoolExecutor):
    """A default executor that counts the work handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.tasks = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.tasks += 1
        return super().submit(fn, *args, **kwargs)


async def test_calls_read_the_environment_once_and_hand_no_work_to_threads(
    server: Server, no_proxies: pytest.MonkeyPatch
) -> None:
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    async with make_bot(server.base_url, AiohttpRequest()) as bot:
        # Read when the bot first called the API (getMe): a proxy named later is not used.
        no_proxies.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        for i in range(3):
            assert await bot.set_my_description(f"{i}") is True
    assert [method for method, _ in server.calls].count("setMyDescription") == 3
    # Nothing but the calls themselves: no trip to a worker thread for .netrc or proxies.
    assert executor.tasks == 0


async def test_a_closed_request_refuses_to_send(server: Server) -> None:
    request = AiohttpRequest()
    with pytest.raises(NetworkError, match="not initialized"):
        await request.post(f"{server.base_url}{TOKEN}/getMe")
    await request.initialize()
    status_and_body = await request.do_request(f"{server.base_url}{TOKEN}/getMe", "POST")
    await request.shutdown()
    assert status_and_body[0] == 200
    assert json.loads(status_and_body[1])["result"]["id"] == ME["id"]
