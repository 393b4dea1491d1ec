"""Rules that decide whether a verification may start: where numbers may go, and how often
a chat, a number and the whole bot may ask for a code. Pure functions of the starts already
counted (the database holds them, so the limits hold across restarts and across every process
sharing it); the callers fetch those starts and count the admitted ones."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

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
    allowed_regions: frozenset[str] = frozenset()
    denied_regions: frozenset[str] = frozenset()
    denied_number_prefixes: tuple[str, ...] = ()


class Rule(enum.StrEnum):
    """The rule that refused a start (its value is the `limited` audit event's detail)."""

    COUNTRY = "country"  # the destination settings: calling codes and regions
    PREFIX = "prefix"
    COOLDOWN = "cooldown"
    HOUR = "hour"
    DAY = "day"
    GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a start may not happen, and when it may (None: not by waiting)."""

    rule: Rule
    retry_at: datetime | None = None


def destination_refusal(limits: Limits, number: PhoneNumber) -> Refusal | None:
    """Numbers we never send codes to, whoever asks and however rarely: a number must be on
    every allow-list that is set (calling codes, regions) and on no deny-list (calling codes,
    regions, prefixes). Regions matter because a calling code spans several countries: +1 is
    also Jamaica's +1 876, +44 also Jersey's +44 7797."""
    if limits.allowed_country_codes and number.country_code not in limits.allowed_country_codes:
        return Refusal(Rule.COUNTRY)
    if limits.allowed_regions and number.region not in limits.allowed_regions:
        return Refusal(Rule.COUNTRY)
    if number.country_code in limits.denied_country_codes or number.region in limits.denied_regions:
        return Refusal(Rule.COUNTRY)
    if any(number.e164.startswith(prefix) for prefix in limits.denied_number_prefixes):
        return Refusal(Rule.PREFIX)
    return None


def cooldown_end(limits: Limits, last: datetime | None) -> datetime | None:
    """When the cooldown after a code sent at `last` ends (None: no cooldown to wait for)."""
    if last is None or not limits.cooldown_seconds:
        return None
    return last + timedelta(seconds=limits.cooldown_seconds)


def rate_refusal(
    limits: Limits,
    *,
    chat_starts: Iterable[datetime],
    number_starts: Iterable[datetime],
    everyone_hour: int,
    everyone_oldest: Sequence[datetime] = (),
    now: datetime,
) -> Refusal | None:
    """The admission rule: the rate limit a new start would break now, with the time it frees
    up; None if the start may go.

    `chat_starts` and `number_starts` are the times of the chat's and the number's starts of
    (at least) the last day; `everyone_hour` counts everyone's starts of the last hour and
    `everyone_oldest` holds the oldest of them, oldest first: at least as many as
    `global_oldest_needed` asks for. The chat's and the number's cooldown, hourly and daily
    limits come first, the latest time wins; the global cap refuses only when none of them
    does.
    """
    refusals = [
        *_own_refusals(limits, sorted(chat_starts), now),
        *_own_refusals(limits, sorted(number_starts), now),
    ]
    if refusals:
        return max(refusals, key=lambda refusal: refusal.retry_at or now)
    if everyone_hour < limits.global_starts_per_hour:
        return None
    return Refusal(
        Rule.GLOBAL,
        _window_free_at(
            everyone_oldest,
            count=everyone_hour,
            allowed=limits.global_starts_per_hour,
            window=HOUR,
        ),
    )


def global_oldest_needed(limits: Limits, *, everyone_hour: int, admitting: int) -> int:
    """How many of everyone's oldest start times of the last hour `rate_refusal` needs when
    up to `admitting` starts are decided on, one after another, on top of `everyone_hour`
    (0 when the global cap cannot be reached)."""
    if everyone_hour + admitting <= limits.global_starts_per_hour:
        return 0
    return max(everyone_hour - limits.global_starts_per_hour, 0) + 1


def _own_refusals(limits: Limits, starts: Sequence[datetime], now: datetime) -> list[Refusal]:
    """The limits of one chat or one number that a start would break (`starts`: its start
    times, oldest first), in the order cooldown, hour, day."""
    refusals: list[Refusal] = []
    end = cooldown_end(limits, starts[-1] if starts else None)
    if end is not None and end > now:
        refusals.append(Refusal(Rule.COOLDOWN, end))
    for rule, window, allowed in (
        (Rule.HOUR, HOUR, limits.starts_per_hour),
        (Rule.DAY, DAY, limits.starts_per_day),
    ):
        inside = [at for at in starts if at > now - window]
        if len(inside) >= allowed:
            free_at = _window_free_at(inside, count=len(inside), allowed=allowed, window=window)
            refusals.append(Refusal(rule, free_at))
    return refusals


def _window_free_at(
    oldest: Sequence[datetime], *, count: int, allowed: int, window: timedelta
) -> datetime | None:
    """When the next start fits in a full sliding window holding `count` starts (`oldest`:
    the oldest of them, oldest first): once all but `allowed - 1` have left it. None if no
    start is allowed at all."""
    if allowed < 1:
        return None
    return oldest[count - allowed] + window


class StartLedger:
    """The counted starts a batch of decisions looks at, by chat, by number and for everyone,
    kept up to date as the batch admits more, so every decision sees the starts admitted
    before it exactly as if they had been counted one by one."""

    def __init__(
        self,
        starts: Iterable[tuple[int, str, datetime]],
        *,
        everyone_hour: int,
        everyone_oldest: Sequence[datetime] = (),
    ) -> None:
        self._by_chat: dict[int, list[datetime]] = {}
        self._by_number: dict[str, list[datetime]] = {}
        for chat_id, number_hash, at in starts:
            self._by_chat.setdefault(chat_id, []).append(at)
            self._by_number.setdefault(number_hash, []).append(at)
        self._everyone = everyone_hour
        self._oldest = list(everyone_oldest)

    def refusal(
        self, limits: Limits, *, chat_id: int, number_hash: str, now: datetime
    ) -> Refusal | None:
        """`rate_refusal` for a start by this chat to this number."""
        return rate_refusal(
            limits,
            chat_starts=self._by_chat.get(chat_id, ()),
            number_starts=self._by_number.get(number_hash, ()),
            everyone_hour=self._everyone,
            everyone_oldest=self._oldest,
            now=now,
        )

    def count(self, *, chat_id: int, number_hash: str, at: datetime) -> None:
        """Count an admitted start (the newest of all)."""
        self._by_chat.setdefault(chat_id, []).append(at)
        self._by_number.setdefault(number_hash, []).append(at)
        if len(self._oldest) == self._everyone:  # the list holds every start: keep it whole
            self._oldest.append(at)
        self._everyone += 1
