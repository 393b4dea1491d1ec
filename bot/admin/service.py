"""What admins can ask and do, for Telegram and the command line alike: find a user, see
their history, revoke a login, and read the numbers that show whether the bot is abused.
Every lookup is itself recorded in the audit trail."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import ReportSettings
from bot.db import oidc_repo, repo
from bot.db.models import AuthEvent, VerifiedUser
from bot.login import phone
from bot.login.audit import START_BY, Audit, Event
from bot.login.steps import NoticeKind

# A region whose codes are mostly never used is the mark of SMS pumping: flag a conversion
# rate below this once a region has enough starts to judge.
PUMPING_CONVERSION = 0.3
PUMPING_MIN_STARTS = 10
HISTORY = 20
NUMBER_KEY_LENGTH = 12  # hex digits of the number's keyed hash a confirmation carries
# How long a /revoke confirmation can be acted on: time enough to read it, not so long that a
# forgotten message ends a login much later.
REVOKE_CONFIRM_SECONDS = 10 * 60
# The channels a code is paid for, as `code_sent` details and spend keys name them.
PAID_CHANNELS = ("sms", "voice", "telegram")

# A key of the statistics: a calling code or a place.
K = TypeVar("K", int, str)


@dataclass(frozen=True, slots=True)
class Target:
    """Who an admin asked about: a chat id, a number or a @username."""

    kind: str  # "chat", "number", "username"
    chat_id: int | None = None
    e164: str | None = None
    username: str | None = None


@dataclass(frozen=True, slots=True)
class UserReport:
    """A user's current login and their recent history."""

    target: Target
    login: VerifiedUser | None
    chat_id: int | None
    events: Sequence[AuthEvent]
    # For a number: the chats that used it before, newest first.
    chats_of_number: Sequence[int] = ()


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What an admin was asked to confirm: the login shown (the chat, the number as a short
    keyed hash, and when it logged in: logging in again makes another login) and when."""

    chat_id: int
    number_key: str
    verified_at: datetime
    shown_at: datetime


class RevokeOutcome(enum.Enum):
    """What pressing "revoke" did."""

    REVOKED = "revoked"
    CHANGED = "changed"  # the login shown has ended or been replaced: nothing revoked
    EXPIRED = "expired"  # the confirmation is too old: nothing revoked


@dataclass(frozen=True, slots=True)
class Prices:
    """What one code costs by each channel (None: unknown), in `currency`, and the channel a
    request starts by (VERIFY_WORKFLOW's first): a start's `code_sent` event does not name it."""

    sms: Decimal | None = None
    voice: Decimal | None = None
    telegram: Decimal | None = None
    currency: str = "USD"
    first_channel: str = "sms"

    @property
    def known(self) -> bool:
        """Whether any price is set (else no spend is reported at all)."""
        return any(price is not None for price in (self.sms, self.voice, self.telegram))

    def of(self, channel: str) -> Decimal | None:
        """The price of one code sent by `channel`."""
        return {"sms": self.sms, "voice": self.voice, "telegram": self.telegram}.get(channel)


def prices_of(settings: ReportSettings) -> Prices:
    """The prices the settings give (PRICE_PER_*, PRICE_CURRENCY, VERIFY_WORKFLOW)."""
    return Prices(
        sms=settings.price_per_sms,
        voice=settings.price_per_voice_call,
        telegram=settings.price_per_gateway_code,
        currency=settings.price_currency,
        first_channel=settings.verify_workflow[0],
    )


@dataclass(slots=True)
class Counts:
    """Starts and verifications, and the rate between them; and the paid sends by channel
    (`sms`, `voice`, `telegram`) that make the spend."""

    starts: int = 0
    verified: int = 0
    sends: dict[str, int] = field(default_factory=dict)

    @property
    def conversion(self) -> float | None:
        """Verified per start, or None before any start."""
        return self.verified / self.starts if self.starts else None


@dataclass(slots=True)
class Stats:
    """The figures of `/stats` and `python -m bot stats`."""

    days: int
    since: datetime
    total: Counts = field(default_factory=Counts)
    per_day: dict[str, Counts] = field(default_factory=dict)
    per_country: dict[int, Counts] = field(default_factory=dict)
    # Keyed by `place`: a region such as `JM`, else a calling code such as `+882`.
    per_region: dict[str, Counts] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    prices: Prices = field(default_factory=Prices)

    def spend(self, counts: Counts) -> Decimal | None:
        """The estimated cost of `counts`' sends; None while a channel they used has no price."""
        total = Decimal(0)
        for channel, sent in counts.sends.items():
            price = self.prices.of(channel)
            if price is None:
                return None
            total += price * sent
        return total

    def spend_per_verified(self, counts: Counts) -> Decimal | None:
        """The estimated cost of one verified login: all the sends over the logins they made
        (codes that never led to a login are part of what a login costs)."""
        spend = self.spend(counts)
        if spend is None or not counts.verified:
            return None
        return spend / counts.verified

    # Logins approved for websites, by client: {client_id: (name, count)}.
    web_logins: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def suspicious_countries(self) -> list[int]:
        """Calling codes whose conversion is low enough to suggest SMS pumping."""
        return _suspicious(self.per_country)

    @property
    def suspicious_regions(self) -> list[str]:
        """Places of `per_region` whose conversion is low enough to suggest SMS pumping."""
        return _suspicious(self.per_region)


def _suspicious(per: dict[K, Counts]) -> list[K]:
    """The keys whose conversion is low enough to suggest SMS pumping, sorted."""
    return sorted(
        key
        for key, counts in per.items()
        if counts.starts >= PUMPING_MIN_STARTS and (counts.conversion or 0.0) < PUMPING_CONVERSION
    )


def sent_by(event: str, detail: str | None, first_channel: str) -> str | None:
    """The paid channel an audit event stands for, if it is a send: a start (`code_sent`
    without a detail) goes by the workflow's first channel, one past the Gateway ("start
    sms") by the channel it names, "Call me instead" (`voice`) is a call, a fallback from the
    Gateway (`sms`) an SMS; a reused request costs nothing more."""
    if event != Event.CODE_SENT:
        return None
    if detail is None:
        return first_channel
    channel = detail.removeprefix(START_BY)
    return channel if channel in PAID_CHANNELS else None


def is_start(event: str, detail: str | None) -> bool:
    """Whether an audit event is a counted start (its first code sent)."""
    return event == Event.CODE_SENT and (detail is None or detail.startswith(START_BY))


def place(region: str | None, country_code: int | None) -> str:
    """Where statistics count an event: its number's region (`JM`), else its calling code
    (`+882`): for non-geographic numbers, and for events recorded before regions were, whose
    masked number cannot tell +1 876 from +1 201; `unknown` without either."""
    if region and region.isalpha():
        return region
    return f"+{country_code}" if country_code else "unknown"


def _by_starts(per: dict[K, Counts]) -> dict[K, Counts]:
    """The same counts, most starts first (ties in key order, so the order is stable)."""
    return dict(sorted(per.items(), key=lambda item: (-item[1].starts, item[0])))


def parse_target(text: str) -> Target | None:
    """`@username`; a number written with `+` or `00` (any common form); or a chat id
    (plain digits, negative for groups). None if it is none of these."""
    query = text.strip()
    if query.startswith("@") and len(query) > 1:
        return Target("username", username=query[1:])
    if query.startswith(("+", "00")):
        number = phone.parse(query)
        return Target("number", e164=number.e164) if number is not None else None
    if query.removeprefix("-").isdigit() and len(query) <= 20:
        chat_id = int(query)
        # Telegram chat ids are signed 64-bit integers.
        return Target("chat", chat_id=chat_id) if -(2**63) <= chat_id < 2**63 else None
    return None


class AdminService:
    """Admin lookups, revocations and statistics."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        readers: async_sessionmaker[AsyncSession] | None = None,
        audit: Audit,
        clock: Callable[[], datetime],
        prices: Prices | None = None,
    ) -> None:
        self._sessions = sessions
        self._prices = prices or Prices()
        # Sessions that only read (no write lock on SQLite); the writers' if none are given.
        self._readers = readers or sessions
        self._audit = audit
        self._now = clock

    async def users_page(
        self, page: int, *, size: int, by: str
    ) -> tuple[Sequence[VerifiedUser], int, int, int]:
        """One page of logins, newest first: (rows, page, pages, total)."""
        async with self._sessions.begin() as session:
            total = await repo.count_logins(session)
            pages = max(1, -(-total // size))
            page = min(max(page, 1), pages)
            rows = await repo.page_logins(session, offset=(page - 1) * size, limit=size)
            await self._audit.record(
                session, Event.ADMIN_LOOKUP, chat_id=0, detail=f"by {by}: users page {page}"
            )
        return rows, page, pages, total

    async def lookup(self, target: Target, *, by: str) -> UserReport:
        """The target's login and last events; recorded as an admin lookup."""
        async with self._sessions.begin() as session:
            login = await self._find_login(session, target)
            chat_id = login.chat_id if login is not None else target.chat_id
            chats: Sequence[int] = ()
            if target.e164 is not None:
                hashed = self._audit.hash(target.e164)
                chats = await repo.chats_of_number(session, number_hash=hashed)
                if chat_id is None and chats:
                    chat_id = chats[0]
            events: Sequence[AuthEvent] = ()
            if chat_id is not None:
                events = await repo.recent_events(session, limit=HISTORY, chat_id=chat_id)
            await self._audit.record(
                session,
                Event.ADMIN_LOOKUP,
                chat_id=chat_id or 0,
                e164=target.e164,
                detail=f"by {by}: {target.kind}",
            )
        return UserReport(target, login, chat_id, events, chats)

    async def export_logins(self, *, by: str) -> AsyncIterator[VerifiedUser]:
        """Every current login, newest first, streamed; the export is recorded as a lookup
        before anything is shown."""
        async with self._sessions.begin() as session:
            await self._audit.record(
                session, Event.ADMIN_LOOKUP, chat_id=0, detail=f"by {by}: users list"
            )
        async with self._readers() as session:
            async for login in repo.stream_logins(session):
                yield login

    async def export_events(
        self, *, since: datetime | None, chat_id: int | None, by: str
    ) -> AsyncIterator[AuthEvent]:
        """The audit trail in time order as it stood when asked (so without this lookup,
        which is recorded before anything is shown), streamed."""
        asked = self._now()
        async with self._sessions.begin() as session:
            await self._audit.record(
                session, Event.ADMIN_LOOKUP, chat_id=chat_id or 0, detail=f"by {by}: events"
            )
        async with self._readers() as session:
            async for event in repo.stream_events(
                session, since=since, until=asked, chat_id=chat_id
            ):
                yield event

    async def revoke(self, target: Target, *, by: str) -> VerifiedUser | None:
        """End the target's login; the user is told on their next message."""
        async with self._sessions.begin() as session:
            login = await self._find_login(session, target)
            if login is not None:
                await self._end_login(session, login, by=by)
        return login

    async def offer_revoke(
        self, target: Target, *, by: str
    ) -> tuple[VerifiedUser, Confirmation] | None:
        """The target's current login, to show before revoking it (recorded as a lookup:
        it shows the number, or the chat, the admin may not have known), and what the
        confirmation stands for."""
        async with self._sessions.begin() as session:
            login = await self._find_login(session, target)
            await self._audit.record(
                session,
                Event.ADMIN_LOOKUP,
                chat_id=login.chat_id if login is not None else target.chat_id or 0,
                e164=login.phone_number if login is not None else target.e164,
                detail=f"by {by}: revoke {target.kind}",
            )
        if login is None:
            return None
        return login, Confirmation(
            login.chat_id, self._number_key(login), login.verified_at, shown_at=self._now()
        )

    async def revoke_confirmed(
        self, confirmation: Confirmation, *, by: str
    ) -> tuple[RevokeOutcome, VerifiedUser | None]:
        """End the login an admin confirmed, if it is still the one shown and the
        confirmation is fresh; otherwise change nothing."""
        age = (self._now() - confirmation.shown_at).total_seconds()
        if age > REVOKE_CONFIRM_SECONDS:
            return RevokeOutcome.EXPIRED, None
        async with self._sessions.begin() as session:
            login = await repo.get_login(session, chat_id=confirmation.chat_id)
            if login is None or (self._number_key(login), login.verified_at) != (
                confirmation.number_key,
                confirmation.verified_at,
            ):
                return RevokeOutcome.CHANGED, None
            await self._end_login(session, login, by=by)
        return RevokeOutcome.REVOKED, login

    def _number_key(self, login: VerifiedUser) -> str:
        return self._audit.hash(login.phone_number)[:NUMBER_KEY_LENGTH]

    async def _end_login(self, session: AsyncSession, login: VerifiedUser, *, by: str) -> None:
        await repo.delete_login(session, chat_id=login.chat_id)
        await self._audit.record(
            session,
            Event.REVOKED,
            chat_id=login.chat_id,
            user_id=login.user_id,
            e164=login.phone_number,
            detail=f"by {by}",
        )
        await repo.put_notice(
            session,
            chat_id=login.chat_id,
            kind=NoticeKind.REVOKED,
            phone_number=login.phone_number,
            at=self._now(),
        )

    async def stats(self, days: int) -> Stats:
        """Starts, verifications, failures and limits over the last `days` days (UTC days)."""
        now = self._now()
        since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        stats = Stats(days=days, since=since, prices=self._prices)
        failures: dict[str, int] = defaultdict(int)
        limits: dict[str, int] = defaultdict(int)
        web: dict[str, int] = defaultdict(int)
        async with self._readers() as session:
            rows = await repo.event_counts(session, since=since)
            names = {c.client_id: c.name for c in await oidc_repo.list_clients(session)}
        for day, event, country, region, detail, count in rows:
            bucket: str | None = None
            channel = sent_by(event, detail, self._prices.first_channel)
            if event == Event.WEB_APPROVED:
                web[detail or "-"] += count
                continue
            if is_start(event, detail):
                bucket = "starts"
            elif event == Event.VERIFIED:
                bucket = "verified"
            elif channel is None:
                if event == Event.FAILED:
                    failures[detail or "unknown"] += count
                elif event == Event.LIMITED:
                    limits[detail or "unknown"] += count
                continue
            for counts in (
                stats.total,
                stats.per_day.setdefault(day, Counts()),
                stats.per_country.setdefault(country or 0, Counts()),
                stats.per_region.setdefault(place(region, country), Counts()),
            ):
                if bucket is not None:
                    setattr(counts, bucket, getattr(counts, bucket) + count)
                if channel is not None:
                    counts.sends[channel] = counts.sends.get(channel, 0) + count
        stats.per_day = dict(sorted(stats.per_day.items()))
        stats.per_country = _by_starts(stats.per_country)
        stats.per_region = _by_starts(stats.per_region)
        stats.failures = dict(sorted(failures.items(), key=lambda item: -item[1]))
        stats.limits = dict(sorted(limits.items(), key=lambda item: -item[1]))
        stats.web_logins = {
            client_id: (names.get(client_id, "(removed)"), count)
            for client_id, count in sorted(web.items(), key=lambda item: -item[1])
        }
        return stats

    async def _find_login(self, session: AsyncSession, target: Target) -> VerifiedUser | None:
        if target.kind == "chat" and target.chat_id is not None:
            return await repo.get_login(session, chat_id=target.chat_id)
        if target.kind == "number" and target.e164 is not None:
            return await repo.login_by_number(session, phone_number=target.e164)
        if target.kind == "username" and target.username:
            return await repo.login_by_username(session, username=target.username)
        return None
