"""Load benchmark: the real `python -m bot` process against the wire-level fakes.

    .venv/bin/python bench/run.py --scenario numbers          # 100 users, Verify takes 1 s
    .venv/bin/python bench/run.py --scenario logins           # 200 whole logins, instant Verify
    make bench BENCH_ARGS='--scenario logins --repeat 3'
    .venv/bin/python bench/run.py --scenario admin --users 1000000 --events 10000000

FakeTelegram and FakeVerify run in this process's event loop; the bot is a separate process
(`sys.executable -m bot`, its own temp working directory, so no `.env` is read) that migrates a
fresh database and polls the fake. Simulated users talk to it through the fake; every reply is
timestamped by the fake's `on_message` hook, and the latency of an update is the time from
enqueueing it to the bot's first reply to that chat after it. The bot's CPU time (user+system,
all threads) is read with psutil just before and after the measured phase; its RSS is sampled
every 50 ms (and VmHWM, the kernel's peak since the process started, is read at the end).

By default every run is done twice, with a fresh bot process and database each time: once with
the default concurrent processing and once with MAX_CONCURRENT_UPDATES=1 (python-telegram-bot's
own sequential processing), so the CPU ratio is measured side by side. Not part of the tests.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `bot.demo.sandbox` importable
    sys.path.insert(0, str(REPO))

from bot.demo.sandbox import FakeTelegram, FakeVerify, SentMessage, VerifyCall  # noqa: E402

TOKEN = "424242:BENCH-token-abcdefghijklmnopqrstuv"  # noqa: S105
HASH_KEY = "bench-number-hash-key-0123456789abcdef"
VONAGE_KEY = "benchkey"
VONAGE_SECRET = "bench-secret-value"  # noqa: S105
FIRST_USER_ID = 5_000_001
WARMUP_USER_ID = 9_000_001
WARMUP_NUMBER_INDEX = 50_000

# What each step's answer contains, in this bot's words and in the tutorial bot's (--peer).
ASK_NUMBER_MARKS = ("phone number",)
CODE_SENT_MARKS = ("code is on its way", "Code sent")
LOGGED_IN_MARKS = ("You are logged in as", "Logged in")

#: The runs of a repeat: this bot with concurrent processing, with PTB's sequential
#: processing, with the flood limiter at its default, and the bot of `--peer DIR`.
CONCURRENT = "concurrent"
SEQUENTIAL = "sequential"
LIMITER = "limiter"
PEER = "peer"

#: Bot API methods that put a message in front of the user (sent, or changed in place).
MESSAGE_METHODS = frozenset(
    {
        "sendMessage",
        "editMessageText",
        "editMessageReplyMarkup",
        "editMessageCaption",
        "sendPhoto",
        "sendDocument",
        "sendContact",
    }
)
DELETE_METHODS = frozenset({"deleteMessage", "deleteMessages"})


def number_of(index: int) -> tuple[str, str]:
    """A valid UK mobile number for user `index`: (as typed, E.164 digits)."""
    local = 100_000 + index
    return f"+44 7400 {local:06d}", f"447400{local:06d}"


# ---------------------------------------------------------------------------------------
# what the bot says, timestamped
# ---------------------------------------------------------------------------------------


class Inbox:
    """Every new bot message per chat, with the `perf_counter()` time the fake received it."""

    def __init__(self) -> None:
        self.messages: dict[int, list[tuple[float, str]]] = defaultdict(list)
        self._events: dict[int, asyncio.Event] = {}

    def on_message(self, sent: SentMessage) -> None:
        if sent.edited:  # edits are not answers
            return
        self.messages[sent.chat_id].append((time.perf_counter(), sent.plain_text))
        event = self._events.pop(sent.chat_id, None)
        if event is not None:
            event.set()

    async def wait(self, chat_id: int, count: int) -> list[tuple[float, str]]:
        """Wait until the chat holds at least `count` bot messages (callers bound the time)."""
        box = self.messages[chat_id]
        while len(box) < count:
            event = self._events.get(chat_id)
            if event is None:
                event = self._events[chat_id] = asyncio.Event()
            await event.wait()
        return box

    async def wait_mark(self, chat_id: int, start: int, marks: Sequence[str]) -> float:
        """Wait until a bot message from index `start` on contains one of `marks`; returns
        when it arrived. The answer is found by its words, not by its position: bots differ
        in how many messages a step sends, and a step's last one may arrive after the user
        has already read its first (callers bound the time)."""
        seen = start
        while True:
            box = await self.wait(chat_id, seen + 1)
            for at, text in box[seen:]:
                if any(mark in text for mark in marks):
                    return at
            seen = len(box)

    def texts_from(self, chat_id: int, start: int) -> str:
        """What the bot said to the chat from index `start` on, shortened (for failures)."""
        return " | ".join(text[:60] for _, text in self.messages[chat_id][start:]) or "nothing"


class TimedCalls(list[VerifyCall]):
    """FakeVerify.requests, also noting when each request arrived (for the breakdown)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[float] = []

    def append(self, call: VerifyCall) -> None:
        self.arrived.append(time.perf_counter())
        super().append(call)

    def start_times(self) -> dict[str, float]:
        """E.164 digits -> when the (last) start request for that number arrived."""
        found: dict[str, float] = {}
        for call, at in zip(self, self.arrived, strict=True):
            body = call.json_body
            if call.kind == "start" and isinstance(body, dict) and body.get("workflow"):
                found[str(body["workflow"][0].get("to", ""))] = at
        return found


# ---------------------------------------------------------------------------------------
# the bot process
# ---------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark dies (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class RssSampler(threading.Thread):
    """Samples a process's RSS every `every` seconds; `peak` is the largest seen."""

    def __init__(self, process: psutil.Process, every: float = 0.05) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.process = process
        self.every = every
        self.peak = 0
        #: (perf_counter, CPU seconds) every `every` seconds
        self.cpu: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss)
                self.cpu.append((time.perf_counter(), cpu_seconds(self.process)))
            self._stop_event.wait(self.every)

    def cpu_at(self, moment: float) -> float:
        """The process's CPU seconds at `moment` (perf_counter), from the nearest samples."""
        earlier = [cpu for at, cpu in self.cpu if at <= moment]
        return earlier[-1] if earlier else float("nan")

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=2)


