"""The bot's `Application`, measured: every update it handles is counted and timed, and the
updates in flight and waiting are gauged, whichever way updates arrive (polling or webhook)
and whichever processor orders them."""

from __future__ import annotations

import logging
import time
from typing import Any

from telegram import Update
from telegram.ext import Application, ExtBot

from bot.metrics import Metrics
from bot.telegram.handlers.base import BotContext, BotData

logger = logging.getLogger(__name__)


class MeasuredApplication(
    Application[ExtBot[int], BotContext, dict[Any, Any], dict[Any, Any], BotData, Any]
):
    """PTB's Application (built by `bot.app.build_application` through the builder's
    `application_class`), feeding the update metrics."""

    __slots__ = ("_in_flight", "_metrics")

    def __init__(self, *, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._metrics = metrics
        self._in_flight = 0
        metrics.updates_in_flight.set_function(lambda: self._in_flight)
        metrics.updates_waiting.set_function(self._waiting)

    async def process_update(self, update: object) -> None:
        """Handle the update as PTB does, timed from its first handler to its last."""
        kind = update_type(update)
        self._in_flight += 1
        started = time.perf_counter()
        try:
            await super().process_update(update)
        finally:
            self._in_flight -= 1
            seconds = time.perf_counter() - started
            self._metrics.updates.labels(kind).observe(seconds)
            logger.debug(
                "Handled a %s update in %.3f s",
                kind,
                seconds,
                extra={"update_type": kind, "duration": round(seconds, 4)},
            )

    def _waiting(self) -> int:
        """Updates received and not being handled yet: fetched and still queued, or held by
        the processor until their chat's earlier updates are done or a slot is free."""
        held = self.update_processor.current_concurrent_updates - self._in_flight
        return self.update_queue.qsize() + max(held, 0)


def update_type(update: object) -> str:
    """The update's kind as Telegram names it (`message`, `callback_query`, ...)."""
    if isinstance(update, Update):
        for kind in Update.ALL_TYPES:
            if getattr(update, kind, None) is not None:
                return str(kind)
    return "other"
