"""Vonage Verify v2, made safe for an asyncio bot.

The SDK is synchronous: every call runs in a dedicated, bounded thread pool, with a timeout,
and every failure becomes one of a few `VerifyFailure` kinds the bot can explain in plain words.
"""

from __future__ import annotations

import asyncio
import enum
import importlib.metadata
import logging
import os
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.util import Retry
from urllib3.util.ssl_ import create_urllib3_context
from vonage_http_client import Auth, HttpClient, HttpClientOptions
from vonage_http_client.errors import HttpRequestError
from vonage_verify import Locale, SmsChannel, Verify, VerifyRequest, VoiceChannel

from bot.i18n import SOURCE
from bot.login.phone import PhoneNumber
from bot.metrics import Metrics

logger = logging.getLogger(__name__)

T = TypeVar("T")


class FailureKind(enum.StrEnum):
    """Why Verify did not do what we asked, in the terms the bot answers in."""

    WRONG_CODE = "wrong_code"  # 400: the code does not match
    TOO_MANY_WRONG = "too_many_wrong"  # 410: Vonage ended the request
    NOT_FOUND = "not_found"  # 404: expired, finished or unknown request
    CONFLICT = "conflict"  # 409: a verification already running for that number
    NO_NEXT_CHANNEL = "no_next_channel"  # 409 on next_workflow
    INVALID_NUMBER = "invalid_number"  # 422
    RATE_LIMITED = "rate_limited"  # 429
    BAD_CREDENTIALS = "bad_credentials"  # 401 / 403
    NO_CREDIT = "no_credit"  # 402
    UNAVAILABLE = "unavailable"  # 5xx, network error, timeout
    CANNOT_DELIVER = "cannot_deliver"  # the Telegram Gateway cannot reach that number