def vm_hwm(pid: int) -> int | None:
    """Peak resident set size since the process started (VmHWM), in bytes; None if unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used (all cores)."""
    t = psutil.cpu_times()
    return float(
        sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))
    )


def main_thread_cpu(process: psutil.Process) -> float:
    """CPU seconds of the process's main thread (the bot's event loop); NaN if unknown."""
    try:
        for thread in process.threads():
            if thread.id == process.pid:
                return float(thread.user_time + thread.system_time)
    except psutil.Error:
        pass
    return float("nan")


class BotProcess:
    """`python -m bot` as a child process, with its output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.argv = argv
        self.env = env
        self.workdir = workdir
        self.log_path = workdir / "bot.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.process: psutil.Process | None = None  # the Python running the bot
        self.exit_code: int | None = None

    async def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        self.process = psutil.Process(self.proc.pid)

    def find_bot_python(self) -> None:
        """With a wrapper (--bot-prefix) the bot is a descendant: measure that one."""
        assert self.process is not None
        with contextlib.suppress(psutil.Error):
            for child in self.process.children(recursive=True):
                cmdline = child.cmdline()
                if "-m" in cmdline and "bot" in cmdline:
                    self.process = child
                    return

    async def stop(self, timeout: float = 20.0) -> int | None:  # noqa: ASYNC109
        """SIGTERM (PTB shuts down cleanly), then SIGKILL after `timeout`; the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, psutil.Error):
                if self.process is not None and self.process.pid != proc.pid:
                    self.process.send_signal(signal.SIGTERM)  # the bot under a wrapper
                else:
                    proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self.exit_code = proc.returncode
        return self.exit_code

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def log_problems(self) -> int:
        """Lines the bot logged at WARNING or above (LOG_LEVEL=WARNING: every line but
        tracebacks' continuation lines)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return 0
        return sum(
            1 for line in text.splitlines() if any(k in line for k in ("WARNING", "ERROR", "CRIT"))
        )


# ---------------------------------------------------------------------------------------
# databases
# ---------------------------------------------------------------------------------------


async def fresh_database(server_url: str | None, workdir: Path) -> tuple[str, Callable[[], Any]]:
    """A new empty database: an SQLite file in `workdir`, or a new database on the PostgreSQL
    server `server_url`. Returns its URL and an async function dropping it."""
    if server_url is None:
        url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"

        async def nothing() -> None:
            return None

        return url, nothing

    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except BaseException:
        await admin.dispose()
        raise

    async def drop() -> None:
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            await admin.dispose()

    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return url, drop


# ---------------------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------------------


@dataclass
class RunResult:
    mode: str
    repeat: int
    users: int
    ok: int = 0
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    step_latencies: dict[str, list[float]] = field(default_factory=dict)
    cpu: float = 0.0
    loop_cpu: float = 0.0
    sys_cpu: float = 0.0
    switches: int = 0
    other_cpu: float = 0.0
    phase_start: float = 0.0
    last_start_at: float | None = None
    pre_verify_cpu: float = float("nan")
    bench_cpu: float = 0.0
    peak_rss: int = 0
    hwm: int | None = None
    polls: int = 0
    verify_calls: int = 0
    verify_connections: int = 0
    failures: list[str] = field(default_factory=list)
    log_problems: int = 0
    exit_code: int | None = None
    messages: int = 0  # messages the bot sent or edited during the measured phase
    deletions: int = 0  # messages it deleted then
    end_rss: int = 0  # RSS once the measured phase is over
    start_rss: int = 0  # RSS as the measured phase began (`pending`)

    @property
    def messages_per_user(self) -> float:
        return self.messages / self.ok if self.ok else float("nan")

    @property
    def deletions_per_user(self) -> float:
        return self.deletions / self.ok if self.ok else float("nan")

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall > 0 else 0.0

    @property
    def cpu_ms_per_user(self) -> float:
        return 1000 * self.cpu / self.ok if self.ok else float("nan")


class BotDidNotStart(Exception):
    pass


@dataclass
class Options:
    scenario: str
    users: int
    latency: float
    modes: list[str]
    repeat: int
    database_url: str | None
    telegram_port: int
    verify_port: int
    start_timeout: float
    timeout: float | None
    bot_dir: Path
    bot_prefix: list[str]
    bot_env: dict[str, str]
    profile_dir: Path | None
    keep: bool
    verbose: bool
    warmup: int
    py_spy: Path | None
    py_spy_args: list[str]
    peer: Path | None = None
    peer_python: str | None = None
    events: int = 0


def phase_timeout(opts: Options, mode: str) -> float:
    """How long the measured phase may take before the users still waiting count as failed."""
    if opts.timeout is not None:
        return opts.timeout
    if opts.scenario == "pending":  # per wave of users
        return 60 + 3 * PENDING_WAVE * (opts.latency + 0.05)
    calls = 2 if opts.scenario == "logins" else 1  # Verify calls per user in the phase
    per_user = calls * opts.latency + 0.05 * (3 if opts.scenario == "logins" else 1)
    if mode in (SEQUENTIAL, PEER):  # the tutorial bot is sequential
        return 60 + 3 * opts.users * per_user
    return 60 + 3 * calls * opts.latency


async def run_once(opts: Options, mode: str, repeat: int) -> RunResult:
    result = RunResult(mode=mode, repeat=repeat, users=opts.users)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{mode}-"))
    tg = FakeTelegram(token=TOKEN, bot_username="BenchLoginBot", port=opts.telegram_port)
    verify = FakeVerify(api_key=VONAGE_KEY, api_secret=VONAGE_SECRET, port=opts.verify_port)
    verify.latency = opts.latency
    verify.requests = TimedCalls()
    inbox = Inbox()
    tg.on_message = inbox.on_message
    bot: BotProcess | None = None
    sampler: RssSampler | None = None
    drop_database: Callable[[], Any] | None = None
    spy: asyncio.subprocess.Process | None = None
    try:
        await tg.start()
        await verify.start()
        database_url, drop_database = await fresh_database(opts.database_url, workdir)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_BASE_URL": tg.base_url,
            "VONAGE_API_KEY": VONAGE_KEY,
            "VONAGE_API_SECRET": VONAGE_SECRET,
            "VONAGE_API_HOST": verify.host,
            "NUMBER_HASH_KEY": HASH_KEY,
            "REQUESTS_CA_BUNDLE": str(verify.ca_path),
            "DATABASE_URL": database_url,
            "LIMIT_COOLDOWN_SECONDS": "0",
            "LIMIT_STARTS_PER_HOUR": "1000000",
            "LIMIT_STARTS_PER_DAY": "1000000",
            "LIMIT_GLOBAL_STARTS_PER_HOUR": "1000000",
            # our side of Telegram's flood limit would otherwise dominate every figure
            "TELEGRAM_MAX_MESSAGES_PER_SECOND": "0",
            "LOG_LEVEL": "WARNING",
            "VONAGE_MAX_CONCURRENCY": str(min(max(opts.users, 64), 1024)),
        }
        python = sys.executable
        if mode == PEER:
            assert opts.peer is not None
            assert opts.peer_python is not None
            python = opts.peer_python
            if is_this_project(opts.peer):
                env["PYTHONPATH"] = str(opts.peer)
        elif opts.bot_dir != REPO:
            env["PYTHONPATH"] = str(opts.bot_dir)
        if mode == SEQUENTIAL:
            env["MAX_CONCURRENT_UPDATES"] = "1"
        env.update(opts.bot_env)
        if mode == LIMITER:
            env["TELEGRAM_MAX_MESSAGES_PER_SECOND"] = default_flood_limit()
        argv = [*opts.bot_prefix, python]
        if opts.profile_dir is not None:
            out = opts.profile_dir / f"{opts.scenario}-{mode}-{repeat}.prof"
            argv += ["-m", "cProfile", "-o", str(out)]
        argv += ["-m", "bot"]

        bot = BotProcess(argv, env, workdir)
        await bot.start()
        await _wait_polling(tg, bot, opts.start_timeout)
        if opts.bot_prefix:
            bot.find_bot_python()
        assert bot.process is not None
        sampler = RssSampler(bot.process)
        sampler.start()

        await warm_up(opts, tg, verify, inbox)
        if opts.py_spy is not None:
            spy = await _start_py_spy(opts, opts.py_spy, mode, repeat, bot.process.pid, workdir)
        scenario = SCENARIOS[opts.scenario]
        try:
            await scenario(opts, mode, tg, verify, inbox, bot.process, result)
        finally:
            if spy is not None:
                await _stop_py_spy(spy)
        if result.last_start_at is not None:
            # bot CPU from the numbers going out to the last Verify start arriving
            result.pre_verify_cpu = sampler.cpu_at(result.last_start_at) - sampler.cpu_at(
                result.phase_start
            )

        with contextlib.suppress(psutil.Error):
            result.end_rss = bot.process.memory_info().rss
        result.peak_rss = sampler.peak
        result.hwm = vm_hwm(bot.process.pid)
        result.verify_calls = len(verify.requests)
        result.verify_connections = len({c.client_port for c in verify.requests if c.client_port})
    finally:
        if sampler is not None:
            sampler.stop()
            result.peak_rss = max(result.peak_rss, sampler.peak)
        if bot is not None:
            result.exit_code = await bot.stop()
            result.log_problems = bot.log_problems()
            if result.exit_code not in (0, None):
                result.failures.append(f"the bot exited with status {result.exit_code}")
            polling = sampler is not None  # else BotDidNotStart shows the log already
            if polling and (
                result.exit_code not in (0, None) or (opts.verbose and result.log_problems)
            ):
                print(f"--- bot log ({mode} #{repeat}, exit {result.exit_code}) ---")
                print(bot.log_tail())
        await tg.stop()
        await verify.stop()
        if drop_database is not None:
            with contextlib.suppress(Exception):
                await drop_database()
        if opts.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


async def _start_py_spy(
    opts: Options, out_dir: Path, mode: str, repeat: int, pid: int, workdir: Path
) -> asyncio.subprocess.Process:
    """py-spy sampling the bot during the measured phase only (collapsed stacks, all threads,
    non-idle samples): OUT_DIR/<scenario>-<mode>-<n>.txt, e.g. for flamegraph.pl."""
    out = out_dir / f"{opts.scenario}-{mode}-{repeat}.txt"
    binary = shutil.which("py-spy") or os.environ.get("PY_SPY", "py-spy")
    with (workdir / "py-spy.log").open("wb") as log:
        spy = await asyncio.create_subprocess_exec(
            binary,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--threads",
            "--output",
            str(out),
            *opts.py_spy_args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    await asyncio.sleep(1.0)  # attaching takes a moment
    if spy.returncode is not None:
        raise BotDidNotStart(f"py-spy exited at once: {(workdir / 'py-spy.log').read_text()}")
    return spy


async def _stop_py_spy(spy: asyncio.subprocess.Process) -> None:
    if spy.returncode is None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    try:
        await asyncio.wait_for(spy.wait(), 30)
    except TimeoutError:
        spy.kill()
        await spy.wait()


async def _wait_polling(tg: FakeTelegram, bot: BotProcess, timeout: float) -> None:  # noqa: ASYNC109
    """Until the bot's first getUpdates (it is polling), or it exits, or `timeout`."""
    assert bot.proc is not None
    polling = asyncio.ensure_future(
        tg.wait_for(lambda: any(c.method == "getUpdates" for c in tg.calls), timeout)
    )
    exited = asyncio.ensure_future(bot.proc.wait())
    done, _ = await asyncio.wait({polling, exited}, return_when=asyncio.FIRST_COMPLETED)
    for task in (polling, exited):
        if task not in done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await task
    if polling in done and polling.exception() is None:
        return
    if bot.proc.returncode is not None:
        what = f"the bot exited with status {bot.proc.returncode} before polling"
    else:
        what = f"the bot did not start polling within {timeout:g}s"
    raise BotDidNotStart(f"{what}; its log ends with:\n{bot.log_tail()}")


