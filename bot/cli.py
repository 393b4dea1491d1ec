"""The admin command line: reads the same database as the bot, needs only DATABASE_URL."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import DatabaseSettings
from bot.db import repo
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.models import VerifiedUser


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


async def users_list(settings: DatabaseSettings, *, as_json: bool, out: TextIO) -> int:
    """Print every current login, newest first, as a table or a JSON array (streamed)."""
    engine = make_engine(settings.database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session:
            if as_json:
                await _write_json(session, out)
            else:
                await _write_table(session, out)
    except (OperationalError, ProgrammingError) as error:
        print(
            f"error: cannot read the database ({type(error.orig).__name__}); "
            "has it been migrated? Run `alembic upgrade head` or start the bot once.",
            file=sys.stderr,
        )
        return 1
    finally:
        await engine.dispose()
    return 0


async def _write_json(session: AsyncSession, out: TextIO) -> None:
    out.write("[")
    first = True
    async for user in repo.stream_logins(session):
        out.write("\n  " if first else ",\n  ")
        out.write(json.dumps(user_record(user), ensure_ascii=False))
        first = False
    out.write("\n]\n" if not first else "]\n")


async def _write_table(session: AsyncSession, out: TextIO) -> None:
    header = ("PHONE NUMBER", "CHAT ID", "USER ID", "NAME", "VERIFIED AT (UTC)")
    widths = (16, 14, 14, 30, 19)
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out.write(line.rstrip() + "\n")
    count = 0
    async for user in repo.stream_logins(session):
        name = user.full_name or ""
        if user.username:
            name = f"{name} (@{user.username})".strip()
        cells = (
            user.phone_number,
            str(user.chat_id),
            str(user.user_id),
            name[:30],
            user.verified_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
        out.write("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() + "\n")
        count += 1
    out.write(f"({count} logged in)\n")
