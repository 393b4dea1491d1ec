"""`python -m bot demo --web`: log in to a website through the demo bot, in your own browser.

    browser ──► the example website (examples/website.py: Authlib, a stock OIDC client)
       │              │ "Log in with Telegram"
       └──────► the bot's login page, from the bot's HTTP server (OIDC_ISSUER), through
                the demo's LinkWatcher, which passes everything on unchanged
                      │ the page's Telegram link
                      └──► the terminal chat sends /start <token>, as your phone would
                           after you scanned the QR code or tapped the button

Everything listens on 127.0.0.1. The issuer is plain http, which the provider accepts for a
loopback address only (OIDC_ISSUER's check); the website is registered as a confidential
client of the demo's database, as `python -m bot clients add` registers a real one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from bot.config import Settings
from bot.db.engine import make_sessionmaker
from bot.demo.sandbox import free_port
from bot.demo.sandbox._server import LOCALHOST, SandboxServer
from bot.login.oidc_clients import Clients
from bot.telegram.handlers.base import BotApp
from bot.telegram.webhook import web_serving
from bot.web.pages import telegram_link

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "website.py"
WEBSITE_NAME = "Acme Shop"

# Not passed on: they describe one connection (RFC 9110 7.6.1), or the body the watcher
# re-encodes.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
        "accept-encoding",
    }
)


class Website(Protocol):
    """`examples/website.py`'s `website()`: the example site as an aiohttp application."""

    def __call__(
        self, *, issuer: str, client_id: str, client_secret: str | None, url: str
    ) -> web.Application: ...


class LinkWatcher(SandboxServer):
    """The browser's way to the bot's HTTP server: every request is passed on unchanged; a
    page that shows a Telegram link (`https://t.me/<bot>?start=<token>`) is reported to
    `on_link` once per token, as the person who sees it would tap it."""

    def __init__(self, *, upstream: str, bot_username: str) -> None:
        super().__init__()
        self.upstream = upstream
        self.on_link: Callable[[str], object] | None = None
        self._link = re.compile(re.escape(telegram_link(bot_username, "")) + r"([A-Za-z0-9_-]+)")
        self._seen: set[str] = set()
        self._http: aiohttp.ClientSession | None = None

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        return app

    async def start(self) -> None:
        # No cookie jar: the browser's cookies go through as they are, and stay its own.
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._http is not None:
            await self._http.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP
        )
        try:
            async with self._http.request(
                request.method,
                self.upstream + request.rel_url.path_qs,
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as answer:
                body = await answer.read()
                back = CIMultiDict(
                    (k, v) for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP
                )
                status = answer.status
                html = answer.content_type == "text/html"
        except aiohttp.ClientError:
            return web.Response(status=502, text="the demo bot's HTTP server does not answer")
        if html:
            for token in self._link.findall(body.decode(errors="replace")):
                if token not in self._seen:
                    self._seen.add(token)
                    self._run_hook(self.on_link, token)
        return web.Response(status=status, body=body, headers=back)


def load_website(path: Path = EXAMPLE) -> Website:
    """The example website's factory, from the checkout's examples/ (it is no part of the
    installed package: it stands for somebody else's website)."""
    spec = importlib.util.spec_from_file_location("examples.website", path)
    if spec is None or spec.loader is None or not path.exists():
        raise FileNotFoundError(f"{path} is missing (demo --web runs from a checkout)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    website: Website = module.website
    return website


@dataclass(frozen=True, slots=True)
class WebDemo:
    """The web demo, ready before the bot starts: the LinkWatcher listening (its URL is the
    issuer the browser sees), the port for the bot's HTTP server behind it, the website's
    socket and the website itself."""

    watcher: LinkWatcher
    bot_port: int
    site: socket.socket
    website: Website

    @property
    def issuer(self) -> str:
        return f"http://{LOCALHOST}:{self.watcher.port}"

    @contextlib.asynccontextmanager
    async def serving(
        self, application: BotApp, settings: Settings, on_link: Callable[[str], object]
    ) -> AsyncIterator[str]:
        """With the bot running: its HTTP server (what `python -m bot` starts in polling mode
        with OIDC_ISSUER set) and the website; each login page's link goes to `on_link`.
        Yields the website's URL."""
        async with (
            web_serving(application, settings),
            serving_website(application, self.website, issuer=self.issuer, site=self.site) as url,
        ):
            self.watcher.on_link = on_link
            yield url


@contextlib.asynccontextmanager
async def prepared(bot_username: str) -> AsyncIterator[WebDemo]:
    """The example website loaded (OSError or ImportError if it cannot be) and the
    addresses known, so that the bot's settings can name them."""
    website = load_website()
    bot_port = free_port()
    watcher = LinkWatcher(upstream=f"http://{LOCALHOST}:{bot_port}", bot_username=bot_username)
    with website_socket() as site:
        async with watcher:
            yield WebDemo(watcher, bot_port, site, website)


@contextlib.asynccontextmanager
async def serving_website(
    application: BotApp, website: Website, *, issuer: str, site: socket.socket
) -> AsyncIterator[str]:
    """Register the example website as a client of the running bot (as `python -m bot
    clients add` does) and serve it on `site`, a listening socket; yields its URL."""
    url = f"http://{LOCALHOST}:{site.getsockname()[1]}"
    services = application.bot_data.services
    assert services is not None
    client = await Clients(sessions=make_sessionmaker(services.engine)).add(
        name=WEBSITE_NAME, redirect_uris=[url + "/callback"], public=False
    )
    app = website(
        issuer=issuer, client_id=client.client_id, client_secret=client.client_secret, url=url
    )
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, site).start()
        yield url + "/"
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def website_socket() -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.1 for the website, bound first so that its URL (the
    redirect URI to register) is known before it starts."""
    with socket.socket() as site:
        site.bind((LOCALHOST, 0))
        site.listen()
        yield site