async def _bounded(
    coroutines: Sequence[Awaitable[Any]],
    limit: float,
    result: RunResult,
    what: str,
) -> None:
    """Run the users' coroutines at once; those not done within `limit` seconds have failed."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    _, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if pending:
        result.failures.append(f"{len(pending)} users not done ({what}) within {limit:g}s")


def _note_unanswered(
    result: RunResult,
    inbox: Inbox,
    since: dict[int, int],
    what: str,
    marks: Sequence[str],
    shown: int = 5,
) -> None:
    """A failure line for the first few users whose step got no answer with its words."""
    for user_id, seen in since.items():
        if shown <= 0:
            return
        if not any(
            any(mark in text for mark in marks) for _, text in inbox.messages[user_id][seen:]
        ):
            result.failures.append(
                f"{what} of {user_id} answered {inbox.texts_from(user_id, seen)!r}"
            )
            shown -= 1


def _polls(tg: FakeTelegram) -> int:
    return sum(1 for call in tg.calls if call.method == "getUpdates")


class Meter:
    """CPU and friends over the measured phase: created at its start, `stop` at its end."""

    def __init__(self, process: psutil.Process, tg: FakeTelegram) -> None:
        self.process = process
        self.tg = tg
        self.polls = _polls(tg)
        self.first_call = len(tg.calls)
        self.switches = self._switches()
        self.machine = machine_busy_seconds()
        self.bench = time.process_time()
        self.loop = main_thread_cpu(process)
        self.times = process.cpu_times()

    def _switches(self) -> int:
        switches = self.process.num_ctx_switches()
        return int(switches.voluntary + switches.involuntary)

    def stop(self, result: RunResult) -> None:
        times = self.process.cpu_times()
        result.cpu = (times.user + times.system) - (self.times.user + self.times.system)
        result.sys_cpu = times.system - self.times.system
        result.loop_cpu = main_thread_cpu(self.process) - self.loop
        result.switches = self._switches() - self.switches
        result.bench_cpu = time.process_time() - self.bench
        result.other_cpu = machine_busy_seconds() - self.machine - result.cpu - result.bench_cpu
        result.polls = _polls(self.tg) - self.polls
        methods = [call.method for call in self.tg.calls[self.first_call :]]
        result.messages = sum(1 for method in methods if method in MESSAGE_METHODS)
        result.deletions = sum(1 for method in methods if method in DELETE_METHODS)


# ---------------------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------------------


async def warm_up(opts: Options, tg: FakeTelegram, verify: FakeVerify, inbox: Inbox) -> None:
    """`--warmup` users (default 1) log in, all at once, not measured: the first updates of a
    fresh process pay for lazy imports and first connections, which is not what we measure."""
    limit = 60 + 4 * opts.latency + (opts.warmup * (2 * opts.latency + 0.2))

    async def login(index: int) -> None:
        user_id = WARMUP_USER_ID + index
        typed, digits = number_of(WARMUP_NUMBER_INDEX + index)
        for text, marks in (
            ("/login", ASK_NUMBER_MARKS),
            (typed, CODE_SENT_MARKS),
            (None, LOGGED_IN_MARKS),
        ):
            seen = len(inbox.messages[user_id])
            tg.send_text(user_id, text if text is not None else verify.last_code(to=digits))
            try:
                async with asyncio.timeout(limit):
                    await inbox.wait_mark(user_id, seen, marks)
            except TimeoutError:
                said = inbox.texts_from(user_id, seen)
                raise BotDidNotStart(f"warm-up login failed: the bot answered {said!r}") from None

    if opts.warmup:
        await asyncio.gather(*(login(i) for i in range(opts.warmup)))
    await tg.wait_idle(timeout=limit)


async def numbers_scenario(
    opts: Options,
    mode: str,
    tg: FakeTelegram,
    verify: FakeVerify,
    inbox: Inbox,
    process: psutil.Process,
    result: RunResult,
) -> None:
    """Everybody is asked for their number (not measured), then all send it at the same
    moment; measured: number sent -> "code is on its way"."""
    users = [FIRST_USER_ID + i for i in range(opts.users)]
    for user_id in users:
        tg.user(user_id, f"User{user_id}")

    async def ask(user_id: int) -> None:
        tg.send_text(user_id, "/login")
        await inbox.wait_mark(user_id, 0, ASK_NUMBER_MARKS)

    limit = phase_timeout(opts, mode)
    await _bounded([ask(u) for u in users], limit, result, "/login, not measured")
    if result.failures:
        return
    await tg.wait_idle(timeout=limit)

    sent_at: dict[int, float] = {}
    asked = {user_id: len(inbox.messages[user_id]) for user_id in users}
    answered: list[float] = []

    async def number(user_id: int) -> None:
        at = await inbox.wait_mark(user_id, asked[user_id], CODE_SENT_MARKS)
        result.latencies.append(at - sent_at[user_id])
        result.ok += 1
        answered.append(at)

    meter = Meter(process, tg)
    waiting = [number(u) for u in users]
    start = time.perf_counter()
    for index, user_id in enumerate(users):  # all at once: one loop turn, one getUpdates
        sent_at[user_id] = time.perf_counter()
        tg.send_text(user_id, number_of(index)[0])
    await _bounded(waiting, limit, result, "number")
    _note_unanswered(result, inbox, asked, "number", CODE_SENT_MARKS)
    result.wall = (max(answered) - start) if answered else 0.0
    with contextlib.suppress(TimeoutError):
        await tg.wait_idle(timeout=10)
    meter.stop(result)
    result.step_latencies = {"number": list(result.latencies)}
    if isinstance(verify.requests, TimedCalls):
        # where the time goes: number sent -> Verify start arrives; Verify answered -> reply
        starts = verify.requests.start_times()
        before: list[float] = []
        after: list[float] = []
        for index, user_id in enumerate(users):
            at = starts.get(number_of(index)[1])
            box = inbox.messages[user_id]
            if at is None or len(box) <= asked[user_id]:
                continue
            before.append(at - sent_at[user_id])
            after.append(box[asked[user_id]][0] - at - opts.latency)
        result.step_latencies["sent->Verify"] = before
        result.phase_start = start
        result.last_start_at = max(starts.values()) if starts else None
        result.step_latencies["Verify done->reply"] = after


async def logins_scenario(
    opts: Options,
    mode: str,
    tg: FakeTelegram,
    verify: FakeVerify,
    inbox: Inbox,
    process: psutil.Process,
    result: RunResult,
) -> None:
    """All users at once, each a whole login: /login -> number -> code -> logged in."""
    users = [FIRST_USER_ID + i for i in range(opts.users)]
    for user_id in users:
        tg.user(user_id, f"User{user_id}")
    steps: dict[str, list[float]] = {"/login": [], "number": [], "code": []}
    finished: list[float] = []

    # Where the step a user is waiting for began in the chat (for failures).
    waiting: dict[int, tuple[str, int]] = {}

    async def step(user_id: int, text: str, name: str, marks: Sequence[str]) -> float:
        waiting[user_id] = (name, len(inbox.messages[user_id]))
        sent = time.perf_counter()
        tg.send_text(user_id, text)
        at = await inbox.wait_mark(user_id, waiting[user_id][1], marks)
        steps[name].append(at - sent)
        result.latencies.append(at - sent)
        return at

    async def login(index: int, user_id: int) -> None:
        typed, digits = number_of(index)
        await step(user_id, "/login", "/login", ASK_NUMBER_MARKS)
        await step(user_id, typed, "number", CODE_SENT_MARKS)
        code = verify.last_code(to=digits)
        finished.append(await step(user_id, code, "code", LOGGED_IN_MARKS))
        del waiting[user_id]
        result.ok += 1

    limit = phase_timeout(opts, mode)
    meter = Meter(process, tg)
    start = time.perf_counter()
    await _bounded([login(i, u) for i, u in enumerate(users)], limit, result, "login")
    for user_id, (name, seen) in list(waiting.items())[:5]:
        result.failures.append(f"{name} of {user_id} answered {inbox.texts_from(user_id, seen)!r}")
    result.wall = (max(finished) - start) if finished else 0.0
    with contextlib.suppress(TimeoutError):
        await tg.wait_idle(timeout=10)
    meter.stop(result)
    result.step_latencies = steps


async def pending_scenario(
    opts: Options,
    mode: str,
    tg: FakeTelegram,
    verify: FakeVerify,
    inbox: Inbox,
    process: psutil.Process,
    result: RunResult,
) -> None:
    """Users start logins and leave them waiting for the code, PENDING_WAVE at a time:
    /login, then the number, up to "code is on its way". Measured: the bot's RSS before and
    after, for the memory a waiting flow holds."""
    users = [FIRST_USER_ID + i for i in range(opts.users)]
    for user_id in users:
        tg.user(user_id, f"User{user_id}")
    result.start_rss = process.memory_info().rss

    async def start(index: int, user_id: int) -> None:
        tg.send_text(user_id, "/login")
        await inbox.wait_mark(user_id, 0, ASK_NUMBER_MARKS)
        asked = len(inbox.messages[user_id])
        tg.send_text(user_id, number_of(index)[0])
        await inbox.wait_mark(user_id, asked, CODE_SENT_MARKS)
        result.ok += 1

    limit = phase_timeout(opts, mode)
    meter = Meter(process, tg)
    begun = time.perf_counter()
    for first in range(0, len(users), PENDING_WAVE):
        wave = list(enumerate(users))[first : first + PENDING_WAVE]
        await _bounded([start(i, u) for i, u in wave], limit, result, "pending login")
        if result.failures:
            break
    result.wall = time.perf_counter() - begun
    with contextlib.suppress(TimeoutError):
        await tg.wait_idle(timeout=10)
    meter.stop(result)


# Users starting their logins at once in the `pending` scenario.
PENDING_WAVE = 500

# Not a scenario of the bot process: a big database and the admin answers on it.
ADMIN = "admin"

SCENARIOS: dict[str, Callable[..., Awaitable[None]]] = {
    "numbers": numbers_scenario,
    "logins": logins_scenario,
    "pending": pending_scenario,
}


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`; NaN if empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n*q/100), at least 1
    return ordered[int(rank) - 1]


def _mb(value: int | None) -> str:
    return f"{value / 2**20:.1f}" if value else "?"


def print_table(opts: Options, results: list[RunResult]) -> None:
    unit = "login" if opts.scenario == "logins" else "number"
    headers = [
        "mode",
        "users",
        "ok",
        "wall s",
        f"{unit}s/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        f"CPU ms/{unit}",
        f"msgs/{unit}",
        f"del/{unit}",
        "RSS MB",
        "peak RSS MB",
        "VmHWM MB",
    ]
    rows = []
    for r in results:
        lat = [1000 * x for x in r.latencies]
        rows.append(
            [
                f"{r.mode} #{r.repeat}",
                str(r.users),
                str(r.ok),
                f"{r.wall:.2f}",
                f"{r.rate:.1f}",
                f"{percentile(lat, 50):.0f}",
                f"{percentile(lat, 95):.0f}",
                f"{percentile(lat, 99):.0f}",
                f"{max(lat):.0f}" if lat else "nan",
                f"{r.cpu_ms_per_user:.2f}",
                f"{r.messages_per_user:.2f}",
                f"{r.deletions_per_user:.2f}",
                _mb(r.end_rss),
                _mb(r.peak_rss),
                _mb(r.hwm),
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    line = "  ".join(
        h.rjust(w) if i else h.ljust(w)
        for i, (h, w) in enumerate(zip(headers, widths, strict=True))
    )
    print(line)
    print("-" * len(line))
    for row in rows:
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def print_details(opts: Options, results: list[RunResult]) -> None:
    for r in results:
        parts = [
            f"{name} p50/p95/max {percentile(v, 50) * 1000:.0f}/{percentile(v, 95) * 1000:.0f}/"
            f"{max(v) * 1000 if v else float('nan'):.0f} ms"
            for name, v in r.step_latencies.items()
        ]
        parts.append(
            f"bot CPU {r.cpu:.2f} s (main thread {r.loop_cpu:.2f} s, system {r.sys_cpu:.2f} s, "
            f"{r.switches} context switches)"
        )
        if r.last_start_at is not None:
            parts.append(f"bot CPU until the last Verify start arrived ~{r.pre_verify_cpu:.2f} s")
        parts += [
            f"bench process CPU {r.bench_cpu:.2f} s",
            f"other processes' CPU {max(r.other_cpu, 0):.2f} s",
            f"getUpdates calls {r.polls}",
            f"Verify calls {r.verify_calls} on {r.verify_connections} connections (whole run)",
            f"bot log lines at WARNING+ {r.log_problems}",
            f"bot exit code {r.exit_code}",
        ]
        print(f"  {r.mode} #{r.repeat}: " + "; ".join(parts))
        for failure in r.failures[:5]:
            print(f"    FAILED: {failure}")
        if len(r.failures) > 5:
            print(f"    ... and {len(r.failures) - 5} more failures")


def print_verdicts(opts: Options, results: list[RunResult]) -> None:
    concurrent = [r for r in results if r.mode == CONCURRENT]
    sequential = [r for r in results if r.mode == SEQUENTIAL]
    if opts.scenario == "numbers":
        # the target: 1.3 s with a 1 s Verify, i.e. at most 0.3 s above the floor
        limit = opts.latency + 0.3
        for r in concurrent:
            worst = max(r.latencies) if r.latencies else float("inf")
            verdict = "yes" if r.ok == r.users and worst <= limit else "no"
            print(
                f"{r.mode} #{r.repeat}: all {r.users} answered within {limit:g} s: {verdict} "
                f"(max {worst:.3f} s, {r.ok}/{r.users} answered; Verify latency {opts.latency:g} s)"
            )
    for r in results:
        verdict = "yes" if r.ok == r.users else "no"
        print(f"{r.mode} #{r.repeat}: all {r.users} succeeded: {verdict} ({r.ok}/{r.users})")
    ratios = []
    for c in concurrent:
        s = next((x for x in sequential if x.repeat == c.repeat), None)
        if s is None or not (c.ok and s.ok):
            continue
        ratio = c.cpu_ms_per_user / s.cpu_ms_per_user
        ratios.append(ratio)
        print(
            f"#{c.repeat}: CPU per {'login' if opts.scenario == 'logins' else 'number'} "
            f"concurrent/sequential = {ratio:.2f} ({c.cpu_ms_per_user:.2f} / "
            f"{s.cpu_ms_per_user:.2f} ms; target <= 1.00: {'yes' if ratio <= 1.0 else 'no'}); "
            f"speed-up {c.rate / s.rate if s.rate else float('nan'):.1f}x"
        )
    if len(ratios) > 1:
        print(
            f"CPU ratio over {len(ratios)} repeats: median {statistics.median(ratios):.2f}, "
            f"min {min(ratios):.2f}, max {max(ratios):.2f}"
        )
    if opts.scenario == "pending":
        for r in results:
            if r.ok and r.start_rss:
                grown = r.end_rss - r.start_rss
                print(
                    f"{r.mode} #{r.repeat}: RSS {_mb(r.start_rss)} -> {_mb(r.end_rss)} MB with "
                    f"{r.ok} flows waiting for their codes: {grown * 10_000 / r.ok / 2**20:+.1f} "
                    f"MB per 10,000 pending flows ({100 * grown / r.start_rss:+.1f}%)"
                )
    print_peer_ratios(opts, results)


def print_peer_ratios(opts: Options, results: list[RunResult]) -> None:
    """Each run of this bot against the peer's run of the same repeat: CPU, rate, memory and
    messages per login (or number), and their medians over the repeats."""
    unit = "login" if opts.scenario == "logins" else "number"
    peers = {r.repeat: r for r in results if r.mode == PEER and r.ok}
    if not peers:
        return
    figures: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        peer = peers.get(r.repeat)
        if r.mode == PEER or peer is None or not r.ok:
            continue
        ratios = {
            f"CPU/{unit}": r.cpu_ms_per_user / peer.cpu_ms_per_user,
            f"{unit}s/s": r.rate / peer.rate if peer.rate else float("nan"),
            "RSS": r.end_rss / peer.end_rss if peer.end_rss else float("nan"),
            f"msgs/{unit}": r.messages_per_user / peer.messages_per_user,
        }
        for name, value in ratios.items():
            figures[r.mode][name].append(value)
        print(
            f"#{r.repeat}: {r.mode} / peer: "
            + ", ".join(f"{name} {value:.2f}" for name, value in ratios.items())
            + f" ({r.cpu_ms_per_user:.2f} / {peer.cpu_ms_per_user:.2f} ms CPU per {unit}; "
            f"{r.messages_per_user:.2f} / {peer.messages_per_user:.2f} messages per {unit})"
        )
    for mode, by_name in figures.items():
        if len(next(iter(by_name.values()))) > 1:
            print(
                f"{mode} / peer, median of {len(next(iter(by_name.values())))} repeats: "
                + ", ".join(f"{name} {statistics.median(v):.2f}" for name, v in by_name.items())
            )


# ---------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> Options:
    """The benchmark's options from the command line (exits with usage on a bad value)."""
    parser = build_parser()
    return options_from(parser.parse_args(argv), parser)


