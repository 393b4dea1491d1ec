"""The admin command line: reads the same database as the bot and needs only DATABASE_URL
(and the bot's NUMBER_HASH_KEY for the commands that hash a number)."""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.admin import report_html, reports
from bot.admin.service import (
    PAID_CHANNELS,
    AdminService,
    Counts,
    Stats,
    parse_target,
    prices_of,
)
from bot.clock import utcnow
from bot.config import ReportSettings, hash_key
from bot.db.engine import is_sqlite, make_engine, make_sessionmaker
from bot.db.models import AuthEvent, VerifiedUser
from bot.login import oidc_keys
from bot.login.audit import Audit
from bot.login.oidc_clients import ClientInfo, Clients
from bot.login.weblogin import ID_TOKEN_TTL

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
    form = _add_json_forms(listing, "a JSON array of logins instead of a table")
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
    _add_json_forms(events, "a JSON array of events instead of text")

    stats = commands.add_parser(
        "stats",
        help="starts, verified, conversion, failures, limits",
        description="Per day and per region (ISO 3166 code, as +1 876 is JM, not US); a low "
        "conversion rate in a region is flagged as possible SMS pumping.",
    )
    stats.add_argument("--days", type=int, default=7, help="how many days back (default 7)")
    form = _add_json_forms(stats, "one JSON object instead of text")
    form.add_argument(
        "--html",
        metavar="FILE",
        type=Path,
        help="write a self-contained HTML report (a chart per day, a table per region) to "
        "FILE; it opens in any browser, without network",
    )
    _add_oidc_commands(commands)


def _add_json_forms(
    command: argparse.ArgumentParser, json_help: str
) -> argparse._MutuallyExclusiveGroup:
    """`--json` and `--jsonl`, which every command that prints records has; one at a time."""
    form = command.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help=json_help)
    form.add_argument("--jsonl", action="store_true", help="one JSON object per line (JSON Lines)")
    return form


