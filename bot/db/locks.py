"""Per-chat ordering across processes (PostgreSQL): several bot processes sharing one
database never handle the same chat at the same time, and act on each update once, within
the connections of their ordinary pool.

A process handling a chat's update holds the chat's *claim*, a row in `chat_claims`, taken
and given back by one short statement each; no connection is held while the update runs (a
session advisory lock would pin one per update in flight, and a burst then needs more
connections than a stock server has).

- A claim is taken when the chat has none, or its claim has lapsed. An update of a chat
  claimed by another process waits for it, polling, at most `wait` seconds; then `ChatBusy`,
  and the user is answered with the apology (the update is not acted on: they try again).
- A process renews its claims every `lease / 3` seconds, so the claims of a process that died
  or froze lapse within `lease`. It stops renewing a claim held for `max_hold` seconds: an
  update stuck that long must not keep its chat forever.
- An update is recorded as handled (`processed_updates`) by the statement that gives its claim
  back: a copy delivered again, or to another process, finds it there and is dropped.

Every time comes from the server's clock (`clock_timestamp()`), the one all processes share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

# Advisory lock namespaces (the two-int4 form), held for a transaction.
MIGRATIONS_NAMESPACE = 1
ADMISSIONS_NAMESPACE = 2
OIDC_NAMESPACE = 3  # the provider's one-time setup and its per-client request counts

# A claim's life without renewal: how soon a dead or frozen process's chats are free again.
LEASE_SECONDS = 10.0
# The longest an update keeps its chat: renewals stop after this (no sane update runs that
# long: every Verify and Telegram call it makes has its own timeout).
MAX_HOLD_SECONDS = 120.0
# How long an update waits for a chat another process holds before it gets the apology.
WAIT_SECONDS = 30.0

_CLAIM = text(
    "INSERT INTO chat_claims AS c (chat_id, holder, update_id, taken_at, until) "
    "VALUES (:chat, :holder, :update, clock_timestamp(), "
    "        clock_timestamp() + make_interval(secs => :lease)) "
    "ON CONFLICT (chat_id) DO UPDATE SET holder = excluded.holder, "
    "    update_id = excluded.update_id, taken_at = excluded.taken_at, until = excluded.until "
    # Our own claim on the chat can only be one whose release failed: in this process the
    # chat's updates already run one at a time.
    "WHERE c.until < clock_timestamp() OR c.holder = excluded.holder "
    "RETURNING c.chat_id"
)
_HANDLED = text("SELECT 1 FROM processed_updates WHERE update_id = :update")
_RELEASE = text("DELETE FROM chat_claims WHERE chat_id = :chat AND holder = :holder")
_RELEASE_HANDLED = text(
    "WITH handled AS (INSERT INTO processed_updates (update_id, at) "
    "                 VALUES (:update, clock_timestamp()) ON CONFLICT DO NOTHING) "
    "DELETE FROM chat_claims WHERE chat_id = :chat AND holder = :holder"
)
_RENEW = text(
    "UPDATE chat_claims SET until = clock_timestamp() + make_interval(secs => :lease) "
    "WHERE holder = :holder AND taken_at > clock_timestamp() - make_interval(secs => :max_hold)"
)


class ChatBusy(Exception):
    """Another process kept the chat for longer than an update waits for it."""

    def __init__(self, chat_id: int, waited: float) -> None:
        super().__init__(f"chat {chat_id} was held by another process for {waited:g} s")
        self.chat_id = chat_id
        self.waited = waited


class ChatLocks:
    """The chat claims of one process, and the record of updates already handled."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        lease: float = LEASE_SECONDS,
        max_hold: float = MAX_HOLD_SECONDS,
        wait: float = WAIT_SECONDS,
    ) -> None:
        # One statement each: autocommit spares a BEGIN and a COMMIT round trip.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._holder = secrets.token_hex(16)
        self._lease = lease
        self._max_hold = max_hold
        self._wait = wait
        self._holding = 0
        self._renewer: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def hold(self, chat_id: int, update_id: int) -> AsyncIterator[bool]:
        """Hold the chat's claim for the body; yields False if the update was already handled
        (by this or another process), and records it as handled when the body succeeds.
        ChatBusy if another process holds the chat for longer than the wait."""
        await self._claim(chat_id, update_id)
        self._holding += 1
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew(), name="chat-claims")
        handled = False
        try:
            async with self._engine.connect() as connection:
                fresh = await connection.scalar(_HANDLED, {"update": update_id}) is None
            yield fresh
            handled = fresh
        finally:
            self._holding -= 1
            await self._release(chat_id, update_id, handled=handled)

    async def _claim(self, chat_id: int, update_id: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        pause = 0.01
        params = {"chat": chat_id, "holder": self._holder, "update": update_id}
        while True:
            async with self._engine.connect() as connection:
                if await connection.scalar(_CLAIM, {**params, "lease": self._lease}) is not None:
                    return
            if loop.time() + pause > deadline:
                raise ChatBusy(chat_id, self._wait)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)

    async def _release(self, chat_id: int, update_id: int, *, handled: bool) -> None:
        try:
            async with self._engine.connect() as connection:
                if handled:
                    await connection.execute(
                        _RELEASE_HANDLED,
                        {"chat": chat_id, "holder": self._holder, "update": update_id},
                    )
                else:
                    await connection.execute(_RELEASE, {"chat": chat_id, "holder": self._holder})
        except Exception as error:
            # The claim lapses by itself; the update was handled, only its record is lost.
            logger.warning(
                "Could not give back the claim on chat %s (%s); it lapses in %g s",
                chat_id,
                type(error).__name__,
                self._lease,
            )

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            if not self._holding:
                continue
            try:
                async with self._engine.connect() as connection:
                    await connection.execute(
                        _RENEW,
                        {"holder": self._holder, "lease": self._lease, "max_hold": self._max_hold},
                    )
            except Exception as error:
                logger.warning("Could not renew the chat claims (%s)", type(error).__name__)

    async def purge(self, *, older_than: timedelta = timedelta(days=2)) -> None:
        """Forget claims that lapsed long ago (the records of handled updates age out with
        the sweeper's purge, `LoginStore.purge`)."""
        before = datetime.now(UTC) - older_than
        async with self._engine.connect() as connection:
            await connection.execute(
                text("DELETE FROM chat_claims WHERE until < :before"), {"before": before}
            )

    async def close(self) -> None:
        """Stop renewing (the updates have finished: nothing is held any more)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