def build_parser() -> argparse.ArgumentParser:
    """Every flag, in the order `--help` lists them."""
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark the real bot process against the wire-level fakes.",
    )
    _add_workload_flags(parser)
    _add_setup_flags(parser)
    _add_bot_flags(parser)
    _add_measuring_flags(parser)
    _add_output_flags(parser)
    return parser


def _add_workload_flags(parser: argparse.ArgumentParser) -> None:
    """What is measured: the scenario, its size, Verify's speed and the modes compared."""
    parser.add_argument(
        "--scenario",
        choices=sorted([*SCENARIOS, ADMIN]),
        default="numbers",
        help="numbers: all users send their number at once (measured: number -> 'code is on "
        "its way'); logins: all users do a whole login at once; pending: users leave their "
        "logins waiting for the code, 500 at a time (measured: RSS); admin: a database of --users "
        "logins and --events audit events, and the admin answers on it (bench/admin.py) "
        "(default: numbers)",
    )
    parser.add_argument(
        "--users",
        type=int,
        help="simulated users (default: 100 numbers, 200 logins, 10000 pending, "
        "1000000 admin: logged-in users in the database)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=10_000_000,
        help="admin: audit events in the database (default: 10000000)",
    )
    parser.add_argument(
        "--verify-latency",
        type=float,
        help="seconds the Verify fake takes per call (default: 1.0 numbers, 0 logins)",
    )
    parser.add_argument(
        "--compare",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run PTB's sequential processing (MAX_CONCURRENT_UPDATES=1), side by side "
        "(default: on, off with --peer)",
    )
    parser.add_argument(
        "--peer",
        type=Path,
        metavar="DIR",
        help="also run the same scenario against the bot checked out in DIR, alternating, and "
        "print the ratios: the tutorial bot (../shared/peers/tutorial-bot, installed into its "
        "own virtualenv under the cache dir on first use) or a git worktree of another commit "
        "of this one (run with this virtualenv)",
    )
    parser.add_argument(
        "--peer-python",
        metavar="PATH",
        help="the interpreter to run the --peer bot with (default: see --peer)",
    )
    parser.add_argument(
        "--limiter",
        action="store_true",
        help="also run this bot with TELEGRAM_MAX_MESSAGES_PER_SECOND at its default (the "
        "others run with the flood limiter off), side by side",
    )
    parser.add_argument(
        "--sequential", action="store_true", help="only the sequential run (implies --no-compare)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="repeat the runs K times")


def _add_setup_flags(parser: argparse.ArgumentParser) -> None:
    """Where the run happens: the database, the fakes' ports and the time limits."""
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server URL (postgresql+asyncpg://user@host:port/db): every run "
        "creates a fresh database there and drops it after (default: SQLite in a temp dir)",
    )
    parser.add_argument("--telegram-port", type=int, default=0, help="FakeTelegram port (0: any)")
    parser.add_argument("--verify-port", type=int, default=0, help="FakeVerify port (0: any)")
    parser.add_argument(
        "--start-timeout", type=float, default=60.0, help="seconds for the bot to start polling"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help="seconds the measured phase may take (default: from users, latency and mode)",
    )


def _add_bot_flags(parser: argparse.ArgumentParser) -> None:
    """Which bot runs and how: its source tree, a wrapper command, extra settings."""
    parser.add_argument(
        "--bot-dir",
        type=Path,
        default=REPO,
        help="run the bot from this source tree (PYTHONPATH), e.g. a git worktree of "
        "another commit (default: this one)",
    )
    parser.add_argument(
        "--bot-prefix",
        default="",
        help="wrapper command the bot runs under, e.g. 'taskset -c 1' "
        "(measurements are taken on the bot's Python process)",
    )
    parser.add_argument(
        "--bot-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for the bot process (repeatable; wins over the benchmark's)",
    )


def _add_measuring_flags(parser: argparse.ArgumentParser) -> None:
    """How the bot is observed: profilers, and the warm-up before the measured phase."""
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the bot under cProfile (main thread only) and write DIR/<scenario>-<mode>-<n>"
        ".prof",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        metavar="N",
        help="users who log in (all at once) before the measured phase, not measured (default 1)",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="sample the bot with py-spy (on PATH or $PY_SPY) during the measured phase: "
        "DIR/<scenario>-<mode>-<n>.txt, collapsed stacks",
    )
    parser.add_argument(
        "--py-spy-args",
        default="",
        metavar="ARGS",
        help="more py-spy record options, e.g. '--gil' (only samples holding the GIL)",
    )


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    """What is kept and printed after the run."""
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs (bot logs, DB)")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="per-step latencies, where the CPU went, getUpdates calls, other load, bot log",
    )


