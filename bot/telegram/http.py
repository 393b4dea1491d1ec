"""python-telegram-bot's HTTP backend on aiohttp instead of httpx.

PTB lets an application bring its own networking (`telegram.request.BaseRequest`). Each Bot API
call through httpx costs about 0.8 ms of CPU on a 2-core machine; the same call through
aiohttp about 0.2 ms. A login answers with two or three messages, so under a burst of users
that difference decides how soon the last one is answered (see bench/README.md).

Behaviour matches PTB's own `HTTPXRequest` where the bot relies on it: the same default
timeouts, a bounded connection pool, form-encoded parameters with multipart uploads for
files, proxies from the environment (`HTTPS_PROXY`, `NO_PROXY`...), and failures as PTB's
`TimedOut` / `NetworkError`. aiohttp has no write timeout; a stalled upload ends with the read
timeout.

The environment is read once per host, on the first call to it, as httpx reads it once per
client. aiohttp's own `trust_env` reads it (and `~/.netrc`) again on every call, in two
trips to a worker thread each: most of the CPU a Bot API call costs when calls come one at a
time, as they do under the flood limiter.
"""

from __future__ import annotations

import time

import aiohttp
from aiohttp.helpers import BasicAuth, get_env_proxy_for_url
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

from bot.metrics import Metrics


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` for `ApplicationBuilder.request()` / `.get_updates_request()`."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 1,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        metrics: Metrics | None = None,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None
        # (scheme, host) -> the proxy from the environment for it (None: direct)
        self._proxies: dict[tuple[str, str], tuple[URL, BasicAuth | None] | None] = {}
        self._metrics = metrics or Metrics()

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout (PTB adds the long-polling time to it for getUpdates)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the connection pool (in the running event loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0),
                trust_env=False,  # proxies: `_proxy_for`
                timeout=aiohttp.ClientTimeout(total=None),
            )

    async def shutdown(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; returns the HTTP status and the body."""
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = (
            self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout
        )
        pool = self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout
        timeout = aiohttp.ClientTimeout(
            total=None,
            # aiohttp's `connect` covers waiting for a pooled connection and connecting.
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            sock_read=read,
        )
        target = URL(url)
        proxy, proxy_auth = self._proxy_for(target) or (None, None)
        started = time.perf_counter()
        status = "cancelled"  # unless it is answered or fails
        try:
            async with session.request(
                method,
                target,
                data=_body(request_data),
                headers={"User-Agent": self.USER_AGENT},
                timeout=timeout,
                proxy=proxy,
                proxy_auth=proxy_auth,
            ) as response:
                body = await response.read()
                status = str(response.status)
                return response.status, body
        except TimeoutError as error:  # aiohttp's timeouts are TimeoutErrors
            status = "timeout"
            raise TimedOut from error
        except aiohttp.ClientError as error:
            status = "network"
            # The class name only: some aiohttp errors quote the URL, which holds the token.
            raise NetworkError(f"aiohttp.{type(error).__name__}") from error
        finally:
            self._metrics.telegram_call(url, status, time.perf_counter() - started)

    def _proxy_for(self, url: URL) -> tuple[URL, BasicAuth | None] | None:
        """The proxy the environment names for the URL's host (HTTP(S)_PROXY, NO_PROXY, a
        proxy's credentials in ~/.netrc), as aiohttp's `trust_env` finds it; read once."""
        key = (url.scheme, url.host or "")
        if key not in self._proxies:
            try:
                self._proxies[key] = get_env_proxy_for_url(url)
            except LookupError:  # none, or NO_PROXY covers the host
                self._proxies[key] = None
        return self._proxies[key]


def _body(request_data: RequestData | None) -> aiohttp.FormData | dict[str, str] | None:
    """Form-encoded parameters, or multipart when the request uploads files."""
    if request_data is None:
        return None
    files = request_data.multipart_data
    if not files:
        return request_data.json_parameters
    form = aiohttp.FormData(quote_fields=False)
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in files.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form
