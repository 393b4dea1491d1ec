"""The real `python -m bot` process: killed with SIGKILL in every state of the flow it
continues after a restart, SIGTERM lets it finish what it is doing and exits within 10 s
whatever Telegram does, and on PostgreSQL two processes behind a load balancer share the work
without ever acting twice, within a stock server's connections, and without ever admitting
more starts than a limit allows."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from bot.db.engine import APPLICATION_NAME
from bot.db.locks import LEASE_SECONDS
from bot.db.models import VerificationStart, VerifiedUser
from bot.demo.sandbox import FakeTelegram, FakeVerify, free_port
from bot.telegram.webhook import SECRET_HEADER
from tests.helpers import HASH_KEY, NUMBER, TOKEN, VONAGE_KEY, VONAGE_SECRET, Chat, scrape

HOOK_SECRET = "process-test-secret-0123456789"


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


@pytest.mark.parametrize("outage", [None, "429", "dropped", "hanging", "down"])
async def test_sigterm_finishes_the_update_in_flight_and_exits_0_within_10_s_whatever_telegram_does(
    tg: FakeTelegram, verify: FakeVerify, processes: Callable[..., BotProcess], outage: str | None
) -> None:
    bot = processes()
    chat = Chat(tg, 1001)
    bot.start()
    await _polling(tg, bot)
    await chat.send("/login")
    await tg.wait_for(lambda: tg.pending_updates == 0, 10)  # the next long poll is waiting
    polls = len(tg.calls_to("getUpdates"))
    # From the next poll on, Telegram cannot be reached for updates (the waiting poll still
    # brings the number, which is then in flight at Verify).
    if outage == "429":
        tg.fail_next("getUpdates", 429, retry_after=60, times=None)
    elif outage == "dropped":
        tg.drop_next("getUpdates", times=None)
    elif outage == "hanging":
        tg.hang_next("getUpdates", times=None)
    verify.latency = 2.0
    tg.send_text(chat.id, NUMBER)
    await tg.wait_for(lambda: len(verify.requests) == 1, 10)
    await tg.wait_for(lambda: len(tg.calls_to("getUpdates")) > polls, 10, bot.output)
    if outage == "down":
        await tg.stop()  # nothing of Telegram answers, not even the bot's replies
    started = time.monotonic()
    status = await bot.terminate()
    assert time.monotonic() - started < 10, bot.output()
    assert status == 0, bot.output()
    if outage != "down":
        assert any("code is on its way" in m.text for m in tg.messages(chat.id)), bot.output()
        assert "Traceback" not in bot.output()
    assert len(verify.calls("start")) == 1


async def test_log_format_json_and_metrics_port_shape_the_process_log_and_its_metrics(
    tg: FakeTelegram, verify: FakeVerify, processes: Callable[..., BotProcess]
) -> None:
    port = free_port()
    bot = processes(LOG_FORMAT="json", LOG_LEVEL="DEBUG", METRICS_PORT=str(port))
    chat = Chat(tg, 1001)
    bot.start()
    await _polling(tg, bot)
    await chat.send("/login")
    await chat.number(NUMBER)
    code = verify.last_code()
    assert await chat.say(code) == "You are logged in as +44 7400 123123."
    await chat.quiet()
    shown = await scrape(f"http://127.0.0.1:{port}/metrics")
    assert shown.value("phone_login_logins_total", outcome="completed") == 1
    assert await bot.terminate() == 0, bot.output()

    # The metrics server closed with the bot.
    with pytest.raises(aiohttp.ClientConnectionError):
        await scrape(f"http://127.0.0.1:{port}/metrics")
    output = bot.output()
    lines = [json.loads(line) for line in output.splitlines()]
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
    assert any(line["message"].startswith("Serving metrics on") for line in lines)
    assert any(line.get("outcome") == "verified" for line in lines)
    assert any(line["level"] == "DEBUG" for line in lines)
    for private in (TOKEN, VONAGE_SECRET, code, "447400123123", "7400123123"):
        assert private not in output, private


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


async def test_a_migration_that_fails_stops_the_start_with_status_1_and_no_password_shown(
    processes: Callable[..., BotProcess],
) -> None:
    password = "pa55-not-for-logs"
    bot = processes(DATABASE_URL=f"postgresql+asyncpg://bot:{password}@127.0.0.1:{free_port()}/x")
    bot.start()
    assert bot.process is not None
    status = await asyncio.to_thread(bot.process.wait, 60)
    assert status == 1, bot.output()
    assert "The database migration failed" in bot.output()
    assert password not in bot.output()


class Balancer:
    """Plays Telegram in front of webhook processes: takes the fake's pending updates and
    posts them to the processes' webhook URLs."""

    def __init__(self, tg: FakeTelegram, urls: list[str], bots: list[BotProcess]) -> None:
        self.tg = tg
        self.urls = urls
        self.bots = bots
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
async def webhook_bots(
    tg: FakeTelegram, processes: Callable[..., BotProcess], database_url: str
) -> AsyncIterator[Callable[..., Any]]:
    """Start webhook processes on the shared PostgreSQL database, behind one `Balancer`."""
    if not database_url.startswith("postgresql"):
        pytest.skip("several processes share a database only on PostgreSQL")
    balancers: list[Balancer] = []

    async def start(count: int = 2, **extra: str) -> Balancer:
        urls = []
        bots = []
        for _ in range(count):
            port = free_port()
            bot = processes(
                WEBHOOK_URL="https://bot.example/hook/tg",
                WEBHOOK_LISTEN="127.0.0.1",
                WEBHOOK_PORT=str(port),
                WEBHOOK_SECRET=HOOK_SECRET,
                **extra,
            )
            bot.start()
            bots.append(bot)
            urls.append(f"http://127.0.0.1:{port}/hook/tg")
        balancer = Balancer(tg, urls, bots)
        balancers.append(balancer)
        for index, bot in enumerate(bots):
            await balancer.healthy(index, bot)
        return balancer

    yield start
    for balancer in balancers:
        await balancer.http.close()


