"""The bot's HTTP server: one aiohttp application for whatever the process serves (the health
check; Telegram's webhook in webhook mode; the OpenID Connect endpoints when OIDC_ISSUER is
set), listening on WEBHOOK_LISTEN:WEBHOOK_PORT behind the TLS proxy.

Tests start it on a free port (`port=0`) and read the port it got:

    async with http_server(routes, host="127.0.0.1", port=0) as port:
        ...  # http://127.0.0.1:{port}/...
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware
from sqlalchemy.exc import SQLAlchemyError

from bot import texts
from bot.web import pages

logger = logging.getLogger(__name__)

# Telegram's updates and the web login's forms are small; anything much larger is neither.
MAX_BODY = 1 << 20

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_H = TypeVar("_H", bound=Handler)
# The handlers a person's browser reads (the login page): a failure is answered with a page;
# every other route's is answered in OAuth 2.0's JSON ("temporarily_unavailable", RFC 6749).
_PAGES: weakref.WeakSet[Handler] = weakref.WeakSet()


def answers_pages(handler: _H) -> _H:
    """Mark a route's handler as one a browser reads, so a failure is answered as a page."""
    _PAGES.add(handler)
    return handler


def _failure(request: web.Request, status: int) -> web.Response:
    """The plain answer to a request whose handler failed (503: the database; 500: else)."""
    if request.match_info.handler in _PAGES:
        page = pages.message_page(texts.PAGE_UNAVAILABLE_TITLE, texts.PAGE_UNAVAILABLE)
        return pages.html_response(page, status=status)
    error = "temporarily_unavailable" if status == 503 else "server_error"
    return web.json_response({"error": error}, status=status, headers={"Cache-Control": "no-store"})


def _route(request: web.Request) -> str:
    """The request's route pattern for a log line: never the path itself, which may carry a
    login request's id."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "-"


def _answering_failures(failed: Callable[[BaseException], None]) -> Middleware:
    """No request raises: a database error is answered 503 (counted through `failed`, one
    warning naming its class: the database being down would otherwise log a traceback per
    request), anything else unexpected 500 with its traceback logged once. aiohttp's own
    HTTP answers (404, 405, 413, redirects) pass through unchanged."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except SQLAlchemyError as error:
            failed(error)
            logger.warning(
                "Answered %s %s with 503: database error (%s)",
                request.method,
                _route(request),
                type(error).__name__,
            )
            return _failure(request, 503)
        except Exception:
            logger.exception(
                "Answered %s %s with 500: unexpected error",
                request.method,
                _route(request),
            )
            return _failure(request, 500)

    return middleware


@contextlib.asynccontextmanager
async def http_server(
    routes: Sequence[web.RouteDef],
    *,
    host: str,
    port: int,
    failed: Callable[[BaseException], None] = lambda _: None,
) -> AsyncIterator[int]:
    """Serve these routes while inside; yields the port listened on. A handler's failure is
    answered plainly (`_answering_failures`), counted through `failed` (`Metrics.failed`). On
    the way out it stops accepting, then waits for the requests being handled (a webhook's
    update, say)."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_answering_failures(failed)])
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=30)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = int(runner.addresses[0][1]) if port == 0 else port
        logger.info("HTTP server listening on %s:%s", host, bound)
        yield bound
    finally:
        await runner.cleanup()
