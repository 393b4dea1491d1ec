"""Rules that decide whether a verification may start: where numbers may go, and how often
a chat, a number and the whole bot may ask for a code. Counted in the database, so they hold
across restarts and across every process sharing it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repo
from bot.login.phone import PhoneNumber

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits' settings."""

    cooldown_seconds: int
    starts_per_hour: int
    starts_per_day: int
    global_starts_per_hour: int
    allowed_country_codes: frozenset[int] = frozenset()
    denied_country_codes: frozenset[int] = frozenset()
    denied_number_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a start may not happen, and when it may (None: not by waiting)."""

    rule: str  # "country", "prefix", "cooldown", "hour", "day", "global"
    retry_at: datetime | None = None


def destination_refusal(limits: Limits, number: PhoneNumber) -> Refusal | None:
    """Numbers we never send codes to, whoever asks and however rarely."""
    if limits.allowed_country_codes and number.country_code not in limits.allowed_country_codes:
        return Refusal("country")
    if number.country_code in limits.denied_country_codes:
        return Refusal("country")
    if any(number.e164.startswith(prefix) for prefix in limits.denied_number_prefixes):
        return Refusal("prefix")
    return None


async def rate_refusal(
    session: AsyncSession, limits: Limits, *, chat_id: int, number_hash: str, now: datetime
) -> Refusal | None:
    """The limit a new start would break now, with the time it frees up; None if it may go.

    The caller holds the number's lock (`repo.lock_numbers`) for the rest of its transaction,
    so two starts cannot both pass the same last free slot. One query when nothing is over
    a limit; the times a limit frees up are looked up only for a refusal.
    """
    counts = await repo.start_counts(
        session, chat_id=chat_id, number_hash=number_hash, hour_ago=now - HOUR, day_ago=now - DAY
    )
    if admits(limits, counts, now):
        return None
    refusals: list[Refusal] = []
    keys = (
        (chat_id, None, counts.chat_hour, counts.chat_day, counts.chat_newest),
        (None, number_hash, counts.number_hour, counts.number_day, counts.number_newest),
    )
    for by_chat, by_number, in_hour, in_day, newest in keys:
        if newest is not None and limits.cooldown_seconds:
            cooldown_end = newest + timedelta(seconds=limits.cooldown_seconds)
            if cooldown_end > now:
                refusals.append(Refusal("cooldown", cooldown_end))
        for rule, window, count, allowed in (
            ("hour", HOUR, in_hour, limits.starts_per_hour),
            ("day", DAY, in_day, limits.starts_per_day),
        ):
            if count < allowed:
                continue
            window_end = await _window_free_at(
                session,
                now=now,
                window=window,
                allowed=allowed,
                chat_id=by_chat,
                number_hash=by_number,
            )
            if window_end is not None:
                refusals.append(Refusal(rule, window_end))
    if refusals:
        return max(refusals, key=lambda r: r.retry_at or now)
    if counts.everyone_hour < limits.global_starts_per_hour:
        return None
    global_end = await _window_free_at(
        session, now=now, window=HOUR, allowed=limits.global_starts_per_hour
    )
    if global_end is not None:
        return Refusal("global", global_end)
    return None


def admits(limits: Limits, counts: repo.StartCounts, now: datetime) -> bool:
    """Whether a start fits every rate limit, given the recent starts. When it does not,
    `rate_refusal` says which limit it breaks and until when."""
    cooldown = timedelta(seconds=limits.cooldown_seconds)
    for in_hour, in_day, newest in (
        (counts.chat_hour, counts.chat_day, counts.chat_newest),
        (counts.number_hour, counts.number_day, counts.number_newest),
    ):
        if newest is not None and limits.cooldown_seconds and newest + cooldown > now:
            return False
        if in_hour >= limits.starts_per_hour or in_day >= limits.starts_per_day:
            return False
    return counts.everyone_hour < limits.global_starts_per_hour


def counts_among(
    chat_starts: Sequence[datetime],
    number_starts: Sequence[datetime],
    *,
    hour_ago: datetime,
    everyone_hour: int,
) -> repo.StartCounts:
    """`repo.start_counts` worked out from already fetched start times of the last day: the
    chat's and the number's."""
    return repo.StartCounts(
        chat_hour=sum(1 for at in chat_starts if at > hour_ago),
        chat_day=len(chat_starts),
        chat_newest=max(chat_starts, default=None),
        number_hour=sum(1 for at in number_starts if at > hour_ago),
        number_day=len(number_starts),
        number_newest=max(number_starts, default=None),
        everyone_hour=everyone_hour,
    )


async def _window_free_at(
    session: AsyncSession,
    *,
    now: datetime,
    window: timedelta,
    allowed: int,
    chat_id: int | None = None,
    number_hash: str | None = None,
) -> datetime | None:
    """When the next start fits in a sliding window, or None if one fits now."""
    count = await repo.count_starts(
        session, since=now - window, chat_id=chat_id, number_hash=number_hash
    )
    if count < allowed:
        return None
    oldest = await repo.oldest_starts(
        session,
        since=now - window,
        limit=count - allowed + 1,
        chat_id=chat_id,
        number_hash=number_hash,
    )
    return oldest[-1] + window
