"""Polling: the bot fetches its updates from Telegram (getUpdates) and hands each to the
application's update processor, as the webhook server does with the updates posted to it.

python-telegram-bot's own `Updater` makes every fetched update a task at once and confirms it
to Telegram with the next call, so after an outage the whole flood waiting at Telegram lands
in memory together; and its retry loop sleeps out each pause (a 429 may ask for a minute)
before it notices a stop. This poller instead:

- fetches only while fewer than `max_pending` updates are fetched and not yet handled, and
  never more than fit: the rest waits at Telegram, unconfirmed;
- holds at most `MAX_PER_CHAT` of one chat's updates (they run one after another): beyond
  that a chat's flood is dropped, so it cannot fill the room every other chat needs;
- retries a failed getUpdates after a growing pause (1 s doubling up to 30 s, or what a 429
  asks for), logging when fetching stops working (again if the cause changes) and when it
  works again, one line each;
- stops at once whatever the network does: the poll or pause in progress is cancelled, the
  updates in hand get `STOP_GRACE_SECONDS` to finish (longer ones are cancelled, as a crash
  would; the login survives that) while the offset of the fetched ones is confirmed with a
  short call, given up after `CONFIRM_SECONDS` (they are then fetched again at the next
  start).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import functools
import logging
import warnings
from collections.abc import AsyncIterator

from telegram import Update
from telegram.error import RetryAfter
from telegram.warnings import PTBDeprecationWarning

from bot.app import ALLOWED_UPDATES
from bot.config import Settings
from bot.telegram.handlers.base import BotApp
from bot.telegram.ordering import chat_key

logger = logging.getLogger(__name__)

# The most updates one getUpdates returns (Telegram's limit).
GET_UPDATES_LIMIT = 100
# The most updates of one chat held at once; no person types faster than the bot answers,
# and a group's answers are held to Telegram's 20 a minute anyway.
MAX_PER_CHAT = 20
# How long the updates in hand may still run once the bot is told to stop: with the rest of
# the shutdown it fits the 10 s service managers usually give before SIGKILL.
STOP_GRACE_SECONDS = 7.0
# How long the last call that confirms the fetched updates may take when stopping.
CONFIRM_SECONDS = 2.0
# Pauses between failed getUpdates: the first, and the longest.
FIRST_PAUSE_SECONDS = 1.0
LONGEST_PAUSE_SECONDS = 30.0


def max_pending(settings: Settings) -> int:
    """How many fetched updates may wait or run at once: every handling slot busy and one
    more batch waiting for them."""
    return settings.max_concurrent_updates + GET_UPDATES_LIMIT


@contextlib.asynccontextmanager
async def polling(
    application: BotApp, settings: Settings, *, poll_timeout: int = 10
) -> AsyncIterator[None]:
    """Fetch updates for a running bot while inside (`bot.telegram.lifecycle.running`); on
    exit stop fetching and finish the updates in hand (see the module docstring)."""
    poller = Poller(
        application,
        max_pending=max_pending(settings),
        poll_timeout=poll_timeout,
        allowed_updates=ALLOWED_UPDATES,
    )
    await poller.start()
    try:
        yield
    finally:
        await poller.stop()


class Poller:
    """Fetches updates while there is room for them and hands them to the update processor."""

    def __init__(
        self,
        application: BotApp,
        *,
        max_pending: int,
        poll_timeout: int,
        allowed_updates: list[str],
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._application = application
        self._max_pending = max_pending
        self._poll_timeout = poll_timeout
        self._allowed_updates = allowed_updates
        self._offset = 0  # the next update to ask for (0: the oldest Telegram has)
        self._confirmed = 0  # the offset Telegram was last given
        self._in_hand: set[asyncio.Task[None]] = set()
        self._per_chat: dict[int, int] = {}  # chat -> its updates in hand
        self._shedding: set[int] = set()  # chats whose flood is being dropped
        self._room = asyncio.Event()
        self._room.set()
        self._fetcher: asyncio.Task[None] | None = None

    @property
    def in_hand(self) -> int:
        """Updates fetched and not yet handled."""
        return len(self._in_hand)

    async def start(self) -> None:
        """Start fetching (a webhook left from an earlier run would make getUpdates fail)."""
        await self._application.bot.delete_webhook()
        self._fetcher = asyncio.create_task(self._fetch_forever(), name="poller")

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop fetching at once, confirm what was fetched and let the updates in hand finish,
        both within `grace` seconds."""
        if self._fetcher is not None:
            self._fetcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fetcher
            self._fetcher = None
        confirm = asyncio.create_task(self._confirm(), name="poller-confirm")
        _, late = await asyncio.wait({confirm, *self._in_hand}, timeout=grace)
        if late:
            unfinished = len(late - {confirm})
            if unfinished:
                logger.warning(
                    "Stopping: %d updates were still being handled after %g s; cancelled",
                    unfinished,
                    grace,
                )
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _fetch_forever(self) -> None:
        failures = 0
        cause: type[BaseException] | None = None
        while True:
            await self._room.wait()
            try:
                updates = await self._application.bot.get_updates(
                    offset=self._offset,
                    limit=min(GET_UPDATES_LIMIT, self._max_pending - len(self._in_hand)),
                    timeout=self._poll_timeout,
                    allowed_updates=self._allowed_updates,
                )
            except Exception as error:
                # Telegram or the network failing, whatever the cause: try again later.
                failures += 1
                if type(error) is not cause:
                    cause = type(error)
                    logger.warning(
                        "Cannot fetch updates from Telegram (%s: %s); retrying",
                        type(error).__name__,
                        error,
                    )
                await asyncio.sleep(_pause(error, failures))
                continue
            self._confirmed = self._offset
            if failures:
                logger.info("Fetching updates from Telegram again after %d failures", failures)
                failures, cause = 0, None
            for update in updates:
                self._offset = update.update_id + 1
                self._hand_over(update)

    def _hand_over(self, update: Update) -> None:
        """Handle the update in a task of its own (the processor decides when it runs), unless
        its chat already has `MAX_PER_CHAT` in hand."""
        chat = chat_key(update)
        if chat is not None:
            held = self._per_chat.get(chat, 0)
            if held >= MAX_PER_CHAT:
                if chat not in self._shedding:
                    self._shedding.add(chat)
                    logger.warning(
                        "Chat %s has %d updates waiting; dropping its further updates until "
                        "they are handled",
                        chat,
                        held,
                    )
                return
            self._per_chat[chat] = held + 1
        task = asyncio.create_task(self._handle(update), name=f"update-{update.update_id}")
        self._in_hand.add(task)
        task.add_done_callback(functools.partial(self._handled, chat))
        if len(self._in_hand) >= self._max_pending:
            self._room.clear()

    def _handled(self, chat: int | None, task: asyncio.Task[None]) -> None:
        self._in_hand.discard(task)
        self._room.set()
        if chat is not None:
            left = self._per_chat.pop(chat) - 1
            if left:
                self._per_chat[chat] = left
            else:
                self._shedding.discard(chat)

    async def _handle(self, update: Update) -> None:
        application = self._application
        coroutine = application.process_update(update)
        try:
            await application.update_processor.process_update(update, coroutine)
        except Exception:
            # The handlers' own errors go to the error handler; this is what fails around
            # them (the update processor).
            logger.exception("Update %s could not be handled", update.update_id)
        finally:
            # A no-op once it ran; one cancelled (or failed) before its turn never started.
            coroutine.close()

    async def _confirm(self) -> None:
        """Tell Telegram the fetched updates are taken, so it does not send them again."""
        if self._offset == self._confirmed:
            return
        try:
            async with asyncio.timeout(CONFIRM_SECONDS):
                await self._application.bot.get_updates(
                    offset=self._offset, limit=1, timeout=0, allowed_updates=self._allowed_updates
                )
        except Exception as error:
            logger.warning(
                "Could not confirm the last updates to Telegram (%s); they will be fetched "
                "again at the next start",
                type(error).__name__,
            )


def _pause(error: Exception, failures: int) -> float:
    """Seconds to wait before the next getUpdates after `failures` failed ones in a row."""
    if isinstance(error, RetryAfter):
        with warnings.catch_warnings():
            # PTB 22 warns that `retry_after` will become a timedelta; either is read here.
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            wait: dtm.timedelta | float = error.retry_after
        return wait.total_seconds() if isinstance(wait, dtm.timedelta) else float(wait)
    doublings = min(failures - 1, 16)  # far past the longest pause; 2.0 ** n stays finite
    return min(FIRST_PAUSE_SECONDS * 2.0**doublings, LONGEST_PAUSE_SECONDS)
