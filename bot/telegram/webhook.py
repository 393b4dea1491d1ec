"""The bot's HTTP server: in webhook mode Telegram posts updates to it; it always answers a
health check; and with OIDC_ISSUER set it serves the OpenID Connect endpoints (`bot.web.oidc`),
in polling mode too (then without the webhook path).

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
from contextlib import AbstractAsyncContextManager
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import text

from bot.app import ALLOWED_UPDATES
from bot.config import Settings
from bot.login.weblogin import WebLogin
from bot.telegram.handlers.base import BotApp
from bot.telegram.updates import NotAnUpdate, parse_update
from bot.web.oidc import OidcEdge, oidc_routes
from bot.web.server import http_server

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


def webhook_routes(application: BotApp, *, path: str, secret: str) -> list[web.RouteDef]:
    """POST `path`: Telegram's updates."""

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

    return [web.post(path, receive)]


def health_routes(application: BotApp) -> list[web.RouteDef]:
    """GET /healthz: 200 when the database answers."""

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

    return [web.get("/healthz", healthz)]


def oidc_edge_routes(application: BotApp, settings: Settings) -> list[web.RouteDef]:
    """The OpenID Connect endpoints, when OIDC_ISSUER is set."""
    if settings.oidc_issuer is None:
        return []

    def provider() -> tuple[WebLogin, str] | None:
        services = application.bot_data.services
        if services is None or services.web is None:
            return None
        return services.web, application.bot.username

    return oidc_routes(
        settings.oidc_issuer,
        OidcEdge(provider=provider, trusted_proxies=settings.webhook_trusted_proxies),
    )


def web_serving(application: BotApp, settings: Settings) -> AbstractAsyncContextManager[int]:
    """The HTTP server of a running bot on WEBHOOK_LISTEN:WEBHOOK_PORT: the health check, the
    webhook when WEBHOOK_URL is set, the OIDC endpoints when OIDC_ISSUER is set. On exit it
    stops accepting, then waits for the requests (updates) being handled."""
    routes = health_routes(application) + oidc_edge_routes(application, settings)
    if settings.webhook_url and settings.webhook_secret is not None:
        routes += webhook_routes(
            application,
            path=webhook_path(settings.webhook_url),
            secret=settings.webhook_secret.get_secret_value(),
        )
    return http_server(routes, host=settings.webhook_listen, port=settings.webhook_port)


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
    async with web_serving(application, settings):
        await application.bot.set_webhook(
            settings.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
        )
        logger.info(
            "Listening for updates on %s:%s", settings.webhook_listen, settings.webhook_port
        )
        yield