@pytest.fixture
async def two_webhook_bots(webhook_bots: Callable[..., Any]) -> Balancer:
    """Two webhook processes with the default settings."""
    balancer: Balancer = await webhook_bots()
    return balancer


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


@pytest.mark.parametrize("concurrency", ["256", "1"])
async def test_one_update_delivered_to_both_processes_is_acted_on_once(
    tg: FakeTelegram, verify: FakeVerify, webhook_bots: Callable[..., Any], concurrency: str
) -> None:
    # MAX_CONCURRENT_UPDATES=1 (python-telegram-bot's sequential processing elsewhere) keeps
    # the cross-process ordering and duplicate detection too.
    lb: Balancer = await webhook_bots(MAX_CONCURRENT_UPDATES=concurrency)
    tg.user(1001, "Ada")
    tg.send_text(1001, "/login")
    await lb.deliver(0)
    tg.send_text(1001, NUMBER)
    (update,) = tg.take_updates()
    verify.latency = 0.3
    assert list(await asyncio.gather(lb.post(update, 0), lb.post(update, 1))) == [200, 200]
    assert len(verify.calls("start")) == 1
    assert sum("code is on its way" in m.text for m in tg.messages(1001)) == 1


class ConnectionWatch:
    """Samples how many server connections the bots have open to the test database (the
    test's own connections, such as this one's and the `db` fixture's, do not count)."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_async_engine(database_url, pool_size=1, max_overflow=0)
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def now(self) -> int:
        async with self.engine.connect() as connection:
            return int(
                await connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name = :name"
                    ),
                    {"name": APPLICATION_NAME},
                )
                or 0
            )

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, await self.now())
            await asyncio.sleep(0.05)

    def __enter__(self) -> ConnectionWatch:
        self._task = asyncio.create_task(self._sample())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_a_burst_of_200_chats_at_two_processes_fits_a_stock_server(
    tg: FakeTelegram,
    verify: FakeVerify,
    webhook_bots: Callable[..., Any],
    database_url: str,
    db: async_sessionmaker[AsyncSession],
) -> None:
    pool_size = 10
    lb: Balancer = await webhook_bots(DATABASE_POOL_SIZE=str(pool_size))
    chats = list(range(3001, 3201))
    numbers = {chat: f"+4474004{chat:05d}" for chat in chats}
    for chat in chats:
        tg.user(chat, f"User {chat}")

    async def everyone(say: Callable[[int], str]) -> None:
        for chat in chats:
            tg.send_text(chat, say(chat))
        updates = tg.take_updates()
        # Round robin, all at once: both processes have a hundred updates in hand together.
        statuses = await asyncio.gather(
            *(lb.post(update, index % 2) for index, update in enumerate(updates))
        )
        assert statuses == [200] * len(chats)

    watch = ConnectionWatch(database_url)
    try:
        with watch:
            await everyone(lambda _: "/login")
            verify.latency = 0.5  # every process holds all its chats at once
            await everyone(lambda chat: numbers[chat])
            verify.latency = 0
            await everyone(lambda chat: verify.last_code(to=numbers[chat]))
        after = await watch.now()
    finally:
        await watch.engine.dispose()
    logins = dict(await _verified(db))
    assert logins == numbers, f"{len(chats) - len(logins)} chats not logged in"
    # Each process stays within its pool, during the burst and after it.
    assert 0 < watch.peak <= 2 * pool_size
    assert after <= 2 * pool_size


async def test_a_frozen_process_keeps_its_chat_only_until_its_claim_lapses(
    tg: FakeTelegram, verify: FakeVerify, webhook_bots: Callable[..., Any]
) -> None:
    lb: Balancer = await webhook_bots()
    tg.user(1001, "Ada")
    tg.send_text(1001, "/login")
    await lb.deliver(0)
    verify.latency = 3
    tg.send_text(1001, NUMBER)
    (number,) = tg.take_updates()
    first = asyncio.create_task(lb.post(number, 0))
    await tg.wait_for(lambda: len(verify.requests) == 1, 10)  # process 0 holds the chat
    frozen = lb.bots[0].process
    assert frozen is not None
    frozen.send_signal(signal.SIGSTOP)  # alive, connections open, doing nothing
    try:
        tg.send_text(1001, "/cancel")
        (cancel,) = tg.take_updates()
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(lb.post(cancel, 1), 30) == 200
        waited = asyncio.get_running_loop().time() - started
    finally:
        frozen.send_signal(signal.SIGCONT)
    assert tg.messages(1001)[-1].text == "Login cancelled."
    assert waited < LEASE_SECONDS + 5
    assert await asyncio.wait_for(first, 30) == 200


async def test_a_pool_the_server_cannot_fit_stops_the_start_with_one_line(
    processes: Callable[..., BotProcess], database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no connection budget")
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        max_connections = int(await connection.scalar(text("SHOW max_connections")) or 0)
    await engine.dispose()
    bot = processes(DATABASE_POOL_SIZE=str(max_connections))
    bot.start()
    assert bot.process is not None
    assert await asyncio.to_thread(bot.process.wait, 60) == 2, bot.output()
    (line,) = [line for line in bot.output().splitlines() if "DATABASE_POOL_SIZE" in line]
    assert line.startswith(
        f"Configuration error: DATABASE_POOL_SIZE ({max_connections}) does not fit the "
        f"database server: max_connections is {max_connections}, "
    )
    assert "Traceback" not in bot.output()


async def test_two_processes_racing_for_the_last_global_slot_admit_one_start(
    tg: FakeTelegram,
    verify: FakeVerify,
    webhook_bots: Callable[..., Any],
    database_url: str,
    db: async_sessionmaker[AsyncSession],
) -> None:
    lb: Balancer = await webhook_bots(LIMIT_GLOBAL_STARTS_PER_HOUR="5")
    chats = list(range(4001, 4007))
    for chat in chats:
        tg.user(chat, f"User {chat}")
        tg.send_text(chat, "/login")
    await lb.deliver(0)
    for index, chat in enumerate(chats[:4]):  # four starts count: one slot is left
        tg.send_text(chat, f"+4474005{chat:05d}")
        await lb.deliver(index % 2)
    for chat in chats[4:]:
        tg.send_text(chat, f"+4474005{chat:05d}")
    racers = tg.take_updates()
    engine = create_async_engine(database_url)
    try:
        # While the test holds the starts table, each process's admission gets as far as it
        # can before it writes: both are then in flight together, the race at its widest.
        async with engine.connect() as holder, engine.connect() as watcher:
            await holder.execute(text("LOCK TABLE verification_starts IN EXCLUSIVE MODE"))
            posts = asyncio.gather(lb.post(racers[0], 0), lb.post(racers[1], 1))
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            for _ in range(200):
                if int(await watcher.scalar(waiting) or 0) >= 2:
                    break
                await asyncio.sleep(0.05)
            await holder.commit()
            assert list(await posts) == [200, 200]
    finally:
        await engine.dispose()
    async with db() as session:
        counted = await session.scalar(select(func.count()).select_from(VerificationStart))
    assert counted == 5
    assert len(verify.calls("start")) == 5
    answers = ["\n".join(m.text for m in tg.messages(chat)[1:]) for chat in chats[4:]]
    assert sum("code is on its way" in answer for answer in answers) == 1, answers
    assert sum("too many login requests" in answer for answer in answers) == 1, answers
