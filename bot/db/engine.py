"""Engines and sessions. Nothing is built at import: callers make one engine per process."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def is_sqlite(url: str) -> bool:
    """Whether a database URL names an SQLite database."""
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """An async engine tuned for the bot: WAL and immediate write locks on SQLite,
    a pool large enough for concurrent updates on PostgreSQL."""
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _sqlite_tuning(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # error messages would otherwise carry bound values: phone numbers
        hide_parameters=True,
    )


def _sqlite_tuning(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling starts transactions lazily and never for DDL; take
    # it over so every transaction is BEGIN IMMEDIATE: a writer waits for the lock up front
    # (busy timeout) instead of failing with "database is locked" half-way through.
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
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep their objects readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
