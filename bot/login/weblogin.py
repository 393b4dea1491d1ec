"""Logging in to websites through the bot: the rules of the OpenID Connect provider
(authorization code flow, PKCE), apart from HTTP and Telegram.

    browser: GET /authorize ──► PENDING: the page shows a t.me link, its QR code and a number
    chat: /start <link token> ──► CONFIRM (logged in, recently enough for prompt/max_age)
                              └─► LOGIN: the usual login first (number, code), then CONFIRM
    chat taps the page's number ──► APPROVED; a wrong number or "Not me" ──► REFUSED
    browser (polling) ──► APPROVED: back to the website with a code (once, 60 s) ──► FINISHED
                          REFUSED: back with error=access_denied; after 5 minutes: expired
    website: POST /token with the code ──► ID token + access token (for /userinfo)

Every step is one transaction on the request's row, so the page, the Telegram update and the
token exchange may each be handled by a different process. Only hashes of the secrets (the
browser's cookie, the deep-link token, the code, the access token) are stored; the deep-link
token is derived from the browser's secret, so the page can show it again without the
database ever holding it.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import utcnow
from bot.db import oidc_repo, repo
from bot.db.models import OidcClient, OidcRequest, VerifiedUser
from bot.login.audit import Audit, Event
from bot.login.oidc_clients import redirect_uris_of, secret_hash, secret_matches
from bot.login.oidc_keys import ALGORITHM, ProviderKeys
from bot.login.steps import Person
from bot.metrics import Metrics

logger = logging.getLogger(__name__)

REQUEST_TTL = timedelta(minutes=5)  # the page, the link and the confirmation
CODE_TTL = timedelta(seconds=60)
ACCESS_TOKEN_TTL = timedelta(minutes=5)
ID_TOKEN_TTL = timedelta(minutes=5)
# An approved request still finishes if the browser comes back this late.
FINISH_GRACE = timedelta(seconds=60)
KEEP_REQUESTS = timedelta(days=1)

SCOPES = ("openid", "phone", "profile")
# RFC 8176 method values, by how the login proved its number: a code by SMS (`sms`), read out
# in a call (`tel`), sent inside Telegram (`otp`: a one-time code, neither SMS nor a call);
# the own contact shared from the Telegram account (`swk`: possession of the account's
# software-held key, no code at all); `otp` for logins from before the method was recorded.
AMR = {"sms": "sms", "voice": "tel", "telegram_gateway": "otp", "telegram_contact": "swk"}
AMR_UNKNOWN_CHANNEL = "otp"
MAX_PARAM = 512
_PKCE_CHARS = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HOUR = timedelta(hours=1)
# IPv6 addresses are counted per /64: one subscriber (one home, one server) usually holds a
# whole /64 and could otherwise open requests from billions of "addresses".
IPV6_LIMIT_PREFIX = 64
# Over the website's hourly cap, an address still opens this many requests an hour, so that
# addresses flooding up to their own limit cannot lock out everyone else.
REQUESTS_PER_IP_OVER_CLIENT_CAP = 3
# A refusal that changes nothing (a bad request, a wrong secret, a replayed link) is recorded
# once per address (or chat), request, reason and this window: a flood of them must not grow
# the audit trail without limit.
REFUSALS_ONCE_PER = timedelta(hours=1)


class Status(enum.StrEnum):
    """Where an authorization request is; stored in `oidc_requests.status`."""

    PENDING = "pending"  # the page is shown; no chat opened the link yet
    LOGIN = "login"  # a chat opened it and proves its number first
    CONFIRM = "confirm"  # the chat was asked to tap the page's number
    APPROVED = "approved"
    REFUSED = "refused"
    FINISHED = "finished"  # the browser went back to the website with a code


@dataclass(frozen=True, slots=True)
class WebLoginPolicy:
    """The provider's settings."""

    issuer: str
    requests_per_ip_per_hour: int
    requests_per_client_per_hour: int


# ---- pure rules -----------------------------------------------------------------------------


def with_query(uri: str, params: dict[str, str | None]) -> str:
    """`uri` with these parameters added to its query (None values left out)."""
    query = urlencode({key: value for key, value in params.items() if value is not None})
    if not query:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


