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
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

logger = logging.getLogger(__name__)

# Telegram's updates and the web login's forms are small; anything much larger is neither.
MAX_BODY = 1 << 20


@contextlib.asynccontextmanager
async def http_server(
    routes: Sequence[web.RouteDef], *, host: str, port: int
) -> AsyncIterator[int]:
    """Serve these routes while inside; yields the port listened on. On the way out it stops
    accepting, then waits for the requests being handled (a webhook's update, say)."""
    app = web.Application(client_max_size=MAX_BODY)
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
