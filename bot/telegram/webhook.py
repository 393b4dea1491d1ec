"""The bot's HTTP server: in webhook mode Telegram posts updates to it; it always answers a
health check and serves the metrics (`bot.telegram.metrics_http`); and with OIDC_ISSUER set it
serves the OpenID Connect endpoints (`bot.web.oidc`), in polling mode too (then without the
webhook path).

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
import json
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import text

from bot.app import ALLOWED_UPDATES
from bot.clock import utcnow
from bot.config import Settings
from bot.login import gateway
from bot.login.weblogin import WebLogin
from bot.telegram import metrics_http
from bot.telegram.handlers.base import BotApp
from bot.telegram.updates import NotAnUpdate, parse_update
from bot.web.oidc import OidcEdge, oidc_routes
from bot.web.server import http_server

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
# Where the Telegram Gateway posts its delivery reports, on the bot's public base URL.
GATEWAY_REPORT_PATH = "/gateway/report"
# The report's fields this records: a delivery status is one of a few short words.
_REPORT_STATUSES = frozenset({"sent", "delivered", "read", "expired", "revoked"})


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


def gateway_report_routes(application: BotApp, *, path: str, token: str) -> list[web.RouteDef]:
    """POST `path`: the Telegram Gateway's delivery reports, recorded in the
    audit trail once their signature (`bot.login.gateway.report_is_genuine`) holds; a report
    that is not signed with our token, or is stale, is refused with 403 and changes nothing."""

    async def report(request: web.Request) -> web.Response:
        body = await request.read()
        genuine = gateway.report_is_genuine(
            token,
            timestamp=request.headers.get(gateway.TIMESTAMP_HEADER, ""),
            signature=request.headers.get(gateway.SIGNATURE_HEADER, ""),
            body=body,
            now=utcnow().timestamp(),
        )
        if not genuine:
            logger.warning("Refused a Gateway delivery report with a bad or stale signature")
            return web.Response(status=403, text="forbidden")
        try:
            status = json.loads(body)
        except ValueError:
            status = None
        request_id = status.get("request_id") if isinstance(status, dict) else None
        delivery = status.get("delivery_status") if isinstance(status, dict) else None
        state = delivery.get("status") if isinstance(delivery, dict) else None
        if not isinstance(request_id, str) or not 0 < len(request_id) <= 64:
            return web.Response(status=400, text="no request_id")
        services = application.bot_data.services
        if services is None:
            return web.Response(status=503, text="starting")
        known = state if isinstance(state, str) and state in _REPORT_STATUSES else "unknown"
        await services.login.record_report(request_id, known)
        return web.Response(text="ok")

    return [web.post(path, report)]


def gateway_callback_url(settings: Settings) -> str | None:
    """Where the Gateway should post delivery reports: the bot's public base URL (the
    webhook's origin, or OIDC_ISSUER) when it serves HTTP; None when it does not."""
    if settings.webhook_url:
        parts = urlsplit(settings.webhook_url)
        return f"{parts.scheme}://{parts.netloc}{GATEWAY_REPORT_PATH}"
    if settings.oidc_issuer:
        # Under the issuer's path, as the OIDC endpoints are (the proxy passes it on).
        return settings.oidc_issuer + GATEWAY_REPORT_PATH
    return None


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
            if not services.database.failed(error):  # an outage is logged once
                logger.warning(
                    "Health check: the database does not answer (%s)", type(error).__name__
                )
            return web.Response(status=503, text="database unavailable")
        services.database.answered()
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


def serves_http(settings: Settings) -> bool:
    """Whether the bot runs its HTTP server (`web_serving`): for the webhook, or for the web
    login (polling too)."""
    return bool(settings.webhook_url or settings.oidc_issuer)


def web_serving(application: BotApp, settings: Settings) -> AbstractAsyncContextManager[int]:
    """The HTTP server of a running bot on WEBHOOK_LISTEN:WEBHOOK_PORT: the health check, the
    metrics, the webhook when WEBHOOK_URL is set, the OIDC endpoints when OIDC_ISSUER is set.
    On exit it stops accepting, then waits for the requests (updates) being handled."""
    routes = [
        *health_routes(application),
        *metrics_http.routes(application),
        *oidc_edge_routes(application, settings),
    ]
    token, callback = settings.telegram_gateway_token, gateway_callback_url(settings)
    if token is not None and callback is not None:
        routes += gateway_report_routes(
            application, path=urlsplit(callback).path, token=token.get_secret_value()
        )
    if settings.webhook_url and settings.webhook_secret is not None:
        routes += webhook_routes(
            application,
            path=webhook_path(settings.webhook_url),
            secret=settings.webhook_secret.get_secret_value(),
        )

    def failed(error: BaseException) -> None:
        services = application.bot_data.services
        if services is not None:
            services.metrics.failed(error)

    return http_server(
        routes, host=settings.webhook_listen, port=settings.webhook_port, failed=failed
    )


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
