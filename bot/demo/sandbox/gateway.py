"""A wire-level fake of the Telegram Gateway API (plain HTTP on 127.0.0.1), for tests and the
demo. Point ``TELEGRAM_GATEWAY_URL`` at :attr:`FakeGateway.url`.

It implements the four methods the bot uses, POST with a JSON body, answering
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}`` like the real API:

* ``checkSendAbility`` — a ``RequestStatus`` with a fresh ``request_id``, or 400
  ``PHONE_NUMBER_NOT_AVAILABLE`` for numbers starting with one of
  :attr:`FakeGateway.cannot_deliver` (no Telegram account there);
* ``sendVerificationMessage`` — a code "delivered" (a :class:`GatewayMessage` appended to
  :attr:`FakeGateway.messages`, :attr:`FakeGateway.on_message` called); free when it names the
  ability check's ``request_id``; with a ``callback_url`` a signed delivery report follows;
* ``checkVerificationStatus`` — ``verification_status`` ``code_valid`` / ``code_invalid`` /
  ``code_max_attempts_exceeded`` / ``expired`` (after ``ttl``, or once revoked);
* ``revokeVerificationMessage`` — ``true``.

Authentication is ``Authorization: Bearer <token>`` (401 ``ACCESS_TOKEN_INVALID`` otherwise).
Delivery reports carry ``X-Request-Timestamp`` and ``X-Request-Signature``: the hex HMAC-SHA-256
of ``timestamp + "\\n" + body`` keyed with SHA-256 of the token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from ._server import LOCALHOST, SandboxServer

__all__ = ["FakeGateway", "GatewayCall", "GatewayMessage", "GatewayRequest"]

logger = logging.getLogger(__name__)

_METHODS = {
    "checksendability": "checkSendAbility",
    "sendverificationmessage": "sendVerificationMessage",
    "checkverificationstatus": "checkVerificationStatus",
    "revokeverificationmessage": "revokeVerificationMessage",
}
PRICE = 0.01


@dataclass
class GatewayCall:
    """One HTTP request the fake received."""

    method: str  # as the API names it (checkSendAbility...), or the path for unknown ones
    params: dict[str, Any]
    status: int | None = None


@dataclass
class GatewayMessage:
    """A code "delivered" in Telegram by the Verification Codes account."""

    request_id: str
    phone_number: str
    code: str
    text: str


@dataclass
class GatewayRequest:
    """A request as the fake keeps it (an ability check, then maybe its message)."""

    request_id: str
    phone_number: str
    created_at: float
    cost: float = PRICE
    code: str | None = None
    sent_at: float | None = None
    ttl: int = 3600
    delivery: str | None = None  # sent, delivered, read, expired, revoked
    verdict: str | None = None  # code_valid, code_invalid, code_max_attempts_exceeded, expired
    wrong: int = 0
    callback_url: str | None = None
    params: dict[str, Any] = field(default_factory=dict, repr=False)


class FakeGateway(SandboxServer):
    """A fake Telegram Gateway API on ``http://127.0.0.1:PORT/``.

    Settable knobs: :attr:`cannot_deliver` (E.164 prefixes), :attr:`max_attempts`,
    :attr:`report_delivery` (send a "delivered" report after each message),
    :attr:`on_message`.
    """

    def __init__(self, token: str = "gateway-token", *, port: int = 0) -> None:  # noqa: S107
        super().__init__(port=port)
        self.token = token
        #: numbers starting with one of these have no Telegram account to deliver to
        self.cannot_deliver: tuple[str, ...] = ()
        #: wrong codes a message takes; the last answers code_max_attempts_exceeded
        self.max_attempts = 3
        #: whether a message sent with a callback_url gets a "delivered" report at once
        #: (tests send theirs with :meth:`send_report`, when they want it)
        self.report_delivery = False
        #: called with every :class:`GatewayMessage` (plain or coroutine function)
        self.on_message: Callable[[GatewayMessage], Awaitable[None] | None] | None = None
        #: every request received, in order
        self.requests: list[GatewayCall] = []
        #: every code "delivered", in order
        self.messages: list[GatewayMessage] = []
        #: every report posted: (callback_url, body, HTTP status answered or None)
        self.reports: list[tuple[str, dict[str, Any], int | None]] = []
        self._requests: dict[str, GatewayRequest] = {}
        self._fails: list[tuple[str | None, int, str, bool]] = []
        self._hangs: list[tuple[str | None, float, bool]] = []
        self._offset = 0.0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/`` — ``TELEGRAM_GATEWAY_URL``."""
        return f"http://{LOCALHOST}:{self.port}/"

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{method}", self._handle)
        return app

    # -- state ---------------------------------------------------------------------------

    def _now(self) -> float:
        return time.time() + self._offset

    def advance_time(self, seconds: float) -> None:
        """Move the fake's clock forward (messages expire after their ttl)."""
        self._offset += seconds

    def request(self, request_id: str) -> GatewayRequest:
        """The request with that id (KeyError if unknown)."""
        return self._requests[request_id]

    def calls(self, method: str | None = None) -> list[GatewayCall]:
        """Requests received, optionally only those of one method."""
        return [c for c in self.requests if method is None or c.method == method]

    def last_code(self, to: str | None = None) -> str:
        """The code of the last message (to that E.164 number, if given); LookupError if none."""
        for message in reversed(self.messages):
            if to is None or message.phone_number == to:
                return message.code
        raise LookupError("no Telegram code was delivered")

    @property
    def paid(self) -> float:
        """What the account has been charged: each confirmed ability check, and each message
        sent without one; refunded when never delivered."""
        return round(sum(r.cost for r in self._requests.values() if r.delivery != "expired"), 6)

    # -- faults --------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        error: str = "INTERNAL_ERROR",
        *,
        method: str | None = None,
        processed: bool = False,
    ) -> None:
        """Answer the next request (of `method`, if given) with `status` and `error`. With
        ``processed=True`` the request takes effect all the same (a message sent whose
        answer is a 5xx)."""
        self._fails.append((method, status, error, processed))

    def hang_next(
        self, seconds: float, *, method: str | None = None, processed: bool = False
    ) -> None:
        """Answer the next request (of `method`, if given) `seconds` late. With
        ``processed=False`` (default) it takes effect only then: a client that gives up
        earlier leaves no trace. With ``processed=True`` it takes effect at once and only
        the answer is late (the "timed out, but the message went out anyway" case)."""
        self._hangs.append((method, seconds, processed))

    @staticmethod
    def _take(faults: list[Any], method: str) -> Any:
        for fault in faults:
            if fault[0] is None or fault[0] == method:
                faults.remove(fault)
                return fault
        return None

    # -- HTTP ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        name = _METHODS.get(request.match_info["method"].lower(), request.path)
        params: dict[str, Any] = dict(request.query)
        raw = await request.read()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if isinstance(body, dict):
                params.update(body)
        call = GatewayCall(name, params)
        self.requests.append(call)
        answer: tuple[int, dict[str, Any]] | None = None
        hang = self._take(self._hangs, name)
        if hang is not None and hang[2]:
            answer = self._answer(request, name, params)
        if hang is not None and not await self._sleep(hang[1]):
            call.status = 503
            return web.json_response({"ok": False, "error": "STOPPING"}, status=503)
        fail = self._take(self._fails, name)
        if fail is not None and fail[3] and answer is None:
            answer = self._answer(request, name, params)
        if fail is not None:
            status, payload = fail[1], {"ok": False, "error": fail[2]}
        elif answer is not None:
            status, payload = answer
        else:
            status, payload = self._answer(request, name, params)
        call.status = status
        return web.json_response(payload, status=status)

    def _answer(
        self, request: web.Request, name: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        given = given or str(params.get("access_token", ""))
        if not given:
            return 401, {"ok": False, "error": "ACCESS_TOKEN_REQUIRED"}
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return 401, {"ok": False, "error": "ACCESS_TOKEN_INVALID"}
        handlers = {
            "checkSendAbility": self._check_send_ability,
            "sendVerificationMessage": self._send,
            "checkVerificationStatus": self._check_status,
            "revokeVerificationMessage": self._revoke,
        }
        handler = handlers.get(name)
        if handler is None:
            return 404, {"ok": False, "error": "METHOD_NOT_FOUND"}
        try:
            return 200, {"ok": True, "result": handler(params)}
        except _Refused as refused:
            return 400, {"ok": False, "error": refused.error}

    def _phone(self, params: dict[str, Any]) -> str:
        number = params.get("phone_number")
        if not isinstance(number, str) or not number.startswith("+") or not number[1:].isdigit():
            raise _Refused("PHONE_NUMBER_INVALID")
        if number.startswith(self.cannot_deliver) and self.cannot_deliver:
            raise _Refused("PHONE_NUMBER_NOT_AVAILABLE")
        return number

    def _check_send_ability(self, params: dict[str, Any]) -> dict[str, Any]:
        number = self._phone(params)
        entry = GatewayRequest(secrets.token_hex(8), number, self._now())
        self._requests[entry.request_id] = entry
        return self._status(entry)

    def _send(self, params: dict[str, Any]) -> dict[str, Any]:
        number = self._phone(params)
        length = params.get("code_length", 6)
        if not isinstance(length, int) or not 4 <= length <= 8:
            raise _Refused("CODE_LENGTH_INVALID")
        ttl = params.get("ttl", 3600)
        if not isinstance(ttl, int) or not 30 <= ttl <= 3600:
            raise _Refused("TTL_INVALID")
        callback = params.get("callback_url")
        if callback is not None and not isinstance(callback, str):
            raise _Refused("CALLBACK_URL_INVALID")
        previous = params.get("request_id")
        entry: GatewayRequest | None = None
        if previous is not None:
            entry = self._requests.get(str(previous))
            if entry is None or entry.phone_number != number or entry.code is not None:
                raise _Refused("REQUEST_ID_INVALID")
        if entry is None:
            entry = GatewayRequest(secrets.token_hex(8), number, self._now())
            self._requests[entry.request_id] = entry
        entry.code = "".join(secrets.choice("0123456789") for _ in range(length))
        entry.sent_at, entry.ttl, entry.delivery = self._now(), ttl, "sent"
        entry.callback_url, entry.params = callback, dict(params)
        message = GatewayMessage(
            entry.request_id, number, entry.code, f"Your verification code is {entry.code}"
        )
        self.messages.append(message)
        self._run_hook(self.on_message, message)
        if callback and self.report_delivery:
            entry.delivery = "delivered"
            self._run_hook(self.send_report, entry.request_id)
        return self._status(entry)

    def _live(self, params: dict[str, Any]) -> GatewayRequest:
        entry = self._requests.get(str(params.get("request_id", "")))
        if entry is None or entry.code is None:
            raise _Refused("REQUEST_ID_INVALID")
        live = entry.delivery not in ("expired", "revoked") and entry.sent_at is not None
        if live and entry.sent_at is not None and self._now() - entry.sent_at >= entry.ttl:
            entry.delivery = "expired" if entry.delivery == "sent" else entry.delivery
            entry.verdict = entry.verdict or "expired"
        return entry

    def _check_status(self, params: dict[str, Any]) -> dict[str, Any]:
        entry = self._live(params)
        code = params.get("code")
        if isinstance(code, str) and entry.verdict not in (
            "code_valid",
            "code_max_attempts_exceeded",
            "expired",
        ):
            if entry.delivery == "revoked":
                entry.verdict = "expired"
            elif hmac.compare_digest(code.encode(), (entry.code or "").encode()):
                entry.verdict = "code_valid"
            else:
                entry.wrong += 1
                exhausted = entry.wrong >= self.max_attempts
                entry.verdict = "code_max_attempts_exceeded" if exhausted else "code_invalid"
        return self._status(entry)

    def _revoke(self, params: dict[str, Any]) -> bool:
        entry = self._live(params)
        if entry.delivery == "sent":
            entry.delivery = "revoked"
        entry.verdict = entry.verdict if entry.verdict == "code_valid" else "expired"
        return True

    def _status(self, entry: GatewayRequest) -> dict[str, Any]:
        status: dict[str, Any] = {
            "request_id": entry.request_id,
            "phone_number": entry.phone_number,
            "request_cost": entry.cost,
        }
        now = int(self._now())
        if entry.delivery is not None:
            status["delivery_status"] = {"status": entry.delivery, "updated_at": now}
        if entry.verdict is not None:
            status["verification_status"] = {"status": entry.verdict, "updated_at": now}
        return status

    # -- delivery reports --------------------------------------------------------------------

    def sign(self, timestamp: str, body: bytes) -> str:
        """The signature Telegram's reports carry, made with this fake's token."""
        key = hashlib.sha256(self.token.encode()).digest()
        return hmac.new(key, b"%s\n%s" % (timestamp.encode(), body), hashlib.sha256).hexdigest()

    async def send_report(
        self, request_id: str, *, timestamp: float | None = None, signature: str | None = None
    ) -> int | None:
        """POST the request's status to its callback_url, signed (or with `signature`, to
        forge one; `timestamp` to make it stale); the HTTP status answered, None if the bot
        could not be reached."""
        entry = self._requests[request_id]
        if not entry.callback_url:
            raise LookupError("the message was sent without a callback_url")
        body = json.dumps(self._status(entry)).encode()
        stamp = str(int(timestamp if timestamp is not None else self._now()))
        headers = {
            "Content-Type": "application/json",
            "X-Request-Timestamp": stamp,
            "X-Request-Signature": signature or self.sign(stamp, body),
        }
        status: int | None = None
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
                http.post(entry.callback_url, data=body, headers=headers) as response,
            ):
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            status = None
        self.reports.append((entry.callback_url, json.loads(body), status))
        self._notify()
        return status


class _Refused(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error