def options_from(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Options:
    """The parsed flags as Options: the scenario's defaults filled in, values checked (a bad
    one exits through `parser.error`, like argparse's own errors), output dirs created."""
    default_users, default_latency = {
        "logins": (200, 0.0),
        "pending": (10_000, 0.0),
        ADMIN: (1_000_000, 0.0),
    }.get(args.scenario, (100, 1.0))
    users: int = default_users if args.users is None else args.users
    latency: float = default_latency if args.verify_latency is None else args.verify_latency
    most = 10_000_000 if args.scenario == ADMIN else 100_000
    if users < 1 or users > most:
        parser.error(f"--users must be 1..{most}")
    if args.events < 1:
        parser.error("--events must be >= 1")
    if latency < 0:
        parser.error("--verify-latency must be >= 0")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.database_url and not args.database_url.startswith("postgresql+asyncpg://"):
        parser.error("--database-url must be a postgresql+asyncpg:// server URL")
    for directory in (args.profile, args.py_spy):
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
    peer: Path | None = args.peer.resolve() if args.peer is not None else None
    if peer is not None and not (peer / "bot" / "__main__.py").is_file():
        parser.error(f"--peer {args.peer}: no bot/__main__.py there (not a bot checkout)")
    compare = (peer is None) if args.compare is None else args.compare
    return Options(
        scenario=args.scenario,
        users=users,
        events=args.events,
        latency=latency,
        modes=_modes(sequential=args.sequential, compare=compare, limiter=args.limiter, peer=peer),
        repeat=args.repeat,
        database_url=args.database_url,
        telegram_port=args.telegram_port,
        verify_port=args.verify_port,
        start_timeout=args.start_timeout,
        timeout=args.timeout,
        bot_dir=args.bot_dir.resolve(),
        bot_prefix=args.bot_prefix.split(),
        bot_env=_bot_env(args.bot_env, parser),
        profile_dir=args.profile,
        keep=args.keep,
        verbose=args.verbose,
        warmup=max(args.warmup, 0),
        py_spy=args.py_spy,
        py_spy_args=args.py_spy_args.split(),
        peer=peer,
        peer_python=args.peer_python,
    )


def _modes(*, sequential: bool, compare: bool, limiter: bool, peer: Path | None) -> list[str]:
    """The runs of each repeat, in the order they run."""
    modes = [SEQUENTIAL] if sequential else [CONCURRENT, SEQUENTIAL] if compare else [CONCURRENT]
    if limiter:
        modes.append(LIMITER)
    if peer is not None:
        modes.append(PEER)
    return modes


def default_flood_limit() -> str:
    """TELEGRAM_MAX_MESSAGES_PER_SECOND's default, as bot/config.py has it."""
    from bot.config import Settings

    return str(Settings.model_fields["telegram_max_messages_per_second"].default)


def is_this_project(directory: Path) -> bool:
    """Whether a bot checkout is (some commit of) this project: it then runs with this
    virtualenv, its source first on PYTHONPATH, as `--bot-dir` does."""
    return (directory / "bot" / "config.py").is_file() and (directory / "migrations").is_dir()


def peer_interpreter(directory: Path) -> str:
    """The Python to run the bot in `directory` with: this one for a checkout of this
    project; otherwise a virtualenv with that checkout installed (`pip install -e` of a copy,
    since the folder may be read-only), made once under the cache dir and reused while the
    checkout's pyproject.toml stays the same."""
    if is_this_project(directory):
        return sys.executable
    import hashlib

    project = directory / "pyproject.toml"
    key = hashlib.sha256(str(directory).encode() + b"\0" + project.read_bytes()).hexdigest()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    home = cache / "bot-bench" / "peers" / key[:16]
    python = home / "venv" / "bin" / "python"
    ready = home / ".installed"
    if ready.exists() and python.exists():
        return str(python)
    print(f"installing the peer {directory} into {home / 'venv'} (once) ...", flush=True)
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(directory, home / "src", ignore=shutil.ignore_patterns(".git", "*.egg-info"))
    for path in (home / "src", *(home / "src").rglob("*")):
        path.chmod(path.stat().st_mode | 0o200)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(home / "venv")], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-e", str(home / "src")], check=True
    )
    ready.touch()
    return str(python)


