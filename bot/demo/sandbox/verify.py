"""A wire-level fake of the Vonage Verify v2 API over HTTPS, for tests and the demo.

The real ``vonage`` SDK always calls ``https://{api_host}{path}``, so configure it with
``HttpClientOptions(api_host=fake.host)`` and let ``requests`` trust the sandbox CA by setting
``REQUESTS_CA_BUNDLE=fake.ca_path``. The fake implements what the bot uses:

* ``POST /v2/verify`` — start (202 ``{"request_id"}``), the code is "delivered" on the first
  workflow channel: a :class:`Delivery` is appended to :attr:`FakeVerify.deliveries` and
  :attr:`FakeVerify.on_delivery` is called;
* ``POST /v2/verify/{id}`` — check a code (200 / 400 / 404 / 410);
* ``DELETE /v2/verify/{id}`` — cancel (204 / 404);
* ``POST /v2/verify/{id}/next_workflow`` — deliver on the next channel (200 / 404 / 409).

Errors are RFC 7807 problem bodies like Vonage's. Authentication is HTTP Basic
``api_key:api_secret`` or, with an ``application_id``, a Bearer JWT whose payload carries that
``application_id`` (the signature is not checked).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import secrets
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jwt
from aiohttp import web

from ._server import LOCALHOST, SandboxServer
from .tls import SandboxCA

__all__ = [
    "Delivery",
    "DropMode",
    "FakeVerify",
    "PathKind",
    "Verification",
    "VerifyCall",
]

logger = logging.getLogger(__name__)

PathKind = Literal["start", "check", "cancel", "next", "other"]
DropMode = Literal["truncate", "close"]
Status = Literal["active", "completed", "cancelled", "expired", "failed"]

_ERROR_TYPE = "https://developer.vonage.com/api-errors"
_CHANNELS = frozenset({"sms", "voice", "whatsapp", "whatsapp_interactive", "email", "silent_auth"})
# The `locale` values Verify v2 documents (the SDK's `vonage_verify.Locale`).
_LOCALES = frozenset(
    "en-us en-gb es-es es-mx es-us it-it fr-fr de-de ru-ru hi-in pt-br pt-pt id-id".split()  # noqa: SIM905
)
# the first bytes of a status line, then nothing: a reply cut off mid-flight
_TRUNCATED_REPLY = b"HTTP/1.1 5"
_PHONE = re.compile(r"\d{7,15}")
_PROBLEMS: dict[int, tuple[str, str, str]] = {
    400: ("bad-request", "Bad Request", "The request could not be understood."),
    401: ("unauthorized", "Unauthorized", "You did not provide correct credentials."),
    402: (
        "low-balance",
        "Low balance",
        "This request could not be performed due to your account balance being low.",
    ),
    403: (
        "forbidden",
        "Forbidden",
        "Your account does not have permission to perform this action.",
    ),
    404: ("not-found", "Not Found", "The requested resource does not exist."),
    405: ("method-not-allowed", "Method Not Allowed", "The method is not allowed."),
    409: (
        "conflict",
        "Conflict",
        "Concurrent verifications to the same number are not allowed.",
    ),
    410: (
        "gone",
        "Invalid Code",
        "An incorrect code has been provided too many times. Workflow terminated.",
    ),
    422: ("invalid-params", "Invalid params", "The value of one or more parameters is invalid"),
    429: ("rate-limit", "Rate Limit Hit", "Please wait, then retry your request"),
    500: ("internal-error", "Internal Error", "Something went wrong."),
    502: ("bad-gateway", "Bad Gateway", "The upstream service did not answer."),
    503: ("service-unavailable", "Service Unavailable", "Please try again later."),
}


def problem(
    status: int, title: str | None = None, detail: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A Vonage-style RFC 7807 problem body for ``status`` (defaults per status code)."""
    slug, default_title, default_detail = _PROBLEMS.get(
        status, ("error", f"Error {status}", "The request failed.")
    )
    body: dict[str, Any] = {
        "type": f"{_ERROR_TYPE}#{slug}",
        "title": title or default_title,
        "detail": detail or default_detail,
        "instance": str(uuid.uuid4()),
    }
    body.update(extra)
    return body


