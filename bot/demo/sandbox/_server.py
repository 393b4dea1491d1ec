"""Shared plumbing for the sandbox servers: an aiohttp app on 127.0.0.1, port 0, in the
current event loop, plus small helpers for change notification and interruptible sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
import ssl
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from aiohttp import web

logger = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a server that must be
    told its port before it starts)."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


class SandboxServer:
    """Base class: lifecycle (``start``/``stop``/``async with``) and wake-up helpers.

    Subclasses implement :meth:`_build_app` and may override :meth:`_ssl_context`.
    """

    #: Seconds ``stop()`` waits for in-flight handlers before cancelling them.
    shutdown_timeout: float = 1.0

    def __init__(self, *, port: int = 0) -> None:
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        self._hook_tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        raise NotImplementedError

    def _ssl_context(self) -> ssl.SSLContext | None:
        return None

    @property
    def started(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._runner is not None

    @property
    def port(self) -> int:
        """The TCP port the server listens on (only after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    async def start(self) -> None:
        """Start listening on ``127.0.0.1`` (random free port unless one was given)."""
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        self._stopping = asyncio.Event()
        runner = web.AppRunner(
            self._build_app(),
            handle_signals=False,
            access_log=None,  # the Telegram token is part of every path
            handler_cancellation=True,  # a client that hangs up cancels its handler
            shutdown_timeout=self.shutdown_timeout,
        )
        await runner.setup()
        try:
            site = web.TCPSite(
                runner, LOCALHOST, self._requested_port, ssl_context=self._ssl_context()
            )
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        logger.debug("%s listening on %s:%d", type(self).__name__, LOCALHOST, self._port)

    async def stop(self) -> None:
        """Stop serving: wake every waiting handler, close connections. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopping.set()
        self._notify()
        server = runner.server
        transports = [c.transport for c in server.connections] if server is not None else []
        try:
            await runner.cleanup()
        finally:
            # A TLS connection closed by cleanup() waits (up to 30 s) for the peer's
            # close_notify with its socket still open; nobody will wait for that here.
            for transport in transports:
                if transport is not None:
                    transport.abort()
            for _ in range(2):  # let the transports run their connection_lost callbacks
                await asyncio.sleep(0)
            if self._hook_tasks:
                await asyncio.gather(*self._hook_tasks, return_exceptions=True)
            logger.debug("%s on port %s stopped", type(self).__name__, self._port)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- helpers for subclasses ------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _notify(self) -> None:
        """Wake everything waiting in :meth:`_wait_changed`."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_changed(self, seconds: float) -> None:
        """Wait until the next :meth:`_notify` (or ``seconds``)."""
        if seconds <= 0:
            return
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, but return early (False) when the server is stopping."""
        if seconds <= 0:
            return not self.stopping
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return True
        return False

    def _run_hook(self, hook: Callable[..., object] | None, *args: object) -> None:
        """Call a user callback; an awaitable result is run as a task (awaited by stop)."""
        if hook is None:
            return
        try:
            result = hook(*args)
        except Exception:
            logger.exception("sandbox callback %r failed", hook)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._hook_tasks.add(task)
            task.add_done_callback(self._hook_done)

    def _hook_done(self, task: asyncio.Task[Any]) -> None:
        self._hook_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("sandbox callback failed", exc_info=task.exception())
