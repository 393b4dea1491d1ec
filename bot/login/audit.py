"""The audit trail's vocabulary and the one way events are written: inside the caller's
transaction, with the number only masked and hashed."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repo
from bot.login import phone


class Event(enum.StrEnum):
    """The events of `auth_events.event` (public interface: operators query them)."""

    LOGIN_STARTED = "login_started"
    CODE_SENT = "code_sent"
    CODE_WRONG = "code_wrong"
    VERIFIED = "verified"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    LIMITED = "limited"
    LOGGED_OUT = "logged_out"
    REVOKED = "revoked"
    NUMBER_MOVED = "number_moved"
    FORGOTTEN = "forgotten"
    ADMIN_LOOKUP = "admin_lookup"
    # What Telegram reported of a Gateway message (the detail: sent, delivered, read...).
    DELIVERY_REPORT = "delivery_report"
    # Logging in to websites (OpenID Connect); the detail starts with the client id.
    WEB_REQUEST_OPENED = "web_request_opened"
    WEB_APPROVED = "web_approved"
    WEB_REFUSED = "web_refused"
    WEB_CODE_EXCHANGED = "web_code_exchanged"


# The `code_sent` detail of a start whose code went by a later channel of VERIFY_WORKFLOW
# than its first (the Gateway could not deliver): "start sms". A start by the first channel
# has no detail; a later send in the same login has the channel's name ("sms", "voice").
START_BY = "start "

# A refused start is recorded once per chat, rule and this window: a flood of refused numbers
# (each costs nothing but the row) must not grow the audit trail without limit.
LIMITED_ONCE_PER = timedelta(hours=1)


class Audit:
    """Writes audit events."""

    def __init__(self, *, hash_key: bytes | None, clock: Callable[[], datetime]) -> None:
        # None: events without numbers only (a command-line command run without the key).
        self._hash_key = hash_key
        self._now = clock

    def hash(self, e164: str) -> str:
        """The keyed hash under which a number is recorded."""
        if self._hash_key is None:
            raise RuntimeError("a number hashed by an Audit made without the key")
        return phone.number_hash(e164, key=self._hash_key)

    async def record(
        self,
        session: AsyncSession,
        event: Event,
        *,
        chat_id: int,
        user_id: int | None = None,
        e164: str | None = None,
        request_id: str | None = None,
        detail: str | None = None,
        ip_hash: str | None = None,
    ) -> None:
        """Append one event in the session's transaction."""
        await repo.add_events(
            session,
            rows=[
                self.row(
                    event,
                    chat_id=chat_id,
                    user_id=user_id,
                    e164=e164,
                    request_id=request_id,
                    detail=detail,
                    ip_hash=ip_hash,
                )
            ],
        )

    def row(
        self,
        event: Event,
        *,
        chat_id: int,
        user_id: int | None = None,
        e164: str | None = None,
        number: phone.PhoneNumber | None = None,
        request_id: str | None = None,
        detail: str | None = None,
        ip_hash: str | None = None,
    ) -> dict[str, object]:
        """One event as a row for `repo.add_events` (several are written in one statement).
        The number is `number` when the caller has it parsed, else `e164`, parsed here for
        its calling code and region. `ip_hash` is a web request's address, as the web login
        stores it (keyed hash)."""
        if number is None and e164:
            number = phone.parse(e164)
        if number is not None:
            e164 = number.e164
        return {
            "at": self._now(),
            "event": event.value,
            "chat_id": chat_id,
            "user_id": user_id,
            "number_masked": phone.mask(e164) if e164 else None,
            "number_hash": self.hash(e164) if e164 else None,
            "country_code": number.country_code if number else None,
            "region": number.region if number else None,
            "request_id": request_id,
            "detail": detail[:64] if detail else None,
            "ip_hash": ip_hash,
        }
