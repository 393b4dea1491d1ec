"""Alembic environment: async engine, URL from DATABASE_URL, one migrator at a time."""

from __future__ import annotations

import asyncio
import logging.config

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.config import DatabaseSettings
from bot.db.engine import is_sqlite, make_engine
from bot.db.locks import MIGRATIONS_NAMESPACE
from bot.db.models import Base

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("database_url")
    if isinstance(url, str):
        return url
    return DatabaseSettings().database_url


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Two processes starting together must not both run the same migration: the second
        # waits here (however long the first takes: no lock timeout), then finds the
        # database already at head.
        connection.execute(text("SET LOCAL lock_timeout = 0"))
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, 0)"), {"namespace": MIGRATIONS_NAMESPACE}
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    url = _url()
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=is_sqlite(url),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    asyncio.run(_run_online())
