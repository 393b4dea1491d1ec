"""The `admin` scenario: admin answers on a big database.

    .venv/bin/python bench/run.py --scenario admin --users 1000000 --events 10000000
    .venv/bin/python bench/run.py --scenario admin --database-url postgresql+asyncpg://...

Fills a fresh database (migrated by the real migrations) with verified users and audit
events through the real models, in bulk (core `insert` executemany, in chunks), then times
what admins ask: the lookup `users show +number` and `/user` share (`AdminService.lookup` and
the report's text), the statistics `stats --days 7` and `/stats` share (`AdminService.stats`
and its text), `events --chat ID` (`AdminService.export_events` written as the CLI writes
it), and `users list --json` end to end as a `python -m bot` process (rows per second; its
RSS sampled while it streams). Each figure is printed beside its target, PASS or MISS.
See bench/README.md.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parent.parent

# The targets of issue 15, in seconds.
LOOKUP_TARGET = 0.050
STATS_TARGET = 2.0
EVENTS_TARGET = 0.100
# How much the export's RSS may grow past what it had after its first tenth of the rows:
# streaming keeps it flat; collecting the rows would grow it with every row.
EXPORT_GROWTH_MB = 25.0
HASH_KEY = b"bench-admin-number-hash-key-0123"
CHUNK = 20_000
FIRST_CHAT = 100_000_000
DAYS = 90  # the events' spread, ending now
TIMED_RUNS = 5

# (calling code, region, number prefix, digits after it): a realistic spread of where users are.
REGIONS = (
    (44, "GB", "+447", 9, 0.30),
    (49, "DE", "+49151", 8, 0.20),
    (1, "US", "+1212", 7, 0.25),
    (33, "FR", "+336", 8, 0.15),
    (1, "JM", "+1876", 7, 0.05),
    (234, "NG", "+23480", 8, 0.05),
)


@dataclass(frozen=True, slots=True)
class Figure:
    """One timed answer beside its target."""

    name: str
    value: float
    target: float | None
    unit: str
    note: str = ""

    @property
    def verdict(self) -> str:
        """PASS or MISS (or '' for a figure without a target)."""
        if self.target is None:
            return ""
        return "PASS" if self.value < self.target else "MISS"


def number(region: int, index: int) -> str:
    """User `index`'s number in a region: distinct for every index below 10**7."""
    _, _, prefix, digits, _ = REGIONS[region]
    # The first digit after the prefix from 2 to 9, the rest the index (numbering plans
    # refuse a leading 0 or 1 in places).
    return f"{prefix}{2 + index % 8}{index // 8:0{digits - 1}d}"


def region_of(index: int) -> int:
    """The region of user `index`, by the weights of REGIONS (deterministic)."""
    point = (index * 2654435761 % 2**32) / 2**32
    for position, (*_, weight) in enumerate(REGIONS):
        point -= weight
        if point < 0:
            return position
    return len(REGIONS) - 1


def user_rows(users: int, now: datetime) -> Iterator[list[dict[str, object]]]:
    """The verified users, CHUNK at a time, logged in over the last DAYS days."""
    chunk: list[dict[str, object]] = []
    for index in range(users):
        chunk.append(
            {
                "chat_id": FIRST_CHAT + index,
                "user_id": FIRST_CHAT + index,
                "phone_number": number(region_of(index), index),
                "username": f"user{index}" if index % 3 else None,
                "full_name": f"Bench User {index}",
                "verified_at": now - timedelta(seconds=(index * 7919) % (DAYS * 86400)),
                "channel": "sms" if index % 4 else "voice",
            }
        )
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def event_rows(users: int, events: int, now: datetime) -> Iterator[list[dict[str, object]]]:
    """The audit trail in time order (as it is appended), CHUNK at a time: logins of random
    users (started, code sent, sometimes a wrong code or a second channel, verified or
    failed), a few limited starts, over the last DAYS days."""
    from bot.login.audit import Event
    from bot.login.phone import number_hash

    rng = random.Random(15)
    hashes: dict[int, str] = {}
    start = now - timedelta(days=DAYS)
    step = (now - start) / max(events, 1)
    chunk: list[dict[str, object]] = []
    written = 0
    while written < events:
        index = rng.randrange(users)
        region = region_of(index)
        code, place, *_ = REGIONS[region]
        e164 = number(region, index)
        hashed = hashes.get(index)
        if hashed is None:
            hashed = hashes[index] = number_hash(e164, key=HASH_KEY)
        masked = e164[:4] + "*" * (len(e164) - 6) + e164[-2:]
        pumped = place == "NG" and rng.random() < 0.7
        kinds: list[tuple[str, str | None]] = [(Event.LOGIN_STARTED, None)]
        if rng.random() < 0.03:
            kinds.append((Event.LIMITED, "chat_hourly"))
        else:
            kinds.append((Event.CODE_SENT, None))
            if rng.random() < 0.1:
                kinds.append((Event.CODE_WRONG, None))
            if rng.random() < 0.05:
                kinds.append((Event.CODE_SENT, "voice"))
            if pumped or rng.random() < 0.1:
                kinds.append((Event.FAILED, "expired"))
            else:
                kinds.append((Event.VERIFIED, "sms"))
        request = f"req-{written:012d}"
        for event, detail in kinds:
            chunk.append(
                {
                    "at": start + step * written,
                    "event": event,
                    "chat_id": FIRST_CHAT + index,
                    "user_id": FIRST_CHAT + index,
                    "number_masked": masked,
                    "number_hash": hashed,
                    "country_code": code,
                    "region": place,
                    "request_id": request,
                    "detail": detail,
                }
            )
            written += 1
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
            if written == events:
                break
    if chunk:
        yield chunk


