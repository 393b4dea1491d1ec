"""The real `python -m bot` process: killed with SIGKILL in every state of the flow it
continues after a restart, SIGTERM lets it finish what it is doing, and on PostgreSQL two
processes behind a load balancer share the work without ever acting twice."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import VerifiedUser
from bot.demo.sandbox import FakeTelegram, FakeVerify
from bot.telegram.webhook import SECRET_HEADER
from tests.helpers import HASH_KEY, NUMBER, TOKEN, VONAGE_KEY, VONAGE_SECRET, Chat

HOOK_SECRET = "process-test-secret-0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotProcess:
    """One `python -m bot` child process, configured for the fakes."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot"],
                cwd=self.log.parent,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    async def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.process.wait, 30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
async def processes(
    tg: FakeTelegram, verify: FakeVerify, database_url: str, tmp_path: Path
) -> AsyncIterator[Callable[..., BotProcess]]:
    """Make bot processes (stopped at the end of the test)."""
    made: list[BotProcess] = []

    def make(**extra: str) -> BotProcess:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_BASE_URL": tg.base_url,
            "VONAGE_API_KEY": VONAGE_KEY,
            "VONAGE_API_SECRET": VONAGE_SECRET,
            "VONAGE_API_HOST": verify.host,
            "NUMBER_HASH_KEY": HASH_KEY,
            "VONAGE_TIMEOUT_SECONDS": "5",
            "REQUESTS_CA_BUNDLE": str(verify.ca_path),
            "DATABASE_URL": database_url,
            "LIMIT_COOLDOWN_SECONDS": "0",
            "LOG_LEVEL": "INFO",
            **extra,
        }
        bot = BotProcess(env, tmp_path / f"bot{len(made)}.log")
        made.append(bot)
        return bot

    yield make
    for bot in made:
        bot.stop()


async def _polling(tg: FakeTelegram, bot: BotProcess) -> None:
    """Wait until the process is fetching updates."""
    seen = len(tg.calls_to("getUpdates"))
    await tg.wait_for(lambda: len(tg.calls_to("getUpdates")) > seen, 30, lambda: bot.output())


async def _verified(db: async_sessionmaker[AsyncSession]) -> list[tuple[int, str]]:
    async with db() as session:
        rows = (await session.execute(select(VerifiedUser))).scalars().all()
    return [(row.chat_id, row.phone_number) for row in rows]


async def test_sigkill_in_every_state_of_the_flow_loses_nothing(
    tg: FakeTelegram,
    verify: FakeVerify,
    processes: Callable[..., BotProcess],
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = processes()
    chat = Chat(tg, 1001)

    async def restart() -> None:
        bot.kill()
        bot.start()
        await _polling(tg, bot)

    bot.start()
    await _polling(tg, bot)
    await restart()  # before any flow
    assert "phone number" in (await chat.send("/login"))[0].text
    await restart()  # waiting for the number
    assert "code is on its way" in await chat.number(NUMBER)
    await restart()  # waiting for the code
    assert await chat.say(verify.last_code()) == "You are logged in as +44 7400 123123."
    await restart()  # logged in
    assert (await chat.say("/whoami")).startswith("You are logged in as +44 7400 123123")
    assert await _verified(db) == [(1001, "+447400123123")]
    assert len(verify.calls("start")) == 1


async def test_sigterm_finishes_the_update_in_flight_then_exits_0(
    tg: FakeTelegram, verify: FakeVerify, processes: Callable[..., BotProcess]
) -> None:
    bot = processes()
    chat = Chat(tg, 1001)
    bot.start()
    await _polling(tg, bot)
    await chat.send("/login")
    verify.latency = 1.5
    tg.send_text(chat.id, NUMBER)
    await tg.wait_for(lambda: len(verify.requests) == 1, 10)  # the Verify call is running
    status = await bot.terminate()
    assert status == 0, bot.output()
    sent = tg.drain(chat.id)
    assert any("code is on its way" in m.text for m in sent), bot.output()
    assert "Traceback" not in bot.output()


async def test_a_rejected_token_stops_the_bot_with_status_1_and_no_token_in_the_output(
    processes: Callable[..., BotProcess],
) -> None:
    wrong = "987654:not-the-token-the-server-knows"
    bot = processes(TELEGRAM_BOT_TOKEN=wrong)
    bot.start()
    assert bot.process is not None
    status = await asyncio.to_thread(bot.process.wait, 60)
    assert status == 1, bot.output()
    assert "The bot stopped on an unexpected error" in bot.output()
    assert wrong not in bot.output()
    assert "not-the-token" not in bot.output()


class Balancer:
    """Plays Telegram in front of webhook processes: takes the fake's pending updates and
    posts them to the processes' webhook URLs."""

    def __init__(self, tg: FakeTelegram, urls: list[str]) -> None:
        self.tg = tg
        self.urls = urls
        self.http = aiohttp.ClientSession()

    async def post(self, update: dict[str, Any], to: int) -> int:
        async with self.http.post(
            self.urls[to], json=update, headers={SECRET_HEADER: HOOK_SECRET}
        ) as response:
            return response.status

    async def deliver(self, to: int) -> None:
        """Deliver everything pending to one process, in order."""
        for update in self.tg.take_updates():
            assert await self.post(update, to) == 200

    async def healthy(self, index: int, bot: BotProcess) -> None:
        health = self.urls[index].rsplit("/", 2)[0] + "/healthz"
        for _ in range(300):
            try:
                async with self.http.get(health) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"process {index} never became healthy:\n{bot.output()}")