# ---------------------------------------------------------------------------------------
# data classes
# ---------------------------------------------------------------------------------------


@dataclass
class Delivery:
    """A code "sent" to somebody: what an SMS / call / message would have said."""

    request_id: str
    to: str
    channel: str
    code: str
    brand: str
    text: str
    #: the language Vonage would have used (the request's `locale`; None: its own guess)
    locale: str | None = None


@dataclass
class VerifyCall:
    """One HTTP request the fake received (also unauthenticated or failed ones)."""

    method: str
    path: str
    json_body: Any
    kind: PathKind = "other"
    #: HTTP status answered; ``None`` while in progress or if the connection was dropped
    status: int | None = None
    #: the client's TCP port: equal values mean the same (kept-alive) connection
    client_port: int | None = None


@dataclass
class Verification:
    """A verification request as the fake sees it."""

    request_id: str
    brand: str
    workflow: list[dict[str, Any]]
    code: str
    created_at: float
    status: Status = "active"
    channel_index: int = 0
    wrong_attempts: int = 0
    locale: str | None = None
    client_ref: str | None = None
    channel_timeout: int | None = None
    body: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def to(self) -> str:
        """Recipient of the first workflow step."""
        return str(self.workflow[0].get("to", ""))

    @property
    def recipients(self) -> set[str]:
        return {str(step.get("to", "")) for step in self.workflow}


@dataclass
class _Fault:
    kind: PathKind | None
    remaining: int | None  # None: every matching request, until `clear_faults`
    status: int = 0
    body: dict[str, Any] | None = None
    seconds: float = 0.0
    processed: bool = False
    mode: DropMode = "truncate"


class _Problem(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("detail"))
        self.status = status
        self.body = body


def _classify(method: str, path: str) -> tuple[PathKind, str | None]:
    parts = [p for p in path.split("/") if p]
    if parts[:2] != ["v2", "verify"]:
        return "other", None
    if len(parts) == 2 and method == "POST":
        return "start", None
    if len(parts) == 3 and method == "POST":
        return "check", parts[2]
    if len(parts) == 3 and method == "DELETE":
        return "cancel", parts[2]
    if len(parts) == 4 and parts[3] == "next_workflow" and method == "POST":
        return "next", parts[2]
    return "other", None


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number)


# ---------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------