async def fill(url: str, users: int, events: int, now: datetime) -> tuple[float, float]:
    """Migrate the database and bulk-insert the rows; returns the seconds each table took."""
    from bot.db.engine import make_engine
    from bot.db.migrate import upgrade
    from bot.db.models import AuthEvent, VerifiedUser

    await upgrade(url)
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # Room for the indexes' pages: the default 2 MB cache makes every insert
                # of a random key (a hash, a chat id) a read from the file.
                await connection.exec_driver_sql("PRAGMA cache_size = -262144")
            times = [
                await _fill_table(connection, model, chunks, total)
                for model, chunks, total in (
                    (VerifiedUser, user_rows(users, now), users),
                    (AuthEvent, event_rows(users, events, now), events),
                )
            ]
            await _analyze(connection)
    finally:
        await engine.dispose()
    return times[0], times[1]


async def _fill_table(
    connection: Any, model: Any, chunks: Iterator[list[dict[str, object]]], total: int
) -> float:
    """Insert a table's rows, a chunk per transaction; returns the seconds it took."""
    from sqlalchemy import insert

    began = time.perf_counter()
    done = 0
    for rows in chunks:
        await connection.execute(insert(model), rows)
        await connection.commit()
        done += len(rows)
        if done % (CHUNK * 50) < CHUNK:
            rate = done / (time.perf_counter() - began)
            print(f"    {model.__tablename__}: {done:,}/{total:,} ({rate:,.0f}/s)", flush=True)
    return time.perf_counter() - began


async def _analyze(connection: Any) -> None:
    """Refresh the planner's statistics, as autovacuum (PostgreSQL) or an operator's ANALYZE
    (SQLite) would on a database that grew over months rather than minutes."""
    from sqlalchemy import text

    await connection.execute(text("ANALYZE"))
    await connection.commit()


async def timed(work: Callable[[int], Awaitable[object]], runs: int = TIMED_RUNS) -> list[float]:
    """Seconds each of `runs` calls of `work(run)` took (after one untimed call that warms
    the connection and the statement caches, as a running bot's are)."""
    await work(runs)
    seconds = []
    for run in range(runs):
        began = time.perf_counter()
        await work(run)
        seconds.append(time.perf_counter() - began)
    return seconds


