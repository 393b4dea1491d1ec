"""What tests share besides fixtures: the test identities, the test clock, the `Chat` helper
that talks to the bot as a user does, small readers of what the database holds, and a
reader of what /metrics shows."""

from __future__ import annotations

import contextlib
import html
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.db.engine import is_sqlite, make_engine
from bot.db.models import LoginFlow
from bot.demo.sandbox import FakeTelegram, FakeVerify, SentMessage
from bot.login.oidc_clients import Clients, NewClient
from bot.telegram.handlers.base import BotApp
from bot.telegram.lifecycle import running
from bot.telegram.polling import polling

TOKEN = "123456:TEST-token-abcdefghijklmnop"
BOT_USERNAME = "LoginTestBot"
VONAGE_KEY = "vkey"
VONAGE_SECRET = "vonage-secret-value"
GATEWAY_TOKEN = "AAGateway-token-0123456789secret"
#: the bot's NUMBER_HASH_KEY in tests; the command line is given the same one
HASH_KEY = "test-number-hash-key-0123456789abcdef"
ADMIN_ID = 900001
NUMBER = "+44 7400 123123"


@dataclass
class Clock:
    """The bot's clock in tests: starts at the real time and moves only when told."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# The bots `start_polling_bot` started and `stop_bot` has not stopped yet, with what stops each.
_RUNNING: dict[BotApp, contextlib.AsyncExitStack] = {}


async def start_polling_bot(settings: Settings, clock: Clock) -> BotApp:
    """Start the real bot polling the (fake) Telegram, without the sweeper: tests expire codes
    by moving the clock. `stop_bot` stops it."""
    async with contextlib.AsyncExitStack() as stack:
        application = await stack.enter_async_context(
            running(settings, clock=clock, sweep_seconds=0)
        )
        await stack.enter_async_context(polling(application, settings, poll_timeout=1))
        _RUNNING[application] = stack.pop_all()
    return application


async def stop_bot(application: BotApp) -> None:
    """Stop a bot `start_polling_bot` started (once; again does nothing): stop polling, finish
    the updates in flight and close everything."""
    stack = _RUNNING.pop(application, None)
    if stack is not None:
        await stack.aclose()


class Chat:
    """One simulated user's private chat: send things, read the bot's answers."""

    def __init__(
        self,
        tg: FakeTelegram,
        user_id: int,
        first_name: str = "Ada",
        username: str | None = "ada",
        *,
        language_code: str | None = "en",
    ) -> None:
        self.tg = tg
        self.id = user_id
        tg.user(user_id, first_name, username, language_code=language_code)

    async def send(self, text: str, replies: int = 1) -> list[SentMessage]:
        """Send a text and wait for that many answers."""
        self.tg.send_text(self.id, text)
        return await self.tg.wait_for_messages(self.id, replies, timeout=10)

    async def say(self, text: str) -> str:
        """Send a text and return the text of the one answer."""
        return (await self.send(text))[0].text

    async def number(self, text: str) -> str:
        """Send a number that should start a verification: returns the "code sent" text,
        after checking that the message carries the new-code buttons."""
        (sent,) = await self.send(text)
        assert sent.inline_buttons, sent.describe()
        return sent.text

    async def contact(self, phone_number: str, *, own: bool = True, replies: int = 1) -> str:
        """Share a contact (the user's own by default); return the first answer's text."""
        self.tg.send_contact(self.id, phone_number, contact_user_id=self.id if own else self.id + 1)
        answers = await self.tg.wait_for_messages(self.id, replies, timeout=10)
        return answers[0].text

    async def quiet(self) -> list[SentMessage]:
        """Wait until the bot is idle; return anything it said meanwhile (usually nothing)."""
        await self.tg.wait_idle(timeout=10)
        return self.tg.drain(self.id)


async def login(chat: Chat, verify: FakeVerify, number: str = NUMBER) -> str:
    """Do a whole login; returns the bot's last answer."""
    await chat.send("/login")
    await chat.number(number)
    code = verify.last_code()
    return await chat.say(code)


async def numbers_at_once(chats: list[Chat], numbers: list[str]) -> list[str]:
    """Every chat (waiting for its number) sends one at the same moment, so the bot gets
    them in one batch of updates; returns each chat's first answer."""
    for chat, number in zip(chats, numbers, strict=True):
        chat.tg.send_text(chat.id, number)
    return [(await chat.tg.wait_for_messages(chat.id, 1, timeout=10))[0].text for chat in chats]


async def saved_flow(db: async_sessionmaker[AsyncSession], chat_id: int) -> LoginFlow | None:
    """The chat's login flow as the database holds it, if any."""
    async with db() as session:
        return await session.get(LoginFlow, chat_id)


async def saved_step(db: async_sessionmaker[AsyncSession], chat_id: int) -> str | None:
    """The step the chat's stored flow is at, or None without a flow."""
    flow = await saved_flow(db, chat_id)
    return flow.step if flow else None


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` with only the given environment (plus PATH), from an empty
    directory so no developer's .env is read. The output is decoded exactly as written
    (no newline translation: a CR inside a CSV cell stays a CR)."""
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bot", *args],
        cwd=tempfile.gettempdir(),
        capture_output=True,
        env={"PATH": os.environ.get("PATH", ""), **env},
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


# ---- logging in to websites (OpenID Connect) --------------------------------------------------

SHOP_CALLBACK = "https://shop.example/callback"
APP_CALLBACK = "http://127.0.0.1:9/app/callback"


@dataclass
class Provider:
    """The bot as an OpenID Connect provider, serving HTTP on a free port, with a
    confidential client (Acme Shop) and a public one (Acme App) registered."""

    issuer: str
    application: BotApp
    shop: NewClient
    app: NewClient
    clients: Clients


async def refuse_new_logins(database_url: str) -> None:
    """A database that refuses to store a login, as a constraint the code does not expect
    would: PostgreSQL's error names the failing row (number included) in its DETAIL; SQLite's
    trigger message echoes the number the way a driver's error text can."""
    engine = make_engine(database_url, pool_size=1)
    async with engine.begin() as conn:
        if is_sqlite(database_url):
            await conn.execute(
                text(
                    "CREATE TRIGGER refuse_logins BEFORE INSERT ON verified_users BEGIN "
                    "SELECT RAISE(ABORT, 'Key (phone_number)=(+447400123123) is refused'); END"
                )
            )
        else:
            await conn.execute(
                text(
                    "ALTER TABLE verified_users ADD CONSTRAINT ck_refuse_logins "
                    "CHECK (phone_number NOT LIKE '+44%')"
                )
            )
    await engine.dispose()


@dataclass
class LoginPage:
    """What a person sees on the provider's login page (read from its HTML)."""

    url: str
    html: str
    link: str  # the "Log in with Telegram" button's href
    number: int  # the two-digit number to tap in Telegram
    wait_url: str  # where the page looks for the answer (its meta refresh)
    status_url: str  # what its script polls

    @property
    def token(self) -> str:
        """The deep link's start parameter."""
        return self.link.rsplit("start=", 1)[1]


class Browser:
    """A person's browser at the provider: keeps its cookies, never follows a redirect (the
    websites' callbacks are not served), and reads the login page like the person does."""

    def __init__(self) -> None:
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.http.close()

    async def get(self, url: str) -> tuple[int, str, str | None]:
        """(status, body, Location) of a GET."""
        async with self.http.get(url, allow_redirects=False) as response:
            return response.status, await response.text(), response.headers.get("Location")

    async def open(self, url: str) -> LoginPage:
        """Open an authorization URL that should show the login page."""
        status, body, location = await self.get(url)
        assert status == 200, (status, location, body)
        return read_page(url, body)

    async def answer(self, page: LoginPage) -> str:
        """Follow the page once Telegram answered: the Location it sends the browser to."""
        async with self.http.get(page.status_url) as response:
            assert (await response.json())["status"] == "go"
        status, body, location = await self.get(page.wait_url)
        assert status == 302, (status, body)
        assert location is not None
        return location


def read_page(url: str, body: str) -> LoginPage:
    """The parts of the login page a person uses."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    link = re.search(r'id="telegram-link" href="([^"]+)"', body)
    number = re.search(r'id="match-number"[^>]*>(\d\d)<', body)
    refresh = re.search(r'http-equiv="refresh" content="\d+;url=([^"]+)"', body)
    assert link is not None, body
    assert number is not None, body
    assert refresh is not None, body
    wait_url = origin + html.unescape(refresh.group(1))
    return LoginPage(
        url=url,
        html=body,
        link=html.unescape(link.group(1)),
        number=int(number.group(1)),
        wait_url=wait_url,
        status_url=wait_url + "/status",
    )


async def open_link(chat: Chat, page: LoginPage) -> SentMessage:
    """Tap the page's Telegram link: the chat sends `/start <token>`; the bot's answer."""
    return (await chat.send(f"/start {page.token}"))[0]


async def tap(chat: Chat, message: SentMessage, label: str) -> SentMessage:
    """Press a button of a confirmation message; the message as the bot then left it."""
    chat.tg.click(message, label)
    await chat.tg.wait_for(lambda: message.edited, 10)
    return message


def query_of(location: str) -> dict[str, str]:
    """The query parameters of a redirect."""
    return dict(parse_qsl(urlsplit(location).query))


class Issuer(Protocol):
    """A provider's public URL and the confidential client the tests use."""

    @property
    def issuer(self) -> str: ...

    @property
    def shop(self) -> NewClient: ...


def authorize_url(provider: Issuer, client_id: str, **params: str) -> str:
    """An authorization request as a website's link would make it."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": SHOP_CALLBACK,
        "scope": "openid phone",
        "state": "st-123",
        **params,
    }
    return f"{provider.issuer}/authorize?{urlencode({k: v for k, v in query.items() if v})}"


async def exchange(
    provider: Issuer,
    code: str,
    *,
    secret: str | None = None,
    client_id: str | None = None,
    redirect_uri: str = SHOP_CALLBACK,
    **extra: str,
) -> tuple[int, dict[str, Any]]:
    """POST the token endpoint with client_secret_basic (the shop's secret by default)."""
    user = client_id or provider.shop.client_id
    password = secret if secret is not None else provider.shop.client_secret
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{provider.issuer}/token",
            data={**form, **extra},
            headers={"Authorization": aiohttp.encode_basic_auth(user, password or "")},
        ) as response,
    ):
        return response.status, await response.json()


@dataclass(frozen=True)
class Scrape:
    """What one GET /metrics showed: every sample, by name and labels."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, exposition: str) -> Scrape:
        """Read Prometheus' text format with prometheus-client's own parser."""
        return cls(
            {
                (sample.name, frozenset(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(exposition)
                for sample in family.samples
            }
        )

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels (0 if there is none)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` that have at least these labels."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def __sub__(self, earlier: Scrape) -> Scrape:
        """How much each sample moved since `earlier`."""
        return Scrape(
            {key: value - earlier.samples.get(key, 0.0) for key, value in self.samples.items()}
        )


async def scrape(url: str) -> Scrape:
    """GET /metrics (`url`) as Prometheus does; it must answer 200 in the text format."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, response.status
        assert response.content_type == "text/plain", response.content_type
        return Scrape.parse(await response.text())