def _add_oidc_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`clients add|list|remove` and `oidc rotate-key|retire-key` (logging in to websites)."""
    clients = commands.add_parser(
        "clients",
        help="websites that log their users in through the bot (OpenID Connect)",
        description="The OpenID Connect clients: websites and apps that log their users in "
        "through the bot.",
    )
    clients_commands = clients.add_subparsers(dest="clients_command", required=True)
    add = clients_commands.add_parser(
        "add",
        help="register a website",
        description="Register a client. Prints its client_id and, for a confidential client, "
        "its client_secret: shown once, stored only as a hash.",
    )
    add.add_argument("--name", required=True, help="the name people see, such as 'Acme Shop'")
    add.add_argument(
        "--redirect-uri",
        required=True,
        action="append",
        dest="redirect_uris",
        metavar="URI",
        help="where the browser returns (exact match; https, or http on localhost); repeatable",
    )
    add.add_argument(
        "--public",
        action="store_true",
        help="an app that cannot keep a secret (no client_secret; PKCE required)",
    )
    add.add_argument("--json", action="store_true", help="print a JSON object")
    listing = clients_commands.add_parser("list", help="the registered clients")
    listing.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    remove = clients_commands.add_parser("remove", help="remove a client")
    remove.add_argument("client_id")

    oidc = commands.add_parser("oidc", help="the OpenID Connect provider's keys")
    oidc_commands = oidc.add_subparsers(dest="oidc_command", required=True)
    oidc_commands.add_parser(
        "rotate-key",
        help="add a new signing key",
        description="Add a new ID token signing key: it signs from now on, and the JWKS "
        "publishes it with the older ones, so tokens they signed still verify.",
    )
    retire = oidc_commands.add_parser(
        "retire-key",
        help="stop publishing a rotated-out signing key",
        description="Remove an older signing key from the JWKS, once the ID tokens it signed "
        "have expired. The key that signs now is never retired: rotate-key first.",
    )
    retire.add_argument("kid", help="the key's id (the `kid` in the JWKS)")


def run_admin_command(args: argparse.Namespace, settings: ReportSettings) -> int:
    """Run one admin command; returns the exit status."""
    import asyncio

    if args.command in ("clients", "oidc"):
        return asyncio.run(_on_database(settings, lambda engine: _oidc_command(engine, args)))
    if args.command == "stats" and not 1 <= args.days <= 366:
        print("error: --days must be from 1 to 366", file=sys.stderr)
        return EXIT_USAGE
    # Only `users show` and `users revoke` hash a number (to find its history, to record it):
    # they need the bot's own key; the rest run on DATABASE_URL alone.
    hashes = args.command == "users" and args.users_command in ("show", "revoke")
    key = hash_key(settings) if hashes else None
    return asyncio.run(_with_admin(settings, key, lambda admin: _command(admin, args)))


async def _command(admin: AdminService, args: argparse.Namespace) -> int:
    if args.command == "users" and args.users_command == "list":
        return await users_list(admin, form=_form(args), out=sys.stdout)
    if args.command == "users":
        return await _user_command(admin, args)
    if args.command == "events":
        return await events_list(admin, args=args, out=sys.stdout)
    return await _stats(admin, args)


def _form(args: argparse.Namespace) -> str:
    """The output form a command was asked for: json, jsonl, csv or its plain text."""
    for form in ("json", "jsonl", "csv"):
        if getattr(args, form, False):
            return form
    return "text"


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
        # sms, voice, telegram_gateway or telegram_contact; null before it was recorded.
        "method": user.channel,
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
    settings: ReportSettings, work: Callable[[AsyncEngine], Awaitable[int]]
) -> int:
    """Run `work` on an engine for DATABASE_URL, saying plainly when the database is missing
    or not migrated."""
    missing = _missing_sqlite_file(settings.database_url)
    if missing is not None:
        # Opening it would create an empty database: say what is wrong instead.
        print(f"error: cannot read the database: no file {missing}", file=sys.stderr)
        return 1
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        return await work(engine)
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
    settings: ReportSettings,
    key: bytes | None,
    work: Callable[[AdminService], Awaitable[int]],
) -> int:
    """Run `work` with an AdminService on the database. Lookups, exports and revocations
    write audit events; reading goes through read-only sessions (on SQLite these take no
    lock, so a long export never holds up the bot)."""

    async def run(engine: AsyncEngine) -> int:
        admin = AdminService(
            sessions=make_sessionmaker(engine),
            readers=make_sessionmaker(engine, readonly=True),
            audit=Audit(hash_key=key, clock=utcnow),
            clock=utcnow,
            prices=prices_of(settings),
        )
        return await work(admin)

    return await _on_database(settings, run)


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
    if args.html:
        page = report_html.stats_html(stats, generated_at=utcnow())
        try:
            args.html.write_text(page, encoding="utf-8")
        except OSError as error:
            print(f"error: cannot write {args.html}: {error.strerror}", file=sys.stderr)
            return 1
        print(f"Wrote the report to {args.html}")
        return 0
    form = _form(args)
    if form == "text":
        print(reports.stats_text(stats))
    else:
        # One report, not a listing: an object (indented for --json, one line for --jsonl).
        print(json.dumps(stats_record(stats), indent=2 if form == "json" else None))
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
        "spend": spend_record(stats),
        "web_logins": {
            client_id: {"name": name, "logins": count}
            for client_id, (name, count) in stats.web_logins.items()
        },
    }


def spend_record(stats: Stats) -> dict[str, object]:
    """The estimated spend as JSON: amounts are decimal strings (exact), null when unknown
    (a channel that was used has no price); `sends` counts the paid codes by channel."""

    def spent(c: Counts) -> dict[str, object]:
        return {
            "sends": c.sends,
            "spend": reports.amount(stats.spend(c)),
            "per_verified": reports.amount(stats.spend_per_verified(c)),
        }

    return {
        "currency": stats.prices.currency,
        "prices": {channel: reports.amount(stats.prices.of(channel)) for channel in PAID_CHANNELS},
        "total": spent(stats.total),
        "per_day": {day: spent(c) for day, c in stats.per_day.items()},
        "per_region": {key: spent(c) for key, c in stats.per_region.items()},
    }


async def users_list(admin: AdminService, *, form: str, out: TextIO) -> int:
    """Print every current login, newest first, as a table, JSON, JSON Lines or CSV
    (streamed)."""
    logins = admin.export_logins(by=_actor())
    if form in ("json", "jsonl"):
        await _write_records((user_record(user) async for user in logins), form=form, out=out)
    elif form == "csv":
        await _write_csv(logins, out)
    else:
        await _write_table(logins, out)
    return 0


async def events_list(admin: AdminService, *, args: argparse.Namespace, out: TextIO) -> int:
    """Print audit events in time order (streamed)."""
    events = admin.export_events(since=args.since, chat_id=args.chat, by=_actor())
    form = _form(args)
    if form == "text":
        async for event in events:
            out.write(f"{reports.event_line(event)}  chat {event.chat_id}\n")
    else:
        await _write_records((event_record(event) async for event in events), form=form, out=out)
    return 0


async def _write_records(
    records: AsyncIterator[dict[str, object]], *, form: str, out: TextIO
) -> None:
    """JSON records as they come, never all in memory: one array (`json`), written item by
    item, or one object per line (`jsonl`). Non-ASCII is escaped, so no character that
    users wrote reaches a terminal raw."""
    if form == "jsonl":
        async for record in records:
            out.write(json.dumps(record) + "\n")
        return
    separator = "[\n  "
    async for record in records:
        out.write(separator + json.dumps(record))
        separator = ",\n  "
    out.write("[]\n" if separator.startswith("[") else "\n]\n")


CSV_COLUMNS = ["chat_id", "user_id", "phone_number", "verified_at", "username", "full_name"]


async def _write_csv(logins: AsyncIterator[VerifiedUser], out: TextIO) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    async for user in logins:
        record = user_record(user)
        writer.writerow([reports.spreadsheet_safe(record[column]) for column in CSV_COLUMNS])


async def _write_table(logins: AsyncIterator[VerifiedUser], out: TextIO) -> None:
    header = ("PHONE NUMBER", "CHAT ID", "USER ID", "NAME", "VERIFIED AT (UTC)")
    widths = (16, 14, 14, 30, 19)
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out.write(line.rstrip() + "\n")
    count = 0
    async for user in logins:
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


def client_record(client: ClientInfo) -> dict[str, object]:
    """A client as JSON (keys are public interface; never the secret: only its hash is kept)."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "public": client.public,
        "redirect_uris": list(client.redirect_uris),
        "created_at": client.created_at.isoformat(),
    }


