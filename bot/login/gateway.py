"""The Telegram Gateway API: verification codes delivered inside Telegram, to the account
registered with the number, for a fraction of an SMS.

A login by Gateway asks `checkSendAbility` first (a number without a Telegram account, or one
Telegram will not send to, costs nothing and goes straight to SMS), then sends with
`sendVerificationMessage`, reusing the ability check's `request_id` so the check is not paid
for twice, and checks the code the user types with `checkVerificationStatus`. A message no
longer wanted is revoked (`revokeVerificationMessage`). Every failure becomes a `VerifyFailure`
of the kinds Vonage's do, so the login's rules read the same for both providers; the token
travels only in the Authorization header and appears in no log line, nor does any number.

Delivery reports are POSTed by Telegram to the `callback_url` a message was sent with, signed:
`report_is_genuine` checks that.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.login.verification import FailureKind, VerifyFailure, measured
from bot.metrics import Metrics

logger = logging.getLogger(__name__)

# The `provider` label of its calls in the metrics (operations: ability, send, check, revoke).
PROVIDER = "gateway"
# The Gateway keeps a message for 30 s to 1 hour (and refunds one not delivered in that time).
TTL_RANGE = (30, 3600)
# A delivery report older (or newer) than this is refused: a replayed one is stale.
REPORT_MAX_AGE_SECONDS = 300
# Headers of a delivery report.
TIMESTAMP_HEADER = "X-Request-Timestamp"
SIGNATURE_HEADER = "X-Request-Signature"
# A report's timestamp: Unix seconds in ASCII digits. Checked before int(): isdigit() takes
# "²", and thousands of digits make int() or the float arithmetic raise.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")

# The Gateway's error strings (`{"ok": false, "error": ...}`) that are about our account.
_ACCOUNT_ERRORS = {
    "ACCESS_TOKEN_INVALID": FailureKind.BAD_CREDENTIALS,
    "ACCESS_TOKEN_REQUIRED": FailureKind.BAD_CREDENTIALS,
    "BALANCE_NOT_ENOUGH": FailureKind.NO_CREDIT,
}
_ERROR_NAME = re.compile(r"[A-Z0-9_]{1,64}")
# What `checkVerificationStatus` says of the code it was given.
_VERDICTS = {
    "code_invalid": FailureKind.WRONG_CODE,
    "code_max_attempts_exceeded": FailureKind.TOO_MANY_WRONG,
    "expired": FailureKind.NOT_FOUND,
}


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """What a Gateway message asks for."""

    base_url: str  # TELEGRAM_GATEWAY_URL
    token: str  # TELEGRAM_GATEWAY_TOKEN
    code_length: int  # VERIFY_CODE_LENGTH
    ttl_seconds: int  # how long Telegram tries to deliver (VERIFY_CHANNEL_TIMEOUT)
    timeout_seconds: float  # per call
    callback_url: str | None = None  # where delivery reports go, when the bot serves HTTP


class GatewayClient:
    """Calls the Telegram Gateway API from the event loop (aiohttp, one shared session)."""

    def __init__(self, config: GatewayConfig, *, metrics: Metrics | None = None) -> None:
        self._config = config
        self._metrics = metrics or Metrics()
        self._base = config.base_url if config.base_url.endswith("/") else config.base_url + "/"
        low, high = TTL_RANGE
        self._ttl = min(max(config.ttl_seconds, low), high)
        self._session: aiohttp.ClientSession | None = None

    @property
    def callback_url(self) -> str | None:
        """Where Telegram posts delivery reports (None: the bot serves no HTTP)."""
        return self._config.callback_url

    async def close(self) -> None:
        """Close the connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._config.timeout_seconds),
                headers={"Authorization": f"Bearer {self._config.token}"},
            )
        return self._session

    async def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One call, sent once: its `result`, or a VerifyFailure."""
        try:
            async with self._http().post(self._base + method, json=params) as response:
                status = response.status
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
        except (TimeoutError, aiohttp.ClientError, OSError) as lost:
            logger.warning("Gateway %s failed: %s", method, type(lost).__name__)
            raise VerifyFailure(FailureKind.UNAVAILABLE) from None
        if isinstance(body, dict) and body.get("ok") is True and status == 200:
            result = body.get("result")
            return result if isinstance(result, dict) else {"value": result}
        error = body.get("error") if isinstance(body, dict) else None
        # Only the error's name is logged: a free text could hold the number.
        name = error if isinstance(error, str) and _ERROR_NAME.fullmatch(error) else "?"
        if status == 401 or name in _ACCOUNT_ERRORS:
            kind = _ACCOUNT_ERRORS.get(name, FailureKind.BAD_CREDENTIALS)
        elif status == 429 or name.startswith("FLOOD"):
            kind = FailureKind.RATE_LIMITED
        elif status >= 500 or not isinstance(body, dict):
            kind = FailureKind.UNAVAILABLE
        else:
            kind = FailureKind.CANNOT_DELIVER
        log = logger.warning if kind is not FailureKind.CANNOT_DELIVER else logger.info
        log("Gateway %s answered HTTP %s %s (%s)", method, status, name, kind)
        # Without an answer of its own (a 5xx, a body that is not the API's) it may have acted.
        return_status = status if kind is not FailureKind.UNAVAILABLE else None
        raise VerifyFailure(kind, status=return_status)

    async def can_send(self, e164: str) -> str:
        """`checkSendAbility`: the request id to send with, or VerifyFailure (CANNOT_DELIVER:
        Telegram cannot deliver a code to that number)."""
        return await measured(self._metrics, PROVIDER, "ability", self._can_send(e164))

    async def _can_send(self, e164: str) -> str:
        result = await self._call("checkSendAbility", {"phone_number": e164})
        return _request_id(result)

    async def send(self, e164: str, request_id: str) -> str:
        """`sendVerificationMessage` for the ability check `request_id` (so it is paid once);
        returns the message's request id."""
        return await measured(self._metrics, PROVIDER, "send", self._send(e164, request_id))

    async def _send(self, e164: str, request_id: str) -> str:
        params: dict[str, Any] = {
            "phone_number": e164,
            "request_id": request_id,
            "code_length": self._config.code_length,
            "ttl": self._ttl,
        }
        if self._config.callback_url:
            params["callback_url"] = self._config.callback_url
        result = await self._call("sendVerificationMessage", params)
        return _request_id(result)

    async def check(self, request_id: str, code: str) -> None:
        """`checkVerificationStatus` with the user's code: return if it is right; raise
        VerifyFailure (WRONG_CODE, TOO_MANY_WRONG, NOT_FOUND...) otherwise."""
        await measured(self._metrics, PROVIDER, "check", self._check(request_id, code))

    async def _check(self, request_id: str, code: str) -> None:
        try:
            result = await self._call(
                "checkVerificationStatus", {"request_id": request_id, "code": code}
            )
        except VerifyFailure as failure:
            if failure.kind is FailureKind.CANNOT_DELIVER:
                # A request the Gateway no longer knows (REQUEST_ID_INVALID and the like).
                raise VerifyFailure(FailureKind.NOT_FOUND, status=failure.status) from None
            raise
        verdict = result.get("verification_status")
        status = verdict.get("status") if isinstance(verdict, dict) else None
        if status == "code_valid":
            return
        kind = _VERDICTS.get(status) if isinstance(status, str) else None
        if kind is None:
            logger.warning("Gateway check answered no verdict")
            raise VerifyFailure(FailureKind.UNAVAILABLE)
        raise VerifyFailure(kind, status=200)

    async def revoke(self, request_id: str) -> None:
        """`revokeVerificationMessage`: the message is not delivered if it is not yet."""
        await measured(self._metrics, PROVIDER, "revoke", self._revoke(request_id))

    async def _revoke(self, request_id: str) -> None:
        await self._call("revokeVerificationMessage", {"request_id": request_id})


def _request_id(result: dict[str, Any]) -> str:
    request_id = result.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        logger.warning("Gateway answered without a request id")
        raise VerifyFailure(FailureKind.UNAVAILABLE)
    return request_id


def report_signature(token: str, timestamp: str, body: bytes) -> str:
    """The signature Telegram puts on a delivery report: HMAC-SHA-256 over the timestamp, a
    newline and the body, keyed with the SHA-256 of the token, in hex."""
    key = hashlib.sha256(token.encode()).digest()
    return hmac.new(key, timestamp.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def report_is_genuine(
    token: str, *, timestamp: str, signature: str, body: bytes, now: float
) -> bool:
    """Whether a delivery report is Telegram's and fresh: signed with our token, and
    timestamped within REPORT_MAX_AGE_SECONDS of `now` (so a recorded one cannot be replayed
    later)."""
    if not _TIMESTAMP.fullmatch(timestamp) or abs(now - int(timestamp)) > REPORT_MAX_AGE_SECONDS:
        return False
    expected = report_signature(token, timestamp, body)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())