class VerifyFailure(Exception):
    """A Verify call that did not succeed. Carries no response text: it may hold numbers."""

    def __init__(
        self, kind: FailureKind, *, status: int | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(f"Verify failure: {kind} (HTTP {status})")
        self.kind = kind
        self.status = status
        self.request_id = request_id

    @property
    def refused(self) -> bool:
        """Vonage answered that it did not do it (a 4xx): nothing was sent, nothing paid.
        After a 5xx, a timeout or a lost answer it may have done it all the same."""
        return self.status is not None and 400 <= self.status < 500


@dataclass(frozen=True, slots=True)
class VerifyConfig:
    """What a verification asks Vonage for."""

    brand: str
    code_length: int
    channel_timeout: int
    workflow: tuple[str, ...]


async def measured(metrics: Metrics, provider: str, operation: str, call: Awaitable[T]) -> T:
    """Await one call to a code provider (`verify`, `gateway`), timed into `metrics` by its
    outcome: `ok`, the VerifyFailure's kind, `error` for anything else, or `cancelled` when
    the bot stopped waiting."""
    started = time.perf_counter()
    outcome = "cancelled"
    try:
        result = await call
        outcome = "ok"
        return result
    except VerifyFailure as failure:
        outcome = failure.kind.value
        raise
    except Exception:
        outcome = "error"
        raise
    finally:
        seconds = time.perf_counter() - started
        metrics.provider_call(operation, outcome, seconds, provider=provider)
        logger.debug(
            "%s %s: %s in %.3f s",
            provider,
            operation,
            outcome,
            seconds,
            extra={
                "provider": provider,
                "operation": operation,
                "outcome": outcome,
                "duration": round(seconds, 4),
            },
        )


class VerifyClient:
    """Starts, checks, cancels and advances Verify v2 requests without blocking the loop."""

    def __init__(
        self,
        http: HttpClient,
        config: VerifyConfig,
        *,
        max_workers: int,
        timeout: float,
        metrics: Metrics | None = None,
    ) -> None:
        self._http = http
        self._verify = Verify(http)
        self._config = config
        self._timeout = timeout
        self._metrics = metrics or Metrics()
        self._max_workers = max_workers
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="vonage")

    @classmethod
    def from_credentials(
        cls,
        *,
        config: VerifyConfig,
        api_host: str,
        timeout_seconds: int,
        max_workers: int,
        api_key: str | None = None,
        api_secret: str | None = None,
        application_id: str | None = None,
        private_key: str | None = None,
        metrics: Metrics | None = None,
    ) -> VerifyClient:
        """A client for Vonage with either key and secret or application id and private key,
        which sends every call once: when an answer is lost, the bot decides what comes next.

        Its connection pool is sized to the thread pool, so no call waits for a socket.
        """
        if application_id and private_key:
            auth = Auth(application_id=application_id, private_key=private_key)
        else:
            auth = Auth(api_key=api_key, api_secret=api_secret)
        # Nothing is resent: a resent start can pay for a second SMS, a resent check spend a
        # second try on one wrong code or find a right one used up. urllib3 retries nothing
        # (`Retry(total=0)` on our adapter). The SDK's `make_request` resends any request,
        # POSTs too, after a `RemoteDisconnected`, as many times as its `pool_maxsize` option
        # says (128 starts for one number once), and nothing else reads that option (our
        # adapter replaces the SDK's), so it is 1. urllib3 still notices a pooled connection
        # the server closed while idle before reusing it; a drop after that may have reached
        # Vonage, and is UNAVAILABLE after one attempt.
        options = HttpClientOptions(
            api_host=api_host,
            timeout=timeout_seconds,
            pool_connections=1,
            pool_maxsize=1,
            max_retries=0,
        )
        # The SDK's own parts for Verify: its `Vonage` class would import every Vonage API
        # (video, voice, messages... 9 MB more of each bot's memory) to offer them.
        http = HttpClient(auth, options, importlib.metadata.version("vonage"))
        session = http._session
        session.mount(
            "https://",
            SharedTlsContextAdapter(
                pool_connections=1, pool_maxsize=max_workers, max_retries=Retry(total=0)
            ),
        )
        read_environment_once(session, f"https://{api_host}/")
        return cls(
            http, config, max_workers=max_workers, timeout=timeout_seconds + 5, metrics=metrics
        )

    def start_workers(self) -> None:
        """Start every worker thread now (blocking, briefly). The pool otherwise starts them
        one per call, from the event loop, which then waits for each new thread to run: in a
        burst of logins that wait adds up before the last Verify call goes out."""
        ready = threading.Barrier(self._max_workers + 1)
        # Each task holds its thread until all are running, so the pool starts a new one
        # for every task (idle threads are reused, busy ones are not).
        for _ in range(self._max_workers):
            self._executor.submit(ready.wait, 30)
        try:
            ready.wait(30)
        except threading.BrokenBarrierError:
            logger.warning("Not every Verify worker thread started in time")

    def close(self) -> None:
        """Let running calls finish, then free the threads and sockets."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._http._session.close()

    async def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """One call, timed and counted (`measured`)."""
        return await measured(self._metrics, "verify", what, self._send(what, fn, *args))

    async def _send(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, fn, *args)
        try:
            return await asyncio.wait_for(future, self._timeout)
        except HttpRequestError as error:
            raise _classify(what, error) from None
        except (requests.RequestException, TimeoutError, OSError) as error:
            logger.warning("Verify %s failed: %s", what, type(error).__name__)
            raise VerifyFailure(FailureKind.UNAVAILABLE) from None
        except Exception as error:
            # Anything else from the SDK (a request it refuses to build, a key it cannot sign
            # with): its text may hold the number, so only the type is logged.
            logger.error("Verify %s failed inside the SDK: %s", what, type(error).__name__)
            raise VerifyFailure(FailureKind.UNAVAILABLE) from None

    async def start(self, number: PhoneNumber, *, language: str = SOURCE) -> str:
        """Start a verification to a number, its SMS and call in `language` (a `bot.i18n`
        code, as `verify_locale` maps it); returns its request id."""
        locale = verify_locale(language, number.region)
        response = await self._call("start", self._start, number.digits, locale)
        return str(response.request_id)

    def _start(self, to_digits: str, locale: Locale) -> Any:
        """Build and send the start request (in a worker thread: building validates too)."""
        channels = {"sms": SmsChannel, "voice": VoiceChannel}
        request = VerifyRequest(
            brand=self._config.brand,
            workflow=[channels[name](to=to_digits) for name in self._config.workflow],
            locale=locale,
            code_length=self._config.code_length,
            channel_timeout=self._config.channel_timeout,
        )
        return self._verify.start_verification(request)

    async def check(self, request_id: str, code: str) -> None:
        """Return if the code is right; raise VerifyFailure (WRONG_CODE, ...) otherwise."""
        response = await self._call("check", self._verify.check_code, request_id, code)
        if response.status != "completed":
            logger.warning("Verify check answered status %s", response.status)
            raise VerifyFailure(FailureKind.UNAVAILABLE)

    async def cancel(self, request_id: str) -> bool:
        """Cancel a request; False if Vonage no longer knows it (already over)."""
        try:
            await self._call("cancel", self._verify.cancel_verification, request_id)
        except VerifyFailure as failure:
            if failure.kind is FailureKind.NOT_FOUND:
                return False
            raise
        return True

    async def next_channel(self, request_id: str) -> None:
        """Move a request on to its next channel (a voice call after the SMS)."""
        try:
            await self._call("next", self._verify.trigger_next_workflow, request_id)
        except VerifyFailure as failure:
            if failure.kind is FailureKind.CONFLICT:
                raise VerifyFailure(FailureKind.NO_NEXT_CHANNEL, status=409) from None
            raise


# Where a language's own variant is not the number's region: Spanish-speaking America hears
# Mexican Spanish (Verify has no other American one but the USA's), and English-speaking
# North America American English.
_REGIONAL_VARIANTS = {
    "es": dict.fromkeys(
        "AR BO CL CO CR CU DO EC GT HN MX NI PA PE PR PY SV UY VE".split(),  # noqa: SIM905
        "es-mx",
    )
    | {"US": "es-us"},
    "en": dict.fromkeys("US CA PR VI GU AS MP UM".split(), "en-us"),  # noqa: SIM905
}
# A language's locale when the number's region has no variant of it.
_DEFAULT_VARIANTS = {"en": "en-gb", "es": "es-es", "pt": "pt-br", "de": "de-de", "ru": "ru-ru"}


def verify_locale(language: str, region: str) -> Locale:
    """The Verify v2 `locale` for a chat's language (a `bot.i18n` code) and the number's
    region (ISO 3166, as `bot.login.phone` reports it): the language's variant of that
    region when the SDK allows it (`es` and a Mexican number: `es-mx`; `pt` and a Portuguese
    one: `pt-pt`), else the language's usual one, else English: never an error."""
    primary = language.split("_")[0].lower()
    for candidate in (
        _REGIONAL_VARIANTS.get(primary, {}).get(region),
        f"{primary}-{region.lower()}",
        f"{language.replace('_', '-').lower()}",
        _DEFAULT_VARIANTS.get(primary),
        _REGIONAL_VARIANTS["en"].get(region),
    ):
        if candidate is not None and candidate in _LOCALES:
            return Locale(candidate)
    return Locale.EN_GB


