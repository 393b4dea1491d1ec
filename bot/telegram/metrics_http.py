"""`GET /metrics`: the running bot's Prometheus metrics (`bot.metrics`), in
prometheus-client's own text exposition.

The route is part of the bot's HTTP server whenever that runs (`bot.telegram.webhook`: webhook
mode, or the web login); in polling mode without it, METRICS_PORT gives the route a server of
its own (`serving`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.telegram.handlers.base import BotApp
from bot.web.server import http_server

logger = logging.getLogger(__name__)

PATH = "/metrics"


def routes(application: BotApp) -> list[web.RouteDef]:
    """GET /metrics: the running bot's metrics (503 while it starts)."""

    async def metrics(_: web.Request) -> web.Response:
        services = application.bot_data.services
        if services is None:
            return web.Response(status=503, text="starting")
        body = generate_latest(services.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return [web.get(PATH, metrics)]


@contextlib.asynccontextmanager
async def serving(application: BotApp, host: str, port: int) -> AsyncIterator[None]:
    """A server of its own for GET /metrics (METRICS_LISTEN:METRICS_PORT) while inside."""
    async with http_server(routes(application), host=host, port=port):
        logger.info("Serving metrics on http://%s:%s%s", host, port, PATH)
        yield