async def _retire_key(sessions: async_sessionmaker[AsyncSession], kid: str) -> int:
    done = await oidc_keys.retire(sessions, kid, token_ttl=ID_TOKEN_TTL)
    if done.result is oidc_keys.Retired.RETIRED:
        print(f"Retired signing key {kid}: the JWKS no longer publishes it.")
        return 0
    if done.result is oidc_keys.Retired.UNKNOWN:
        print(f"error: no stored signing key {kid}", file=sys.stderr)
    elif done.result is oidc_keys.Retired.CURRENT:
        print(
            f"error: {kid} is the current signing key; run `oidc rotate-key` first",
            file=sys.stderr,
        )
    else:
        assert done.after is not None
        print(
            f"error: ID tokens signed by {kid} may still be valid; "
            f"retire it after {done.after:%Y-%m-%d %H:%M:%S} UTC",
            file=sys.stderr,
        )
    return 1


async def _oidc_command(engine: AsyncEngine, args: argparse.Namespace) -> int:
    sessions = make_sessionmaker(engine)
    if args.command == "oidc" and args.oidc_command == "retire-key":
        return await _retire_key(sessions, args.kid)
    if args.command == "oidc":
        kid = await oidc_keys.rotate(sessions)
        print(f"New signing key {kid}: it signs ID tokens from now on; older keys stay published.")
        if os.environ.get("OIDC_SIGNING_KEY"):
            print("Note: OIDC_SIGNING_KEY is set, and signs instead of the stored keys.")
        return 0
    clients = Clients(sessions=sessions)
    if args.clients_command == "add":
        try:
            new = await clients.add(
                name=args.name, redirect_uris=args.redirect_uris, public=args.public
            )
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USAGE
        if args.json:
            print(json.dumps({"client_id": new.client_id, "client_secret": new.client_secret}))
        else:
            print(f"client_id:     {new.client_id}")
            if new.client_secret is not None:
                print(f"client_secret: {new.client_secret}")
                print("Keep the secret now: it is stored only as a hash and never shown again.")
            else:
                print("A public client: no secret; it must use PKCE (S256).")
        return 0
    if args.clients_command == "list":
        found = await clients.list()
        if args.json:
            print(json.dumps([client_record(c) for c in found], indent=2, ensure_ascii=False))
            return 0
        for c in found:
            kind = "public" if c.public else "confidential"
            print(f"{c.client_id}  {c.name}  ({kind})  {' '.join(c.redirect_uris)}")
        print(f"({len(found)} clients)")
        return 0
    if await clients.remove(args.client_id):
        print(f"Removed client {args.client_id}.")
        return 0
    print(f"error: no client {args.client_id}", file=sys.stderr)
    return 1
