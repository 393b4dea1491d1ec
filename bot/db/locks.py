"""Per-chat locks across processes (PostgreSQL), so several bot processes sharing one
database never handle the same chat at the same time, and act on each update once.

Each update holds a session-level advisory lock keyed by its chat id on a connection of its
own (autocommit, from a pool kept apart from the handlers' pool, so lock holders can never
starve the handlers of connections). Advisory locks with one bigint key live apart from the
two-int4 keys used for migrations and numbers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# Advisory lock namespaces for the two-int4 form (chat locks use the one-bigint form).
MIGRATIONS_NAMESPACE = 1
NUMBERS_NAMESPACE = 2


class ChatLocks:
    """Advisory locks per chat, and the record of updates already handled."""

    def __init__(self, url: str, *, size: int) -> None:
        self._engine: AsyncEngine = create_async_engine(
            url,
            pool_size=size,
            max_overflow=0,
            # Updates beyond the pool wait their turn rather than fail.
            pool_timeout=600,
            pool_pre_ping=True,
            isolation_level="AUTOCOMMIT",
            hide_parameters=True,
        )

    @asynccontextmanager
    async def hold(self, chat_id: int, update_id: int) -> AsyncIterator[bool]:
        """Hold the chat's lock for the body; yields False if the update was already handled
        (by this or another process), and records it as handled when the body succeeds."""
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT pg_advisory_lock(:chat)"), {"chat": chat_id})
            try:
                done = await connection.scalar(
                    text("SELECT 1 FROM processed_updates WHERE update_id = :id"),
                    {"id": update_id},
                )
                yield done is None
                if done is None:
                    await connection.execute(
                        text(
                            "INSERT INTO processed_updates (update_id, at) VALUES (:id, :at) "
                            "ON CONFLICT DO NOTHING"
                        ),
                        {"id": update_id, "at": datetime.now(UTC)},
                    )
            finally:
                await connection.execute(
                    text("SELECT pg_advisory_unlock(:chat)"), {"chat": chat_id}
                )

    async def purge(self, *, older_than: timedelta = timedelta(days=2)) -> None:
        """Forget handled updates too old to be delivered again."""
        async with self._engine.connect() as connection:
            await connection.execute(
                text("DELETE FROM processed_updates WHERE at < :before"),
                {"before": datetime.now(UTC) - older_than},
            )

    async def close(self) -> None:
        """Close the lock connections."""
        await self._engine.dispose()
