"""The admin command line: reads the same database as the bot and needs only DATABASE_URL
(and NUMBER_HASH_KEY, if the bot has one, to find a number's history)."""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.admin import reports
from bot.admin.service import AdminService, Counts, Stats, parse_target
from bot.clock import utcnow
from bot.config import DatabaseSettings, hash_key
from bot.db import repo
from bot.db.engine import is_sqlite, make_engine, make_sessionmaker
from bot.db.models import AuthEvent, VerifiedUser
from bot.login.audit import Audit

EXIT_USAGE = 2


def add_admin_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`users list|show|revoke`, `events` and `stats`."""
    users = commands.add_parser("users", help="verified users", description="Verified users.")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    listing = users_commands.add_parser(
        "list",
        help="list the chats that are logged in, newest first",
        description="List the chats that are logged in, newest first (streamed).",
    )
    form = listing.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    form.add_argument("--csv", action="store_true", help="CSV with a header row")
    show = users_commands.add_parser(
        "show",
        help="one user's login and last events",
        description="A user's current login, the chats that used the number, and the last "
        "20 events. The lookup is recorded in the audit trail.",
    )
    show.add_argument("who", help="a number with + or 00, a chat id, or @username")
    revoke = users_commands.add_parser(
        "revoke",
        help="end a user's login",
        description="End a login; the user is told on their next message.",
    )
    revoke.add_argument("who", help="a number with + or 00, or a chat id")

    events = commands.add_parser(
        "events",
        help="the audit trail",
        description="Audit events in time order (streamed).",
    )
    events.add_argument("--since", type=_date, help="from this date (YYYY-MM-DD, UTC) or time")
    events.add_argument("--chat", type=int, help="only this chat id")
    events.add_argument("--json", action="store_true", help="one JSON object per line")

    stats = commands.add_parser(
        "stats",
        help="starts, verified, conversion, failures, limits",
        description="Per day and per region (ISO 3166 code, as +1 876 is JM, not US); a low "
        "conversion rate in a region is flagged as possible SMS pumping.",
    )
    stats.add_argument("--days", type=int, default=7, help="how many days back (default 7)")
    stats.add_argument("--json", action="store_true", help="JSON instead of text")


def run_admin_command(args: argparse.Namespace, settings: DatabaseSettings) -> int:
    """Run one admin command; returns the exit status."""
    import asyncio

    if args.command == "users" and args.users_command == "list":
        return asyncio.run(users_list(settings, form=_form(args), out=sys.stdout))
    if args.command == "users":
        return asyncio.run(_with_admin(settings, lambda admin: _user_command(admin, args)))
    if args.command == "events":
        return asyncio.run(events_list(settings, args=args, out=sys.stdout))
    if args.days < 1 or args.days > 366:
        print("error: --days must be from 1 to 366", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_with_admin(settings, lambda admin: _stats(admin, args), readonly=True))


def _form(args: argparse.Namespace) -> str:
    return "json" if args.json else "csv" if args.csv else "table"


def _date(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def user_record(user: VerifiedUser) -> dict[str, object]:
    """A login as the JSON object operators script against (keys are public interface)."""
    return {
        "chat_id": user.chat_id,
        "user_id": user.user_id,
        "phone_number": user.phone_number,
        "verified_at": user.verified_at.isoformat(),
        "username": user.username,
        "full_name": user.full_name,
    }


def event_record(event: AuthEvent) -> dict[str, object]:
    """An audit event as JSON."""
    return {
        "at": event.at.isoformat(),
        "event": event.event,
        "chat_id": event.chat_id,
        "user_id": event.user_id,
        "number": event.number_masked,
        "number_hash": event.number_hash,
        "country_code": event.country_code,
        "region": event.region,
        "request_id": event.request_id,
        "detail": event.detail,
    }


def _missing_sqlite_file(database_url: str) -> str | None:
    """The path of an SQLite database file that does not exist, if that is what the URL names."""
    url = make_url(database_url)
    path = url.database
    if not is_sqlite(database_url) or not path or path == ":memory:":
        return None
    return None if Path(path).is_file() else path


async def _on_database(
    settings: DatabaseSettings,
    work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[int]],
    *,
    readonly: bool = True,
) -> int:
    missing = _missing_sqlite_file(settings.database_url)
    if missing is not None:
        # Opening it would create an empty database: say what is wrong instead.
        print(f"error: cannot read the database: no file {missing}", file=sys.stderr)
        return 1
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        return await work(make_sessionmaker(engine, readonly=readonly))
    except (OperationalError, ProgrammingError) as error:
        print(
            f"error: cannot read the database ({type(error.orig).__name__}); "
            "has it been migrated? Run `alembic upgrade head` or start the bot once.",
            file=sys.stderr,
        )
        return 1
    finally:
        await engine.dispose()


async def _with_admin(
    settings: DatabaseSettings,
    work: Callable[[AdminService], Awaitable[int]],
    *,
    readonly: bool = False,
) -> int:
    """An AdminService on the database. Lookups and revocations write audit events; commands
    that only read pass `readonly` (no write lock on SQLite)."""
    audit = Audit(hash_key=hash_key(settings), clock=utcnow)

    async def run(sessions: async_sessionmaker[AsyncSession]) -> int:
        return await work(
            AdminService(sessions=sessions, readers=sessions, audit=audit, clock=utcnow)
        )

    return await _on_database(settings, run, readonly=readonly)


def _actor() -> str:
    try:
        return f"cli {getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def _user_command(admin: AdminService, args: argparse.Namespace) -> int:
    target = parse_target(args.who)
    if target is None or (args.users_command == "revoke" and target.kind == "username"):
        print(
            f"error: {args.who!r} is not a number (with + or 00), a chat id"
            + (" or a @username" if args.users_command == "show" else ""),
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.users_command == "show":
        print(reports.user_report(await admin.lookup(target, by=_actor())))
        return 0
    revoked = await admin.revoke(target, by=_actor())
    if revoked is None:
        print(f"{args.who} is not logged in.")
        return 1
    print(f"Revoked: {revoked.phone_number} (chat {revoked.chat_id}) is logged out.")
    return 0


async def _stats(admin: AdminService, args: argparse.Namespace) -> int:
    stats = await admin.stats(args.days)
    if args.json:
        print(json.dumps(stats_record(stats), indent=2))
    else:
        print(reports.stats_text(stats))
    return 0


def stats_record(stats: Stats) -> dict[str, object]:
    """Statistics as JSON."""

    def counts(c: Counts) -> dict[str, object]:
        return {"starts": c.starts, "verified": c.verified, "conversion": c.conversion}

    return {
        "days": stats.days,
        "since": stats.since.isoformat(),
        "total": counts(stats.total),
        "per_day": {day: counts(c) for day, c in stats.per_day.items()},
        "per_country": {str(code): counts(c) for code, c in stats.per_country.items()},
        "per_region": {key: counts(c) for key, c in stats.per_region.items()},
        "failures": stats.failures,
        "limits": stats.limits,
        "suspicious_countries": stats.suspicious_countries,
        "suspicious_regions": stats.suspicious_regions,
    }


async def users_list(settings: DatabaseSettings, *, form: str, out: TextIO) -> int:
    """Print every current login, newest first, as a table, JSON or CSV (streamed)."""

    async def work(sessions: async_sessionmaker[AsyncSession]) -> int:
        async with sessions() as session:
            if form == "json":
                await _write_json(session, out)
            elif form == "csv":
                await _write_csv(session, out)
            else:
                await _write_table(session, out)
        return 0

    return await _on_database(settings, work)


async def events_list(settings: DatabaseSettings, *, args: argparse.Namespace, out: TextIO) -> int:
    """Print audit events in time order (streamed)."""

    async def work(sessions: async_sessionmaker[AsyncSession]) -> int:
        async with sessions() as session:
            async for event in repo.stream_events(session, since=args.since, chat_id=args.chat):
                if args.json:
                    out.write(json.dumps(event_record(event)) + "\n")
                else:
                    out.write(f"{reports.event_line(event)}  chat {event.chat_id}\n")
        return 0

    return await _on_database(settings, work)


async def _write_json(session: AsyncSession, out: TextIO) -> None:
    out.write("[")
    first = True
    async for user in repo.stream_logins(session):
        out.write("\n  " if first else ",\n  ")
        out.write(json.dumps(user_record(user), ensure_ascii=False))
        first = False
    out.write("\n]\n" if not first else "]\n")


async def _write_csv(session: AsyncSession, out: TextIO) -> None:
    writer = csv.DictWriter(
        out,
        fieldnames=["chat_id", "user_id", "phone_number", "verified_at", "username", "full_name"],
    )
    writer.writeheader()
    async for user in repo.stream_logins(session):
        writer.writerow(user_record(user))


async def _write_table(session: AsyncSession, out: TextIO) -> None:
    header = ("PHONE NUMBER", "CHAT ID", "USER ID", "NAME", "VERIFIED AT (UTC)")
    widths = (16, 14, 14, 30, 19)
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out.write(line.rstrip() + "\n")
    count = 0
    async for user in repo.stream_logins(session):
        cells = (
            user.phone_number,
            str(user.chat_id),
            str(user.user_id),
            reports.display_name(user.full_name, user.username)[:30],
            user.verified_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
        out.write("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() + "\n")
        count += 1
    out.write(f"({count} logged in)\n")
