"""How fast the bot talks to the Bot API: Telegram's flood limits, and a bound on the calls on
the wire at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import AIORateLimiter

JSONDict = dict[str, Any]  # what the Bot API answers, as PTB types it


class BoundedRateLimiter(AIORateLimiter):
    """PTB's rate limiter (Telegram's flood limits, retries after a 429), letting at most
    `max_in_flight` Bot API calls through at once.

    The calls go out through `bot.telegram.http.AiohttpRequest`, whose connection pool is a
    little larger than `max_in_flight`. Without the bound, a burst of updates (hundreds of
    handlers answering at once) would queue its calls inside aiohttp's connector, where each
    waits with its pool timeout running and fails as `TimedOut` when the burst outlasts it.
    Waiting here has no timeout, and every call let through finds a free connection.
    """

    def __init__(self, *, max_in_flight: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._in_flight = asyncio.Semaphore(max_in_flight)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        """Wait for a free slot, then let PTB's limiter send the request."""
        async with self._in_flight:
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )
