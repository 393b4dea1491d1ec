"""Engines and sessions. Nothing is built at import: callers make one engine per process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.db import sqlite

READONLY_OPTION = "bot_readonly"

# How long a PostgreSQL statement waits for a row or advisory lock before it fails (and its
# update gets the apology): one transaction stuck holding a lock must not stall the chats
# queued behind it for ever.
LOCK_TIMEOUT_MS = 10_000


def is_sqlite(url: str) -> bool:
    """Whether a database URL names an SQLite database."""
    return url.startswith("sqlite")


# How the bot's connections are named in PostgreSQL's pg_stat_activity
APPLICATION_NAME = "phone-login-bot"


def make_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """An async engine tuned for the bot: WAL and immediate write locks on SQLite; on
    PostgreSQL, at most `pool_size` connections (never more: several processes must fit the
    server's max_connections) and lock waits that time out."""
    if is_sqlite(url):
        # One connection per process: SQLite runs one writer at a time anyway, and several
        # connections of one process would only queue in SQLite's busy handler (which sleeps
        # and is unfair) instead of in the pool (which is first come, first served).
        engine = create_async_engine(
            url,
            # aiosqlite with one trip to its thread per statement (bot/db/sqlite.py)
            async_creator=sqlite.connector(url, timeout=30),
            hide_parameters=True,
            pool_size=1,
            max_overflow=0,
            pool_timeout=600,
        )
        _sqlite_tuning(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        # Transactions are short (none waits on Vonage or Telegram): a busy pool is a queue.
        pool_timeout=600,
        pool_pre_ping=True,
        # error messages would otherwise carry bound values: phone numbers
        hide_parameters=True,
        connect_args={
            "server_settings": {
                "lock_timeout": str(LOCK_TIMEOUT_MS),
                "application_name": APPLICATION_NAME,
            }
        },
    )


@dataclass(frozen=True, slots=True)
class ServerConnections:
    """A PostgreSQL server's connection slots, as seen at one moment."""

    max_connections: int
    reserved: int  # for superusers (and, from PostgreSQL 16, pg_use_reserved_connections)
    open: int  # client connections open now, apart from the one that asked

    @property
    def free(self) -> int:
        """Slots an ordinary role can still take."""
        return max(self.max_connections - self.reserved - self.open, 0)


async def server_connections(engine: AsyncEngine) -> ServerConnections:
    """How many connections a PostgreSQL server allows and how many are open now."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT current_setting('max_connections')::int, "
                    "current_setting('superuser_reserved_connections')::int "
                    "+ coalesce(current_setting('reserved_connections', true)::int, 0), "
                    "(SELECT count(*) FROM pg_stat_activity "
                    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())"
                )
            )
        ).one()
    return ServerConnections(int(row[0]), int(row[1]), int(row[2]))


def _sqlite_tuning(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling starts transactions lazily and never for DDL; take
    # it over so every writing transaction is BEGIN IMMEDIATE: a writer waits for the lock up
    # front (busy timeout) instead of failing with "database is locked" half-way through.
    # Readers (`make_sessionmaker(..., readonly=True)`) take no lock and never block writers
    # of other processes (WAL).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if not conn.get_execution_options().get(READONLY_OPTION, False):
            driver = conn.connection.driver_connection
            if isinstance(driver, sqlite.OneTripConnection):
                driver.begin_with_next_statement("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        # Readers run in autocommit: each SELECT sees the latest committed data on its own
        # and a read-only session costs no BEGIN/COMMIT round trips.


def make_sessionmaker(
    engine: AsyncEngine, *, readonly: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep their objects readable after commit. Read-only ones take no write
    lock on SQLite (elsewhere they are ordinary sessions; only use them for reading)."""
    bind = engine.execution_options(**{READONLY_OPTION: True}) if readonly else engine
    return async_sessionmaker(bind, expire_on_commit=False)