def link_token(browser_secret: str) -> str:
    """The deep-link token of a request, derived from its browser's secret (43 characters of
    A-Za-z0-9_-, as Telegram's `start` parameter allows)."""
    digest = hmac.new(browser_secret.encode(), b"telegram deep link", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def storable(text: str) -> bool:
    """Whether a value from outside may reach a query: PostgreSQL's text cannot hold NUL, and
    a NUL in a parameter would fail the statement instead of getting a clear answer."""
    return "\x00" not in text


def limit_address(client_ip: str) -> str:
    """What the per-address limit counts a client address as: an IPv4 address itself (also
    when written IPv4-mapped), an IPv6 address its /64; anything else (a Unix socket's peer)
    as it is."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if isinstance(address, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((address, IPV6_LIMIT_PREFIX), strict=False)
        return str(network)
    return str(address)


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) == challenge, for a well-formed verifier."""
    if not _PKCE_CHARS.match(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return hmac.compare_digest(expected, challenge)


def fresh_enough(
    verified_at: datetime, *, requested_at: datetime, prompt: str | None, max_age: int | None
) -> bool:
    """Whether a login proven at `verified_at` may answer a request: `prompt=login` wants a
    number proven for this request, `max_age` one proven at most that many seconds before it
    (so `max_age=0` also means: again, now)."""
    if verified_at >= requested_at:
        return True
    if prompt is not None and "login" in prompt.split():
        return False
    return max_age is None or verified_at >= requested_at - timedelta(seconds=max_age)


def choices(match_number: int) -> tuple[int, int, int]:
    """The three numbers offered in Telegram: the page's and two others, in random order."""
    rng = secrets.SystemRandom()
    others = rng.sample([n for n in range(10, 100) if n != match_number], 2)
    offered = [match_number, *others]
    rng.shuffle(offered)
    return offered[0], offered[1], offered[2]


def redirect_host(uri: str) -> str:
    """The host a redirect URI sends the browser to (what the person is told)."""
    return urlsplit(uri).hostname or uri


# ---- results --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorPage:
    """An authorization request that must not be sent back (unknown client or redirect URI):
    the browser gets an error page."""

    reason: str


@dataclass(frozen=True, slots=True)
class ErrorRedirect:
    """An authorization request refused back to the website (`error`, `state`, and `iss`
    as every answer to it)."""

    redirect_uri: str
    error: str
    description: str
    state: str | None
    issuer: str

    @property
    def location(self) -> str:
        """Where the browser is sent."""
        return with_query(
            self.redirect_uri,
            {
                "error": self.error,
                "error_description": self.description,
                "state": self.state,
                "iss": self.issuer,
            },
        )


@dataclass(frozen=True, slots=True)
class Page:
    """What the login page shows while a request waits for Telegram."""

    request_id: str
    client_name: str
    redirect_host: str
    link_token: str
    match_number: int
    expires_at: datetime
    restart_query: str  # the authorization request again, to start over once it expired


@dataclass(frozen=True, slots=True)
class Opened:
    """A new request: the page to show, and the secret the browser keeps (a cookie)."""

    page: Page
    browser_secret: str


class View(enum.Enum):
    """What the browser should see now."""

    WAITING = enum.auto()
    GO = enum.auto()  # back to the website (with a code or an error)
    EXPIRED = enum.auto()
    FINISHED = enum.auto()  # it already went back; nothing more to show
    UNKNOWN = enum.auto()  # no such request for this browser


@dataclass(frozen=True, slots=True)
class BrowserState:
    """The answer to the page's polling."""

    view: View
    page: Page | None = None
    location: str | None = None


class LinkResult(enum.Enum):
    """What became of a deep link opened in Telegram."""

    CONFIRM = enum.auto()  # ask the chat to tap the page's number
    NEED_LOGIN = enum.auto()  # the chat proves its number first
    UNKNOWN = enum.auto()
    EXPIRED = enum.auto()
    USED = enum.auto()  # opened before (in this chat or another)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The question asked in Telegram."""

    request_id: str
    client_name: str
    redirect_host: str
    phone_number: str
    choices: tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    """The answer to a deep link (or to a login finished for one)."""

    result: LinkResult
    client_name: str | None = None
    confirmation: Confirmation | None = None


class AnswerResult(enum.Enum):
    """What became of a tap on a confirmation button."""

    APPROVED = enum.auto()
    WRONG_NUMBER = enum.auto()
    NOT_ME = enum.auto()
    NOT_YOURS = enum.auto()  # pressed in a chat the request does not belong to
    ANSWERED = enum.auto()  # answered before
    EXPIRED = enum.auto()
    NOT_LOGGED_IN = enum.auto()  # the chat logged out meanwhile


@dataclass(frozen=True, slots=True)
class AnswerOutcome:
    """The answer to a tap, with the website's name."""

    result: AnswerResult
    client_name: str = ""


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A token endpoint request: the form fields and the Basic credentials, if any."""

    grant_type: str | None
    code: str | None
    redirect_uri: str | None
    code_verifier: str | None
    client_id: str | None
    client_secret: str | None
    basic: tuple[str, str] | None = None
    client_ip: str = "unknown"  # the caller's address (its refusals are recorded once a window)


@dataclass(frozen=True, slots=True)
class TokenError:
    """A refused token request (RFC 6749 section 5.2)."""

    error: str
    description: str
    status: int = 400
    basic_challenge: bool = False


@dataclass(frozen=True, slots=True)
class Tokens:
    """A successful token response."""

    access_token: str
    id_token: str
    expires_in: int
    scope: str


# ---- the service ----------------------------------------------------------------------------


class WebLogin:
    """The provider: authorization requests, their confirmation in Telegram, codes, tokens."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        readers: async_sessionmaker[AsyncSession] | None = None,
        keys: ProviderKeys,
        audit: Audit,
        policy: WebLoginPolicy,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._readers = readers or sessions
        self._keys = keys
        self._audit = audit
        self._policy = policy
        self._now = clock
        self._metrics = metrics or Metrics()

    @property
    def issuer(self) -> str:
        """OIDC_ISSUER: every URL the provider publishes starts with it."""
        return self._policy.issuer

    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider Metadata (`/.well-known/openid-configuration`)."""
        issuer = self._policy.issuer
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "scopes_supported": list(SCOPES),
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "claims_supported": [
                "iss",
                "aud",
                "sub",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "amr",
                "phone_number",
                "phone_number_verified",
                "name",
                "preferred_username",
            ],
            "prompt_values_supported": ["none", "login", "consent"],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
        }

    async def prepare(self) -> None:
        """On start: make the signing key and the pairwise secret if this is the first."""
        await self._keys.ensure()

    async def jwks(self) -> dict[str, Any]:
        """The published signing keys."""
        return await self._keys.jwks()

    # ---- the browser ------------------------------------------------------------------

    async def open_request(
        self, params: Sequence[tuple[str, str]], *, client_ip: str
    ) -> Opened | ErrorPage | ErrorRedirect:
        """Check an authorization request (OIDC Core 3.1.2.1) and, if it is good and within
        the limits, store it and return its page."""
        values: dict[str, str] = {}
        repeated: set[str] = set()
        for key, value in params:
            if key in values:
                repeated.add(key)
            values[key] = value
        client_id = values.get("client_id")
        redirect_uri = values.get("redirect_uri")
        ip_hash = self._ip_hash(client_ip)
        async with self._readers() as session:
            client = (
                await oidc_repo.get_client(session, client_id=client_id)
                if client_id and len(client_id) <= 64 and storable(client_id)
                else None
            )
        if client is None or "client_id" in repeated:
            return await self._error_page("unknown_client", None, ip_hash)
        if (
            redirect_uri is None
            or "redirect_uri" in repeated
            or redirect_uri not in redirect_uris_of(client)
        ):
            return await self._error_page("unregistered_redirect_uri", client.client_id, ip_hash)
        state = values.get("state")

        def refuse(error: str, description: str) -> ErrorRedirect:
            return ErrorRedirect(redirect_uri, error, description, state, self.issuer)

        problem = self._request_problem(values, repeated, public=client.secret_hash is None)
        if problem is not None:
            await self._record_refusal(client.client_id, problem[0], ip_hash)
            return refuse(*problem)
        scope = " ".join(s for s in SCOPES if s in values["scope"].split())
        browser_secret = secrets.token_urlsafe(32)
        token = link_token(browser_secret)
        now = self._now()
        row = OidcRequest(
            id=secrets.token_urlsafe(16),
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state=state,
            nonce=values.get("nonce"),
            code_challenge=values.get("code_challenge"),
            prompt=values.get("prompt"),
            max_age=int(values["max_age"]) if "max_age" in values else None,
            link_hash=secret_hash(token),
            browser_hash=secret_hash(browser_secret),
            match_number=secrets.SystemRandom().randint(10, 99),
            ip_hash=ip_hash,
            created_at=now,
            expires_at=now + REQUEST_TTL,
            status=Status.PENDING,
        )
        async with self._sessions.begin() as session:
            # Counted in the database, so the limits hold across processes (the address
            # first, then the website: every transaction takes them in this order).
            await oidc_repo.lock(session, name=f"ip:{ip_hash}")
            await oidc_repo.lock(session, name=f"client:{client.client_id}")
            limited = await self._limited(session, client.client_id, ip_hash, now)
            if limited is None:
                await oidc_repo.add_request(session, request=row)
                await self._audit.record(
                    session,
                    Event.WEB_REQUEST_OPENED,
                    chat_id=0,
                    request_id=row.id,
                    detail=_detail(client.client_id, None),
                )
            else:
                await self._refusal(
                    session, None, limited, client_id=client.client_id, ip_hash=ip_hash
                )
        if limited is not None:
            logger.info(
                "Authorization request for client %s refused: %s", client.client_id, limited
            )
            return refuse("temporarily_unavailable", "too many login requests; try again later")
        self._metrics.web_login(client.client_id, "opened")
        logger.info("Authorization request %s opened for client %s", row.id, client.client_id)
        return Opened(self._page(row, client, browser_secret), browser_secret)

    async def _limited(
        self, session: AsyncSession, client_id: str, ip_hash: str, now: datetime
    ) -> str | None:
        """Which limit refuses a new request from this address to this website, if any."""
        since = now - _HOUR
        from_address = await oidc_repo.count_requests(session, since=since, ip_hash=ip_hash)
        if from_address >= self._policy.requests_per_ip_per_hour:
            return "rate_limited_ip"
        if from_address < REQUESTS_PER_IP_OVER_CLIENT_CAP:
            return None
        to_client = await oidc_repo.count_requests(session, since=since, client_id=client_id)
        if to_client >= self._policy.requests_per_client_per_hour:
            return "rate_limited_client"
        return None

    def _ip_hash(self, client_ip: str) -> str:
        """How a client address is stored (keyed hash of what the limit counts)."""
        return self._audit.hash(f"ip:{limit_address(client_ip)}")

    def _request_problem(
        self, values: dict[str, str], repeated: set[str], *, public: bool
    ) -> tuple[str, str] | None:
        """The error (code, description) an authorization request is refused with, if any."""
        if repeated:
            return "invalid_request", f"{sorted(repeated)[0]} given more than once"
        if not all(storable(key) and storable(value) for key, value in values.items()):
            return "invalid_request", "parameters must not contain NUL characters"
        if "request" in values:
            return "request_not_supported", "request objects are not supported"
        if "request_uri" in values:
            return "request_uri_not_supported", "request_uri is not supported"
        response_type = values.get("response_type")
        if not response_type:
            return "invalid_request", "response_type is missing"
        if response_type != "code":
            return "unsupported_response_type", "only response_type=code is supported"
        if values.get("response_mode", "query") != "query":
            return "invalid_request", "only response_mode=query is supported"
        if "openid" not in values.get("scope", "").split():
            return "invalid_scope", "the scope must include openid"
        for name in ("state", "nonce", "scope", "prompt"):
            if len(values.get(name, "")) > MAX_PARAM:
                return "invalid_request", f"{name} is too long"
        challenge = values.get("code_challenge")
        method = values.get("code_challenge_method")
        if challenge is None:
            if public:
                return "invalid_request", "a public client must use PKCE (code_challenge)"
            if method is not None:
                return "invalid_request", "code_challenge_method without code_challenge"
        elif method != "S256":
            return "invalid_request", "code_challenge_method must be S256"
        elif not _PKCE_CHARS.match(challenge):
            return "invalid_request", "code_challenge is malformed"
        max_age = values.get("max_age")
        if max_age is not None and not (max_age.isascii() and max_age.isdigit()):
            return "invalid_request", "max_age must be a number of seconds"
        if max_age is not None and len(max_age) > 9:
            return "invalid_request", "max_age is too large"
        prompt = values.get("prompt", "").split()
        if "none" in prompt:
            if len(prompt) > 1:
                return "invalid_request", "prompt=none cannot be combined"
            # Nothing can be decided without the person tapping in Telegram.
            return "login_required", "the person must confirm in Telegram"
        return None

    def _page(self, row: OidcRequest, client: OidcClient, browser_secret: str) -> Page:
        restart: dict[str, str | None] = {
            "response_type": "code",
            "client_id": row.client_id,
            "redirect_uri": row.redirect_uri,
            "scope": row.scope,
            "state": row.state,
            "nonce": row.nonce,
            "code_challenge": row.code_challenge,
            "code_challenge_method": "S256" if row.code_challenge else None,
            "prompt": row.prompt,
            "max_age": str(row.max_age) if row.max_age is not None else None,
        }
        return Page(
            request_id=row.id,
            client_name=client.name,
            redirect_host=redirect_host(row.redirect_uri),
            link_token=link_token(browser_secret),
            match_number=row.match_number,
            expires_at=row.expires_at,
            restart_query=urlencode({k: v for k, v in restart.items() if v is not None}),
        )

    async def browser_state(
        self, request_id: str, browser_secret: str, *, leave: bool
    ) -> BrowserState:
        """What the page shows now, for the browser that opened the request. With `leave`
        (the browser follows the answer) an approved request issues its code here, so the
        code's 60 seconds start as the browser goes back to the website. Only that writes:
        everything else (the page's polling every few seconds, by anyone) is read on a
        reader, taking no lock a flood of it could hold against the bot's own work."""
        now = self._now()
        if not storable(request_id):
            return BrowserState(View.UNKNOWN)
        async with self._readers() as session:
            row = await oidc_repo.get_request(session, request_id=request_id[:32])
            if not (leave and row is not None and row.status == Status.APPROVED):
                return await self._state_of(session, row, browser_secret, now, issue=False)
        async with self._sessions.begin() as session:
            row = await oidc_repo.get_request(session, request_id=request_id[:32], lock=True)
            return await self._state_of(session, row, browser_secret, now, issue=True)

    async def _state_of(
        self,
        session: AsyncSession,
        row: OidcRequest | None,
        browser_secret: str,
        now: datetime,
        *,
        issue: bool,
    ) -> BrowserState:
        """`browser_state` of a request read in `session`; with `issue` (in a writing
        transaction, the row locked) an approved request gets its code."""
        if row is None or not hmac.compare_digest(row.browser_hash, secret_hash(browser_secret)):
            return BrowserState(View.UNKNOWN)
        if row.status == Status.FINISHED:
            return BrowserState(View.FINISHED)
        if row.status == Status.REFUSED:
            location = ErrorRedirect(
                row.redirect_uri,
                "access_denied",
                "the person refused the login",
                row.state,
                self.issuer,
            ).location
            return BrowserState(View.GO, location=location)
        if row.status == Status.APPROVED and now < row.expires_at + FINISH_GRACE:
            if not issue:
                return BrowserState(View.GO)
            code = secrets.token_urlsafe(32)
            row.code_hash = secret_hash(code)
            row.code_expires_at = now + CODE_TTL
            row.status = Status.FINISHED
            # `iss` (RFC 9207): a website using several providers can tell which one answered,
            # so a code from one is never sent to another's token endpoint (mix-up attacks).
            location = with_query(
                row.redirect_uri, {"code": code, "state": row.state, "iss": self.issuer}
            )
            return BrowserState(View.GO, location=location)
        if now >= row.expires_at:
            page = await self._page_of(session, row, browser_secret)
            return BrowserState(View.EXPIRED, page=page)
        return BrowserState(View.WAITING, page=await self._page_of(session, row, browser_secret))

    async def _page_of(self, session: AsyncSession, row: OidcRequest, secret: str) -> Page | None:
        client = await oidc_repo.get_client(session, client_id=row.client_id)
        return self._page(row, client, secret) if client is not None else None

    # ---- Telegram -----------------------------------------------------------------------

    async def open_link(self, token: str, person: Person) -> LinkOutcome:
        """A chat opened a deep link: bind the request to it (once), then ask it to confirm
        or, when it is not logged in (recently enough), to log in first."""
        if not _TOKEN_CHARS.match(token):
            return LinkOutcome(LinkResult.UNKNOWN)
        now = self._now()
        async with self._sessions.begin() as session:
            row = await oidc_repo.request_by_link(session, link_hash=secret_hash(token), lock=True)
            if row is None:
                await self._refusal(session, None, "link_unknown", chat_id=person.chat_id)
                return LinkOutcome(LinkResult.UNKNOWN)
            client = await oidc_repo.get_client(session, client_id=row.client_id)
            name = client.name if client is not None else ""
            if row.chat_id is not None:
                await self._refusal(session, row, "link_used", chat_id=person.chat_id)
                return LinkOutcome(LinkResult.USED, name)
            if client is None or row.status != Status.PENDING or now >= row.expires_at:
                await self._refusal(session, row, "link_expired", chat_id=person.chat_id)
                return LinkOutcome(LinkResult.EXPIRED, name)
            row.chat_id = person.chat_id
            row.user_id = person.user_id
            login = await repo.get_login(session, chat_id=person.chat_id)
            if login is None or not fresh_enough(
                login.verified_at,
                requested_at=row.created_at,
                prompt=row.prompt,
                max_age=row.max_age,
            ):
                row.status = Status.LOGIN
                return LinkOutcome(LinkResult.NEED_LOGIN, name)
            row.status = Status.CONFIRM
            return LinkOutcome(LinkResult.CONFIRM, name, self._confirmation(row, name, login))

    async def after_login(self, chat_id: int) -> LinkOutcome | None:
        """The chat just proved its number: the request it logged in for, to confirm now
        (None if it was not logging in for a website)."""
        now = self._now()
        async with self._sessions.begin() as session:
            row = await oidc_repo.waiting_for_login(session, chat_id=chat_id, lock=True)
            if row is None:
                return None
            client = await oidc_repo.get_client(session, client_id=row.client_id)
            name = client.name if client is not None else ""
            login = await repo.get_login(session, chat_id=chat_id)
            if client is None or now >= row.expires_at:
                row.status = Status.REFUSED
                row.refusal = "expired"
                await self._refusal(session, row, "expired", chat_id=chat_id)
                return LinkOutcome(LinkResult.EXPIRED, name)
            if login is None or not fresh_enough(
                login.verified_at,
                requested_at=row.created_at,
                prompt=row.prompt,
                max_age=row.max_age,
            ):
                return None
            row.status = Status.CONFIRM
            return LinkOutcome(LinkResult.CONFIRM, name, self._confirmation(row, name, login))

    def _confirmation(self, row: OidcRequest, name: str, login: VerifiedUser) -> Confirmation:
        return Confirmation(
            request_id=row.id,
            client_name=name,
            redirect_host=redirect_host(row.redirect_uri),
            phone_number=login.phone_number,
            choices=choices(row.match_number),
        )

    async def answer(self, request_id: str, person: Person, choice: int | None) -> AnswerOutcome:
        """A tap on a confirmation button: the page's number approves; another number, or
        `None` ("Not me"), refuses. Only in the chat that opened the link, and only once."""
        if not storable(request_id):
            return AnswerOutcome(AnswerResult.ANSWERED)
        now = self._now()
        async with self._sessions.begin() as session:
            row = await oidc_repo.get_request(session, request_id=request_id[:32], lock=True)
            if row is None:
                return AnswerOutcome(AnswerResult.ANSWERED)
            client = await oidc_repo.get_client(session, client_id=row.client_id)
            name = client.name if client is not None else ""
            if row.chat_id != person.chat_id:
                await self._refusal(session, row, "other_chat", chat_id=person.chat_id)
                return AnswerOutcome(AnswerResult.NOT_YOURS, name)
            if row.status != Status.CONFIRM:
                return AnswerOutcome(AnswerResult.ANSWERED, name)
            if now >= row.expires_at or client is None:
                row.status = Status.REFUSED
                row.refusal = "expired"
                await self._refusal(session, row, "expired", chat_id=person.chat_id)
                return AnswerOutcome(AnswerResult.EXPIRED, name)
            login = await repo.get_login(session, chat_id=person.chat_id)
            if choice != row.match_number or login is None:
                reason = (
                    "not_me"
                    if choice is None
                    else "wrong_number"
                    if choice != row.match_number
                    else "not_logged_in"
                )
                row.status = Status.REFUSED
                row.refusal = reason
                await self._refusal(session, row, reason, chat_id=person.chat_id)
                result = {
                    "not_me": AnswerResult.NOT_ME,
                    "wrong_number": AnswerResult.WRONG_NUMBER,
                }.get(reason, AnswerResult.NOT_LOGGED_IN)
                return AnswerOutcome(result, name)
            row.status = Status.APPROVED
            row.phone_number = login.phone_number
            row.full_name = login.full_name
            row.username = login.username
            row.channel = login.channel
            row.auth_time = login.verified_at
            await self._audit.record(
                session,
                Event.WEB_APPROVED,
                chat_id=person.chat_id,
                user_id=person.user_id,
                e164=login.phone_number,
                request_id=row.id,
                detail=row.client_id,
            )
        self._metrics.web_login(row.client_id, "approved")
        logger.info("Chat %s approved request %s", person.chat_id, request_id)
        return AnswerOutcome(AnswerResult.APPROVED, name)

    # ---- the website --------------------------------------------------------------------

    async def exchange(self, request: TokenRequest) -> Tokens | TokenError:
        """The token endpoint: authenticate the client, then trade a code for tokens. A code
        works once, within 60 seconds, for its client, redirect URI and PKCE verifier; using
        it again revokes the access token it gave."""
        ip_hash = self._ip_hash(request.client_ip)
        client = await self._authenticate(request, ip_hash)
        if isinstance(client, TokenError):
            return client
        if request.grant_type != "authorization_code":
            return TokenError("unsupported_grant_type", "only authorization_code is supported")
        if not request.code:
            return TokenError("invalid_request", "code is missing")
        now = self._now()
        async with self._sessions.begin() as session:
            row = await oidc_repo.request_by_code(
                session, code_hash=secret_hash(request.code), lock=True
            )
            refusal = self._code_problem(row, client, request, now)
            if refusal is not None:
                reason, description = refusal
                if row is not None and reason == "code_reused":
                    row.token_hash = None  # the access token the first use got
                    row.token_expires_at = None
                elif row is not None and row.client_id == client.client_id:
                    await oidc_repo.claim_code(session, request_id=row.id, now=now)
                await self._refusal(
                    session, row, reason, client_id=client.client_id, ip_hash=ip_hash
                )
                return TokenError("invalid_grant", description)
            assert row is not None
            if not await oidc_repo.claim_code(session, request_id=row.id, now=now):
                await self._refusal(
                    session, row, "code_reused", client_id=client.client_id, ip_hash=ip_hash
                )
                return TokenError("invalid_grant", "the code was already used")
            access_token = secrets.token_urlsafe(32)
            row.token_hash = secret_hash(access_token)
            row.token_expires_at = now + ACCESS_TOKEN_TTL
            await self._audit.record(
                session,
                Event.WEB_CODE_EXCHANGED,
                chat_id=row.chat_id or 0,
                user_id=row.user_id,
                request_id=row.id,
                detail=row.client_id,
            )
        # After the transaction: the claims read the pairwise key in a session of their own.
        claims = await self._claims(row)
        id_claims: dict[str, Any] = {
            "iss": self._policy.issuer,
            "aud": row.client_id,
            "iat": int(now.timestamp()),
            "exp": int((now + ID_TOKEN_TTL).timestamp()),
            "auth_time": int(row.auth_time.timestamp()) if row.auth_time else None,
            "nonce": row.nonce,
            "amr": [AMR.get(row.channel or "", AMR_UNKNOWN_CHANNEL)],
            **claims,
        }
        id_token = await self._keys.sign({k: v for k, v in id_claims.items() if v is not None})
        self._metrics.web_login(row.client_id, "exchanged")
        logger.info("Request %s: code exchanged by client %s", row.id, row.client_id)
        return Tokens(
            access_token=access_token,
            id_token=id_token,
            expires_in=int(ACCESS_TOKEN_TTL.total_seconds()),
            scope=row.scope,
        )

    async def _authenticate(self, request: TokenRequest, ip_hash: str) -> OidcClient | TokenError:
        """The client of a token request: client_secret_basic, client_secret_post, or a
        public client identified by client_id alone (its code then needs PKCE)."""
        if request.basic is not None and (
            request.client_secret or request.client_id not in (None, request.basic[0])
        ):
            return TokenError("invalid_request", "use one client authentication method")
        client_id, secret = request.basic or (request.client_id, request.client_secret)
        unauthorized = TokenError(
            "invalid_client", "client authentication failed", 401, request.basic is not None
        )
        if not client_id or len(client_id) > 64 or not storable(client_id):
            return unauthorized
        async with self._readers() as session:
            client = await oidc_repo.get_client(session, client_id=client_id)
        if client is None:
            await self._record_refusal(None, "unknown_client", ip_hash)
            return unauthorized
        if client.secret_hash is None:
            if secret:
                await self._record_refusal(client.client_id, "public_client_secret", ip_hash)
                return unauthorized
            return client
        if not secret or not secret_matches(client, secret):
            await self._record_refusal(client.client_id, "bad_client_secret", ip_hash)
            return unauthorized
        return client

    @staticmethod
    def _code_problem(
        row: OidcRequest | None, client: OidcClient, request: TokenRequest, now: datetime
    ) -> tuple[str, str] | None:
        """Why a code cannot be exchanged: (reason for the audit trail, description)."""
        if row is None or row.code_expires_at is None:
            return "code_unknown", "the code is not valid"
        if row.client_id != client.client_id:
            return "code_other_client", "the code was issued to another client"
        if row.code_used_at is not None:
            return "code_reused", "the code was already used"
        if now >= row.code_expires_at:
            return "code_expired", "the code has expired"
        if request.redirect_uri != row.redirect_uri:
            return "redirect_uri_mismatch", "redirect_uri does not match the authorization"
        if row.code_challenge is not None:
            if not request.code_verifier:
                return "pkce_missing", "code_verifier is missing"
            if not pkce_matches(request.code_verifier, row.code_challenge):
                return "pkce_mismatch", "code_verifier does not match the code_challenge"
        elif request.code_verifier:
            return "pkce_unexpected", "code_verifier given but no code_challenge was sent"
        elif client.secret_hash is None:
            # The authorization endpoint already refuses a public client without PKCE; the
            # token endpoint does not rely on it (a code without a challenge, from any cause,
            # would be usable by whoever intercepted it).
            return "pkce_missing", "a public client must use PKCE (code_verifier)"
        return None

    async def userinfo(self, access_token: str) -> dict[str, Any] | None:
        """The claims for a valid access token (None: unknown, expired or revoked)."""
        if not access_token or len(access_token) > 256:
            return None
        async with self._readers() as session:
            row = await oidc_repo.request_by_token(session, token_hash=secret_hash(access_token))
        if row is None or row.token_expires_at is None or self._now() >= row.token_expires_at:
            return None
        return await self._claims(row)

    async def _claims(self, row: OidcRequest) -> dict[str, Any]:
        """`sub` and the claims of the granted scopes."""
        scopes = row.scope.split()
        claims: dict[str, Any] = {"sub": await self._keys.subject(row.client_id, row.user_id or 0)}
        if "phone" in scopes and row.phone_number:
            claims["phone_number"] = row.phone_number
            claims["phone_number_verified"] = True
        if "profile" in scopes:
            if row.full_name:
                claims["name"] = row.full_name
            if row.username:
                claims["preferred_username"] = row.username
        return claims

    # ---- housekeeping -------------------------------------------------------------------

    async def purge(self) -> int:
        """Drop requests older than a day (the audit trail keeps what happened)."""
        async with self._sessions.begin() as session:
            return await oidc_repo.purge_requests(session, before=self._now() - KEEP_REQUESTS)

    async def forget(self, chat_id: int) -> None:
        """Erase the requests a chat opened or answered (/forget): the numbers and names
        they hold; the audit trail keeps only masked and hashed numbers."""
        async with self._sessions.begin() as session:
            await oidc_repo.delete_chat_requests(session, chat_id=chat_id)

    async def _error_page(self, reason: str, client_id: str | None, ip_hash: str) -> ErrorPage:
        await self._record_refusal(client_id, reason, ip_hash)
        logger.info("Authorization request refused with an error page: %s", reason)
        return ErrorPage(reason)

    async def _record_refusal(self, client_id: str | None, reason: str, ip_hash: str) -> None:
        """A refusal before anything is stored, in a transaction of its own; looked up on a
        reader first, so a flood of repeated ones writes (and locks) nothing."""
        self._metrics.web_login(client_id, "refused", reason)
        detail = _detail(client_id, reason)
        async with self._readers() as session:
            if await self._recorded(session, detail, chat_id=0, request_id=None, ip_hash=ip_hash):
                return
        async with self._sessions.begin() as session:
            await self._audit.record(
                session, Event.WEB_REFUSED, chat_id=0, detail=detail, ip_hash=ip_hash
            )

    async def _refusal(
        self,
        session: AsyncSession,
        row: OidcRequest | None,
        reason: str,
        *,
        chat_id: int = 0,
        client_id: str | None = None,
        ip_hash: str | None = None,
    ) -> None:
        """Record a refusal in the caller's transaction, unless this chat or address had the
        same one (same request, same reason) within REFUSALS_ONCE_PER."""
        client = row.client_id if row is not None else client_id
        # Every refusal counts; the audit trail keeps one of a kind (REFUSALS_ONCE_PER).
        self._metrics.web_login(client, "refused", reason)
        detail = _detail(client, reason)
        request_id = row.id if row is not None else None
        if await self._recorded(
            session, detail, chat_id=chat_id, request_id=request_id, ip_hash=ip_hash
        ):
            return
        await self._audit.record(
            session,
            Event.WEB_REFUSED,
            chat_id=chat_id,
            request_id=request_id,
            detail=detail,
            ip_hash=ip_hash,
        )

    async def _recorded(
        self,
        session: AsyncSession,
        detail: str,
        *,
        chat_id: int,
        request_id: str | None,
        ip_hash: str | None,
    ) -> bool:
        return await oidc_repo.refusal_recorded(
            session,
            event=Event.WEB_REFUSED,
            detail=detail,
            chat_id=chat_id,
            request_id=request_id,
            ip_hash=ip_hash,
            since=self._now() - REFUSALS_ONCE_PER,
        )


def _detail(client_id: str | None, reason: str | None) -> str:
    """An audit detail: the client id, then the reason of a refusal."""
    return " ".join(part for part in (client_id or "-", reason) if part)