def _bot_env(items: list[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    """`--bot-env NAME=VALUE` items as settings (names upper-cased, the last one wins)."""
    bot_env: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--bot-env wants NAME=VALUE, not {item!r}")
        bot_env[name.upper()] = value
    return bot_env


async def amain(opts: Options) -> int:
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
    db = "PostgreSQL (fresh database per run)" if opts.database_url else "SQLite (temp file)"
    print(
        f"scenario {opts.scenario}: {opts.users} users, Verify latency {opts.latency:g} s, "
        f"{db}, modes {'+'.join(opts.modes)}, {opts.repeat}x; "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
        flush=True,
    )
    results: list[RunResult] = []
    for repeat in range(1, opts.repeat + 1):
        for mode in opts.modes:
            print(f"  running {mode} #{repeat} ...", flush=True)
            try:
                results.append(await run_once(opts, mode, repeat))
            except (BotDidNotStart, TimeoutError) as error:
                print(f"error ({mode} #{repeat}): {error or 'timed out'}", file=sys.stderr)
                return 2
            r = results[-1]
            print(
                f"    {r.ok}/{r.users} ok in {r.wall:.2f} s, bot CPU {r.cpu:.2f} s",
                flush=True,
            )
    print()
    print_table(opts, results)
    print()
    if opts.verbose:
        print_details(opts, results)
        print()
    print_verdicts(opts, results)
    failed = any(r.ok < r.users or r.failures for r in results)
    return 1 if failed else 0


def source_info(bot_dir: Path) -> str:
    """Which code is measured: the commit, and whether bot/ or migrations/ differ from it."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(bot_dir), "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(bot_dir), "status", "--porcelain", "--", "bot", "migrations"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return f"bot from {bot_dir}"
    dirty = f" + {len(changed)} uncommitted file(s) in bot/, migrations/" if changed else ""
    return f"bot from {bot_dir} at {commit}{dirty}"


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    print(source_info(opts.bot_dir), flush=True)
    if opts.scenario == ADMIN:
        import admin  # bench/admin.py, beside this script

        return asyncio.run(
            admin.run(
                users=opts.users,
                events=opts.events,
                server_url=opts.database_url,
                keep=opts.keep,
                fresh_database=fresh_database,
            )
        )
    if opts.peer is not None:
        if opts.peer_python is None:
            opts.peer_python = peer_interpreter(opts.peer)
        print(f"peer: {source_info(opts.peer)}, run with {opts.peer_python}", flush=True)
    try:
        return asyncio.run(amain(opts))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