@pytest.fixture
async def two_webhook_bots(
    tg: FakeTelegram, processes: Callable[..., BotProcess], database_url: str
) -> AsyncIterator[Balancer]:
    if not database_url.startswith("postgresql"):
        pytest.skip("several processes share a database only on PostgreSQL")
    urls = []
    bots = []
    for _ in range(2):
        port = _free_port()
        bot = processes(
            WEBHOOK_URL="https://bot.example/hook/tg",
            WEBHOOK_LISTEN="127.0.0.1",
            WEBHOOK_PORT=str(port),
            WEBHOOK_SECRET=HOOK_SECRET,
        )
        bot.start()
        bots.append(bot)
        urls.append(f"http://127.0.0.1:{port}/hook/tg")
    balancer = Balancer(tg, urls)
    for index, bot in enumerate(bots):
        await balancer.healthy(index, bot)
    yield balancer
    await balancer.http.close()


async def test_one_login_alternating_between_two_processes(
    tg: FakeTelegram,
    verify: FakeVerify,
    two_webhook_bots: Balancer,
    db: async_sessionmaker[AsyncSession],
) -> None:
    lb = two_webhook_bots
    tg.user(1001, "Ada")
    tg.send_text(1001, "/login")
    await lb.deliver(0)
    tg.send_text(1001, NUMBER)
    await lb.deliver(1)
    tg.send_text(1001, "000000" if verify.last_code() != "000000" else "111111")
    await lb.deliver(0)
    tg.send_text(1001, verify.last_code())
    await lb.deliver(1)
    texts = [m.text for m in tg.messages(1001)]
    assert "That code is not right. 2 tries left." in texts
    assert texts[-1] == "You are logged in as +44 7400 123123."
    assert await _verified(db) == [(1001, "+447400123123")]


async def test_same_chat_at_both_processes_at_once_starts_one_verification(
    tg: FakeTelegram,
    verify: FakeVerify,
    two_webhook_bots: Balancer,
) -> None:
    lb = two_webhook_bots
    tg.user(1001, "Ada")
    tg.send_text(1001, "/login")
    await lb.deliver(0)
    verify.latency = 0.5  # both processes are inside the chat's update at the same time
    tg.send_text(1001, NUMBER)
    tg.send_text(1001, NUMBER)
    first, second = tg.take_updates()
    statuses = await asyncio.gather(lb.post(first, 0), lb.post(second, 1))
    assert list(statuses) == [200, 200]
    assert len(verify.calls("start")) == 1
    answers = [m.text for m in tg.messages(1001)[1:]]
    assert sum("code is on its way" in text for text in answers) == 1
    # The other message was read as a (malformed) code, not as a second number.
    assert "The code is 6 digits, such as 123456. Please send just the digits." in answers


async def test_one_update_delivered_to_both_processes_is_acted_on_once(
    tg: FakeTelegram, verify: FakeVerify, two_webhook_bots: Balancer
) -> None:
    lb = two_webhook_bots
    tg.user(1001, "Ada")
    tg.send_text(1001, "/login")
    await lb.deliver(0)
    tg.send_text(1001, NUMBER)
    (update,) = tg.take_updates()
    verify.latency = 0.3
    assert list(await asyncio.gather(lb.post(update, 0), lb.post(update, 1))) == [200, 200]
    assert len(verify.calls("start")) == 1
    assert sum("code is on its way" in m.text for m in tg.messages(1001)) == 1