async def measure_answers(url: str, users: int) -> list[Figure]:
    """Time the lookups, the statistics and the chat's events through the admin service."""
    from bot.admin import cli, reports
    from bot.admin.service import AdminService, parse_target
    from bot.db.engine import make_engine, make_sessionmaker
    from bot.login.audit import Audit

    engine = make_engine(url, pool_size=1)
    clock = lambda: datetime.now(UTC)  # noqa: E731
    admin = AdminService(
        sessions=make_sessionmaker(engine),
        readers=make_sessionmaker(engine, readonly=True),
        audit=Audit(hash_key=HASH_KEY, clock=clock),
        clock=clock,
    )
    picks = [(run * 7_777_777 + 12_345) % users for run in range(TIMED_RUNS + 1)]
    figures: list[Figure] = []
    try:

        async def show(run: int) -> object:
            index = picks[run]
            target = parse_target(number(region_of(index), index))
            assert target is not None, number(region_of(index), index)
            return reports.user_report(await admin.lookup(target, by="bench"))

        async def stats(run: int) -> object:
            return reports.stats_text(await admin.stats(7))

        async def events(run: int) -> object:
            out = io.StringIO()
            chat = FIRST_CHAT + picks[run]
            found = admin.export_events(since=None, chat_id=chat, by="bench")
            records = (cli.event_record(e) async for e in found)
            await cli._write_records(records, form="json", out=out)
            return out.getvalue()

        for name, work, target in (
            ("users show +number, /user", show, LOOKUP_TARGET),
            ("stats --days 7, /stats", stats, STATS_TARGET),
            ("events --chat ID", events, EVENTS_TARGET),
        ):
            seconds = await timed(work)
            figures.append(
                Figure(
                    name,
                    statistics.median(seconds) * 1000,
                    target * 1000,
                    "ms",
                    f"median of {len(seconds)}, max {max(seconds) * 1000:.1f} ms",
                )
            )
            print(f"    {name}: {figures[-1].value:.1f} ms ({figures[-1].note})", flush=True)
    finally:
        await engine.dispose()
    return figures


def measure_export(url: str, workdir: Path) -> list[Figure]:
    """`python -m bot users list --json` end to end: rows per second, and its RSS sampled
    every 50 ms (after the first tenth of the rows, and at its peak)."""
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": url, "PYTHONPATH": str(REPO)}
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "users", "list", "--json"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    watched = psutil.Process(process.pid)
    samples: list[tuple[int, float]] = []  # (rows so far, RSS MB)
    rows = 0
    first_row: float | None = None
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            try:
                samples.append((rows, watched.memory_info().rss / 2**20))
            except psutil.Error:
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for line in process.stdout:
        # `--json` writes one record per line, indented, between `[` and `]`.
        if line.startswith(b"  {"):
            rows += 1
            if first_row is None:
                first_row = time.perf_counter()
    status = process.wait()
    ended = time.perf_counter()
    done.set()
    sampler.join()
    if status != 0:
        raise RuntimeError(f"users list --json exited with {status}")
    early = [rss for seen, rss in samples if seen >= rows // 10] or [0.0]
    peak = max((rss for _, rss in samples), default=0.0)
    growth = peak - early[0]
    streaming = ended - (first_row or began)
    return [
        Figure("users list --json rows", rows, None, "rows"),
        Figure(
            "users list --json",
            rows / (ended - began),
            None,
            "rows/s",
            f"{ended - began:.1f} s end to end, {rows / streaming:,.0f} rows/s once streaming",
        ),
        Figure(
            "users list --json RSS growth",
            growth,
            EXPORT_GROWTH_MB,
            "MB",
            f"{early[0]:.0f} MB after a tenth of the rows, peak {peak:.0f} MB",
        ),
    ]


async def run(
    *,
    users: int,
    events: int,
    server_url: str | None,
    keep: bool,
    fresh_database: Callable[[str | None, Path], Awaitable[tuple[str, Callable[[], Any]]]],
) -> int:
    """The whole scenario on a database of `fresh_database` (bench/run.py's); exit status 0
    if every target is met, 1 if one is missed."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-admin-"))
    url, drop = await fresh_database(server_url, workdir)
    now = datetime.now(UTC)
    db = "PostgreSQL" if server_url else "SQLite"
    print(f"scenario admin: {users:,} users, {events:,} events, {db}; {os.cpu_count()} CPUs")
    try:
        print("  filling ...", flush=True)
        users_s, events_s = await fill(url, users, events, now)
        print(f"    filled in {users_s:.0f} s (users) + {events_s:.0f} s (events)", flush=True)
        print("  timing the answers ...", flush=True)
        figures = await measure_answers(url, users)
        print("  users list --json ...", flush=True)
        figures += await asyncio.to_thread(measure_export, url, workdir)
    finally:
        await drop()
        if keep:
            print(f"kept {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"{'answer':<32} {'figure':>14} {'target':>10}  verdict  note")
    for f in figures:
        target = f"< {f.target:g}" if f.target is not None else ""
        print(f"{f.name:<32} {f.value:>10,.1f} {f.unit:<3} {target:>10}  {f.verdict:<7}  {f.note}")
    return 1 if any(f.verdict == "MISS" for f in figures) else 0
