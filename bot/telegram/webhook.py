"""Webhook mode: an HTTP server Telegram posts updates to, plus a health check.

Each update is handled before the response is sent, so Telegram delivers it again if the
process dies half-way (with several processes on PostgreSQL, the per-chat locks make sure it
is acted on once). A request without the right secret token is refused with 403 and never
reaches a handler.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import text
from telegram import Update

from bot.app import allowed_updates
from bot.config import Settings
from bot.telegram.handlers.base import BotApp

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
            data = json.loads(await request.read())
            update = Update.de_json(data, application.bot)
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400, text="not an update")
        if update is None:
            return web.Response(status=400, text="not an update")
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


async def serve(application: BotApp, settings: Settings) -> None:
    """Run the bot in webhook mode until SIGTERM or SIGINT; then finish in-flight updates."""
    assert settings.webhook_url is not None
    assert settings.webhook_secret is not None
    secret = settings.webhook_secret.get_secret_value()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
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
                settings.webhook_url, secret_token=secret, allowed_updates=allowed_updates()
            )
            logger.info(
                "Listening for updates on %s:%s", settings.webhook_listen, settings.webhook_port
            )
            await stop.wait()
            logger.info("Stopping: finishing the updates in flight")
        finally:
            # Stops accepting, then waits for the requests (updates) being handled.
            await runner.cleanup()
            await application.stop()
    finally:
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