_LOCALES = frozenset(locale.value for locale in Locale)


def read_environment_once(session: requests.Session, url: str) -> None:
    """Settle now what requests would otherwise read from the environment on every call to
    `url`: its proxy (HTTPS_PROXY, NO_PROXY...) and the CA bundle (REQUESTS_CA_BUNDLE,
    CURL_CA_BUNDLE). With `trust_env` on, each call also looks for ~/.netrc, which would put
    its credentials on requests that carry Vonage's own."""
    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False


class SharedTlsContextAdapter(HTTPAdapter):
    """requests' HTTPS transport with one TLS context per trusted-CA bundle, made once.

    Out of the box, every new connection gets a fresh context and reads the whole CA bundle
    into it: about 13 ms of CPU with certifi's bundle, so a burst of 100 logins (100 new
    connections to Vonage) would spend over a second of CPU on it. The context is the one
    urllib3 would build (`create_urllib3_context`, certificate and hostname checks on) for the
    same `verify` value (`True`: certifi; a path: `REQUESTS_CA_BUNDLE` and the like).
    """

    def __init__(self, **kwargs: Any) -> None:
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._contexts_lock = threading.Lock()
        super().__init__(**kwargs)

    def _context(self, where: str) -> ssl.SSLContext:
        with self._contexts_lock:
            context = self._contexts.get(where)
            if context is None:
                context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
                if os.path.isdir(where):
                    context.load_verify_locations(capath=where)
                else:
                    context.load_verify_locations(cafile=where)
                self._contexts[where] = context
            return context

    @staticmethod
    def _shares(url: str, verify: Any, cert: Any) -> bool:
        return bool(verify) and cert is None and url.lower().startswith("https")

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The pool's TLS settings: the shared context instead of a CA path to load."""
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if self._shares(request.url or "", verify, cert):
            where = verify if isinstance(verify, str) else DEFAULT_CA_BUNDLE_PATH
            pool.pop("ca_certs", None)
            pool.pop("ca_cert_dir", None)
            pool["ssl_context"] = self._context(where)
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """As requests does, but without a CA path for urllib3 to load per connection (the
        shared context has it already)."""
        super().cert_verify(conn, url, verify, cert)
        if self._shares(url, verify, cert):
            conn.ca_certs = None
            conn.ca_cert_dir = None


def _classify(what: str, error: HttpRequestError) -> VerifyFailure:
    status = int(error.response.status_code)
    request_id: str | None = None
    try:
        body = error.response.json()
        if isinstance(body, dict) and isinstance(body.get("request_id"), str):
            request_id = body["request_id"]
    except ValueError:
        pass
    kind = {
        400: FailureKind.WRONG_CODE,
        401: FailureKind.BAD_CREDENTIALS,
        402: FailureKind.NO_CREDIT,
        403: FailureKind.BAD_CREDENTIALS,
        404: FailureKind.NOT_FOUND,
        409: FailureKind.CONFLICT,
        410: FailureKind.TOO_MANY_WRONG,
        422: FailureKind.INVALID_NUMBER,
        429: FailureKind.RATE_LIMITED,
    }.get(status, FailureKind.UNAVAILABLE)
    log = (
        logger.warning
        if kind in (FailureKind.UNAVAILABLE, FailureKind.BAD_CREDENTIALS, FailureKind.NO_CREDIT)
        else logger.info
    )
    log("Verify %s answered HTTP %s (%s)", what, status, kind)
    return VerifyFailure(kind, status=status, request_id=request_id)
