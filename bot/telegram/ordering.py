"""Update processing: different chats at once, one chat strictly in order.

PTB can process updates concurrently, but then two quick messages from one user can race
each other's conversation state. This processor runs updates of different chats concurrently
and the updates of one chat one after another, each after the previous one has finished;
where several processes share the chats, also across processes (`bot.db.locks`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.db.locks import ChatBusy, ChatLocks

#: Answers an update that was not run because another process kept its chat too long
#: (the application's error handlers: `Application.process_error`).
OnBusy = Callable[[Update, ChatBusy], Awaitable[object]]

# PTB's own bound is taken before an update waits for its chat: updates queued behind one
# busy chat would hold slots other chats need. Ours is taken once the chat's turn has come.
_UNBOUNDED = 1 << 30


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across chats, sequential within a chat (in arrival order), at most
    `max_concurrent_updates` being handled at once; updates waiting for their chat's turn
    do not count, so one chat's flood never holds up the others."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(_UNBOUNDED)
        self._running = asyncio.Semaphore(max_concurrent_updates)
        # chat id -> (lock, number of updates holding or waiting for it)
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}
        self._across: tuple[ChatLocks, OnBusy] | None = None

    def share_chats(self, locks: ChatLocks, *, on_busy: OnBusy) -> None:
        """Keep each chat in order across the processes sharing `locks`' database too, and
        act on each update once; `on_busy` answers an update whose chat another process
        kept too long."""
        self._across = (locks, on_busy)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the update once every earlier update of its chat has finished."""
        key = chat_key(update)
        if key is None:
            async with self._running:
                await coroutine
            return
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock, self._running:
                await self._run(update, key, coroutine)
        finally:
            lock_now, users_now = self._locks[key]
            if users_now <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock_now, users_now - 1)

    async def _run(self, update: object, chat_id: int, coroutine: Awaitable[Any]) -> None:
        if self._across is None or not isinstance(update, Update):
            await coroutine
            return
        locks, on_busy = self._across
        ran = False
        try:
            async with locks.hold(chat_id, update.update_id) as fresh:
                if fresh:
                    ran = True
                    await coroutine
        except ChatBusy as busy:
            if ran:
                raise
            await on_busy(update, busy)
        finally:
            if not ran and isinstance(coroutine, Coroutine):
                # Handled already (by another process, or an earlier delivery), or its chat
                # was busy for too long.
                coroutine.close()

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free: locks go when their last update finishes."""


def chat_key(update: object) -> int | None:
    """The chat whose updates run in order with this one (None: it runs on its own)."""
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return update.effective_chat.id
        if update.effective_user is not None:
            return update.effective_user.id
    return None
