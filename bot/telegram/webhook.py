"""Webhook mode: an HTTP server Telegram posts updates to, plus a health check.

Each update is handled before the response is sent, so Telegram delivers it again if the
process dies half-way (with several processes on PostgreSQL, the per-chat locks make sure it
is acted on once). A request without the right secret token is refused with 403 and never
reaches a handler. A body with the secret that is not an update (`bot.telegram.updates`) is
answered 200 and dropped with one warning: Telegram delivers again whatever it does not get a
2xx for, so any other answer would bring the same body back for as long as Telegram tries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import text

from bot.app import ALLOWED_UPDATES
from bot.config import Settings
from bot.telegram.handlers.base import BotApp
from bot.telegram.updates import NotAnUpdate, parse_update

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
# Telegram's updates are small; anything much larger is not from Telegram.
MAX_BODY = 1 << 20


def webhook_app(application: BotApp, *, path: str, secret: str) -> web.Application:
    """The aiohttp application: POST `path` for updates, GET /healthz for the database."""

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=403, text="forbidden")
        try:
            update = parse_update(await request.read(), application.bot)
        except NotAnUpdate as error:
            logger.warning("Ignored a webhook body that is not a Telegram update: %s", error)
            return web.Response(text="ignored")
        processor = application.update_processor
        await processor.process_update(update, application.process_update(update))
        return web.Response(text="ok")

    async def healthz(_: web.Request) -> web.Response:
        services = application.bot_data.services
        if services is None:
            return web.Response(status=503, text="starting")
        try:
            async with asyncio.timeout(5):
                async with services.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except Exception as error:
            logger.warning("Health check: the database does not answer (%s)", type(error).__name__)
            return web.Response(status=503, text="database unavailable")
        return web.Response(text="ok")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get("/healthz", healthz)
    app.router.add_post(path, receive)
    return app


def webhook_path(url: str) -> str:
    """The path Telegram posts to, from WEBHOOK_URL (`/` when it has none)."""
    return urlsplit(url).path or "/"


@contextlib.asynccontextmanager
async def receiving(application: BotApp, settings: Settings) -> AsyncIterator[None]:
    """Serve the webhook (and /healthz) for a running bot while inside, and tell Telegram to
    post there; on exit stop accepting, then wait for the updates being handled."""
    assert settings.webhook_url is not None
    assert settings.webhook_secret is not None
    secret = settings.webhook_secret.get_secret_value()
    runner = web.AppRunner(
        webhook_app(application, path=webhook_path(settings.webhook_url), secret=secret),
        access_log=None,
        shutdown_timeout=30,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.webhook_listen, settings.webhook_port)
        await site.start()
        await application.bot.set_webhook(
            settings.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
        )
        logger.info(
            "Listening for updates on %s:%s", settings.webhook_listen, settings.webhook_port
        )
        yield
    finally:
        await runner.cleanup()