class FakeVerify(SandboxServer):
    """A fake Vonage Verify v2 server on ``https://127.0.0.1:PORT``.

    Args:
        api_key, api_secret: the Basic-auth credentials accepted.
        application_id: if set, ``Authorization: Bearer <JWT>`` with this ``application_id``
            in the JWT payload is accepted as well.
        ca: the CA to serve with; by default the fake makes (and later cleans up) its own.
        port: TCP port, 0 (default) for a random free one.

    Settable knobs: :attr:`ttl_seconds`, :attr:`max_attempts`, :attr:`invalid_numbers`,
    :attr:`latency`, :attr:`on_delivery`.
    """

    def __init__(
        self,
        api_key: str = "key",
        api_secret: str = "secret",  # noqa: S107
        application_id: str | None = None,
        *,
        ca: SandboxCA | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(port=port)
        self.api_key = api_key
        self.api_secret = api_secret
        self.application_id = application_id
        self._ca = ca
        self._owns_ca = ca is None

        #: seconds after start when a request expires (checked lazily)
        self.ttl_seconds: float = 600.0
        #: wrong codes allowed; the last one answers 410 and ends the request
        self.max_attempts: int = 3
        #: digit strings (E.164 without "+") rejected with 422 "Invalid phone number"
        self.invalid_numbers: set[str] = set()
        #: seconds added before answering every request (does not block other requests)
        self.latency: float = 0.0
        #: called with every :class:`Delivery` (plain or coroutine function)
        self.on_delivery: Callable[[Delivery], Awaitable[None] | None] | None = None

        #: every request received, in arrival order
        self.requests: list[VerifyCall] = []
        #: every code "delivered", in order
        self.deliveries: list[Delivery] = []
        self._verifications: dict[str, Verification] = {}
        self._fails: list[_Fault] = []
        self._hangs: list[_Fault] = []
        self._drops: list[_Fault] = []
        self._time_offset = 0.0

    # -- lifecycle / addresses -----------------------------------------------------------

    @property
    def ca(self) -> SandboxCA:
        """The CA whose certificate the server presents (created on first use)."""
        if self._ca is None:
            self._ca = SandboxCA()
        return self._ca

    @property
    def ca_path(self) -> Path:
        """CA PEM file to trust (``REQUESTS_CA_BUNDLE``)."""
        return self.ca.ca_path

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` — the SDK's ``api_host``."""
        return f"{LOCALHOST}:{self.port}"

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``"""
        return f"https://{self.host}"

    def _ssl_context(self) -> ssl.SSLContext:
        return self.ca.server_ssl_context()

    async def stop(self) -> None:
        """Stop serving and (if the fake made its own CA) delete the CA files."""
        try:
            await super().stop()
        finally:
            if self._owns_ca and self._ca is not None:
                self._ca.cleanup()
                self._ca = None

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    # -- state inspection ---------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic() + self._time_offset

    def advance_time(self, seconds: float) -> None:
        """Move the fake's clock forward (for TTL expiry)."""
        self._time_offset += seconds

    def _refresh(self, verification: Verification) -> Verification:
        if (
            verification.status == "active"
            and self._now() - verification.created_at >= self.ttl_seconds
        ):
            verification.status = "expired"
        return verification

    def verification(self, request_id: str) -> Verification:
        """The request with that id (any status). Raises ``KeyError`` if unknown."""
        return self._refresh(self._verifications[request_id])

    def active_requests(self) -> list[Verification]:
        """Requests that are neither completed, cancelled, failed nor expired."""
        return [v for v in map(self._refresh, self._verifications.values()) if v.status == "active"]

    def expire(self, request_id: str) -> None:
        """Force an (active) request to expire now."""
        verification = self._verifications[request_id]
        if verification.status == "active":
            verification.status = "expired"

    def last_delivery(self, to: str | None = None) -> Delivery | None:
        """The most recent delivery (to that number, if given), or ``None``."""
        wanted = _digits(to) if to is not None else None
        for delivery in reversed(self.deliveries):
            if wanted is None or _digits(delivery.to) == wanted:
                return delivery
        return None

    def last_code(self, to: str | None = None) -> str:
        """Code of the most recent delivery (to that number, ``+`` optional).

        Raises ``LookupError`` if nothing was delivered.
        """
        delivery = self.last_delivery(to)
        if delivery is None:
            target = f" to {to}" if to is not None else ""
            raise LookupError(f"no verification code was delivered{target}")
        return delivery.code

    def calls(self, kind: PathKind | None = None) -> list[VerifyCall]:
        """Requests received, optionally only of one kind (start/check/cancel/next/other)."""
        return [c for c in self.requests if kind is None or c.kind == kind]

    # -- fault injection ---------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        body: dict[str, Any] | None = None,
        times: int = 1,
        path_kind: PathKind | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` and a problem body
        (``body`` verbatim if given). ``path_kind`` limits it to one endpoint."""
        self._fails.append(_Fault(path_kind, _positive(times), status=status, body=body))

    def hang_next(
        self,
        seconds: float,
        times: int = 1,
        path_kind: PathKind | None = None,
        *,
        processed: bool = False,
    ) -> None:
        """Delay the next matching replies by ``seconds`` (on top of :attr:`latency`).

        With ``processed=False`` (default) the request takes effect only when the delay is
        over, so a client that gives up earlier leaves no trace. With ``processed=True`` it
        takes effect at once and only the answer is late (the "timed out, but the SMS went
        out anyway" case).
        """
        self._hangs.append(
            _Fault(path_kind, _positive(times), seconds=seconds, processed=processed)
        )

    def drop_next(
        self,
        times: int = 1,
        path_kind: PathKind | None = None,
        *,
        mode: DropMode = "truncate",
        processed: bool = False,
    ) -> None:
        """Break the connection of the next matching requests instead of answering.

        With ``processed=False`` (default) the request has no effect. With ``processed=True``
        it takes effect first (a verification is created and its code "delivered", a check
        counts, a cancel cancels) and only the answer is lost: the client cannot tell whether
        Vonage acted on it.

        ``mode="truncate"`` (default) sends the first bytes of a status line and closes:
        ``requests`` raises ``ConnectionError`` ("Connection aborted.", ``BadStatusLine``).
        ``mode="close"`` closes without sending a byte: ``RemoteDisconnected``, which the
        Vonage SDK out of the box resends up to ``pool_maxsize`` times, POSTs included (the
        bot's ``VerifyClient`` turns that off). Over TLS, OpenSSL 3 reports a TCP reset like a
        clean close, so a "reset" mode would behave the same.
        """
        self._drops.append(_Fault(path_kind, _positive(times), mode=mode, processed=processed))

    def drop_all(
        self,
        path_kind: PathKind | None = None,
        *,
        mode: DropMode = "truncate",
        processed: bool = False,
    ) -> None:
        """Break the connection of every matching request from now on (Vonage unreachable in
        the middle of the exchange), until :meth:`clear_faults`; as :meth:`drop_next`."""
        self._drops.append(_Fault(path_kind, None, mode=mode, processed=processed))

    def clear_faults(self) -> None:
        """Forget every pending fail/hang/drop (Vonage is back after :meth:`drop_all`)."""
        self._fails.clear()
        self._hangs.clear()
        self._drops.clear()

    @staticmethod
    def _take(faults: list[_Fault], kind: PathKind) -> _Fault | None:
        for fault in faults:
            if fault.kind is None or fault.kind == kind:
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        faults.remove(fault)
                return fault
        return None

    # -- HTTP --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        body_error = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body, body_error = raw.decode("utf-8", "replace"), True
        kind, request_id = _classify(request.method, request.path)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        client_port = int(peer[1]) if isinstance(peer, tuple) and len(peer) >= 2 else None
        call = VerifyCall(request.method, request.path, body, kind, client_port=client_port)
        self.requests.append(call)
        logger.debug("fake verify: %s %s", request.method, request.path)

        # a hang combines with the other faults; a dropped request does not use up a fail
        hang = self._take(self._hangs, kind)
        drop = self._take(self._drops, kind)
        fail = self._take(self._fails, kind) if drop is None else None

        early: web.StreamResponse | None = None
        if drop is not None and drop.processed:
            self._respond(request, kind, request_id, body, body_error)  # the answer is lost
        elif hang is not None and hang.processed and drop is None and fail is None:
            early = self._respond(request, kind, request_id, body, body_error)
        delay = self.latency + (hang.seconds if hang is not None else 0.0)
        if not await self._sleep(delay):
            call.status = 503
            return web.json_response(problem(503), status=503)
        if drop is not None:
            self._drop(request, drop.mode)
            return web.Response(status=500)  # never reaches the client
        if fail is not None:
            response: web.StreamResponse = web.json_response(
                fail.body if fail.body is not None else problem(fail.status),
                status=fail.status,
            )
        elif early is not None:
            response = early
        else:
            response = self._respond(request, kind, request_id, body, body_error)
        call.status = response.status
        return response

    def _respond(
        self,
        request: web.Request,
        kind: PathKind,
        request_id: str | None,
        body: Any,
        body_error: bool,
    ) -> web.StreamResponse:
        try:
            self._authenticate(request)
            if kind == "other":
                known = request.path.rstrip("/").startswith("/v2/verify")
                raise _Problem(405 if known else 404, problem(405 if known else 404))
            if body_error:
                raise _Problem(400, problem(400, detail="The request body is not valid JSON."))
            if kind == "start":
                return web.json_response(self._start(body), status=202)
            assert request_id is not None
            if kind == "check":
                return web.json_response(self._check(request_id, body))
            if kind == "cancel":
                self._cancel(request_id)
                return web.Response(status=204)
            self._next_workflow(request_id)
            return web.json_response({})
        except _Problem as exc:
            logger.debug("fake verify: %s -> %d %s", request.path, exc.status, exc.body["title"])
            return web.json_response(exc.body, status=exc.status)

    @staticmethod
    def _drop(request: web.Request, mode: DropMode) -> None:
        transport = request.transport
        if transport is None:
            return
        if mode == "truncate":
            transport.write(_TRUNCATED_REPLY)  # handed to the socket at once
        transport.abort()

    # -- auth ----------------------------------------------------------------------------

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            expected = f"{self.api_key}:{self.api_secret}"
            if hmac.compare_digest(decoded.encode(), expected.encode()):
                return
        elif scheme == "bearer" and self.application_id is not None:
            try:
                claims = jwt.decode(value.strip(), options={"verify_signature": False})
            except jwt.PyJWTError:
                claims = {}
            if claims.get("application_id") == self.application_id:
                return
        raise _Problem(401, problem(401))

    # -- endpoints -----------------------------------------------------------------------

    def _start(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _invalid([("body", "A JSON object is required")])
        errors: list[tuple[str, str]] = []
        brand = body.get("brand")
        if not isinstance(brand, str) or not brand.strip():
            errors.append(("brand", "Brand is required"))
        elif len(brand) > 16:
            errors.append(("brand", "Brand must be at most 16 characters"))
        workflow = body.get("workflow")
        if not isinstance(workflow, list) or not workflow:
            errors.append(("workflow", "At least one workflow is required"))
            workflow = []
        elif len(workflow) > 3:
            errors.append(("workflow", "At most 3 workflows are allowed"))
        invalid_number = False
        for index, step in enumerate(workflow):
            name = f"workflow[{index}]"
            if not isinstance(step, dict):
                errors.append((name, "Workflow must be an object"))
                continue
            channel = step.get("channel")
            to = step.get("to")
            if channel not in _CHANNELS:
                errors.append((f"{name}.channel", f"Invalid channel {channel!r}"))
            if channel == "email":
                if not isinstance(to, str) or "@" not in to:
                    errors.append((f"{name}.to", "Invalid email address"))
            elif not isinstance(to, str) or not _PHONE.fullmatch(to):
                errors.append((f"{name}.to", "Must be a phone number of 7-15 digits"))
            elif to in self.invalid_numbers:
                errors.append((f"{name}.to", "Invalid phone number"))
                invalid_number = True
        code_length = body.get("code_length", 4)
        if not isinstance(code_length, int) or isinstance(code_length, bool):
            errors.append(("code_length", "Must be an integer"))
            code_length = 4
        elif not 4 <= code_length <= 10:
            errors.append(("code_length", "Must be between 4 and 10"))
        channel_timeout = body.get("channel_timeout")
        if channel_timeout is not None and (
            not isinstance(channel_timeout, int) or not 15 <= channel_timeout <= 900
        ):
            errors.append(("channel_timeout", "Must be between 15 and 900"))
        client_ref = body.get("client_ref")
        if client_ref is not None and (not isinstance(client_ref, str) or len(client_ref) > 16):
            errors.append(("client_ref", "Must be a string of at most 16 characters"))
        custom_code = body.get("code")
        if custom_code is not None and (
            not isinstance(custom_code, str) or not re.fullmatch(r"[A-Za-z0-9]{4,10}", custom_code)
        ):
            errors.append(("code", "Must be 4-10 alphanumeric characters"))
        locale = body.get("locale")
        if locale is not None and locale not in _LOCALES:
            errors.append(("locale", f"Invalid locale {locale!r}"))
        if errors:
            detail = "Invalid phone number" if invalid_number else None
            raise _invalid(errors, detail)

        steps: list[dict[str, Any]] = [dict(step) for step in workflow]
        for active in self.active_requests():
            if active.recipients & {str(s["to"]) for s in steps}:
                raise _Problem(
                    409,
                    problem(
                        409,
                        detail="Concurrent verifications to the same number are not allowed.",
                        request_id=active.request_id,
                    ),
                )
        if isinstance(custom_code, str):
            code = custom_code
        else:
            code = "".join(secrets.choice("0123456789") for _ in range(code_length))
        verification = Verification(
            request_id=str(uuid.uuid4()),
            brand=str(brand),
            workflow=steps,
            code=code,
            created_at=self._now(),
            locale=locale,
            client_ref=client_ref,
            channel_timeout=channel_timeout,
            body=body,
        )
        self._verifications[verification.request_id] = verification
        logger.debug("fake verify: started %s", verification.request_id)
        self._deliver(verification)
        result: dict[str, Any] = {"request_id": verification.request_id}
        if steps[0].get("channel") == "silent_auth":
            result["check_url"] = (
                f"{self.url}/v2/verify/{verification.request_id}/silent-auth/redirect"
            )
        return result

    def _deliver(self, verification: Verification) -> None:
        step = verification.workflow[verification.channel_index]
        channel = str(step.get("channel"))
        to = str(step.get("to"))
        brand, code = verification.brand, verification.code
        if channel == "voice":
            text = f"Call to {to}: your {brand} code is {code}"
        else:
            text = f"Your {brand} code is {code}"
        delivery = Delivery(
            verification.request_id, to, channel, code, brand, text, verification.locale
        )
        self.deliveries.append(delivery)
        logger.debug("fake verify: delivered %s code for %s", channel, verification.request_id)
        self._run_hook(self.on_delivery, delivery)

    def _live(self, request_id: str) -> Verification:
        verification = self._verifications.get(request_id)
        if verification is not None:
            self._refresh(verification)
        if verification is None or verification.status not in ("active", "failed"):
            raise _not_found(request_id)
        return verification

    def _check(self, request_id: str, body: Any) -> dict[str, Any]:
        verification = self._live(request_id)
        if verification.status == "failed":
            raise _Problem(410, problem(410))
        code = body.get("code") if isinstance(body, dict) else None
        if not isinstance(code, str) or not code:
            raise _invalid([("code", "Code is required")])
        if hmac.compare_digest(code.encode(), verification.code.encode()):
            verification.status = "completed"
            logger.debug("fake verify: %s completed", request_id)
            return {"request_id": request_id, "status": "completed"}
        verification.wrong_attempts += 1
        if verification.wrong_attempts >= self.max_attempts:
            verification.status = "failed"
            logger.debug("fake verify: %s terminated after wrong codes", request_id)
            raise _Problem(410, problem(410))
        raise _Problem(
            400,
            problem(
                400,
                title="Invalid Code",
                detail="The code you provided does not match the expected value.",
            ),
        )

    def _cancel(self, request_id: str) -> None:
        verification = self._live(request_id)
        if verification.status != "active":
            raise _not_found(request_id)
        verification.status = "cancelled"
        logger.debug("fake verify: %s cancelled", request_id)

    def _next_workflow(self, request_id: str) -> None:
        verification = self._live(request_id)
        if verification.status != "active":
            raise _not_found(request_id)
        if verification.channel_index + 1 >= len(verification.workflow):
            raise _Problem(409, problem(409, detail="There are no more workflows"))
        verification.channel_index += 1
        self._deliver(verification)


def _positive(times: int) -> int:
    if times < 1:
        raise ValueError("times must be >= 1")
    return times


def _not_found(request_id: str) -> _Problem:
    return _Problem(
        404,
        problem(
            404,
            detail=f"Request '{request_id}' was not found or it has been verified already.",
        ),
    )


def _invalid(errors: list[tuple[str, str]], detail: str | None = None) -> _Problem:
    return _Problem(
        422,
        problem(
            422,
            detail=detail,
            invalid_parameters=[{"name": name, "reason": reason} for name, reason in errors],
        ),
    )
