"""The admission rule on its own: which start a limit refuses, which limit wins, and until
when, worked out from start times given directly (no bot, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.login import phone
from bot.login.limits import (
    DAY,
    HOUR,
    Limits,
    Refusal,
    Rule,
    StartLedger,
    cooldown_end,
    destination_refusal,
    global_oldest_needed,
    rate_refusal,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CHAT = 1001
NUMBER = "a" * 64
OTHER_NUMBER = "b" * 64


def _limits(
    *,
    cooldown_seconds: int = 60,
    starts_per_hour: int = 2,
    starts_per_day: int = 3,
    global_starts_per_hour: int = 1000,
) -> Limits:
    return Limits(cooldown_seconds, starts_per_hour, starts_per_day, global_starts_per_hour)


def _refusal(
    limits: Limits,
    *,
    chat: tuple[datetime, ...] = (),
    number: tuple[datetime, ...] = (),
    everyone: int | None = None,
    oldest: tuple[datetime, ...] = (),
) -> Refusal | None:
    """The rule for a start now, given the chat's and the number's earlier starts; everyone's
    hourly count is theirs unless given."""
    if everyone is None:
        everyone = sum(1 for at in {*chat, *number} if at > NOW - HOUR)
    return rate_refusal(
        limits,
        chat_starts=chat,
        number_starts=number,
        everyone_hour=everyone,
        everyone_oldest=oldest,
        now=NOW,
    )


def _ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


# ---- cooldown -------------------------------------------------------------------------------


def test_a_first_start_is_admitted() -> None:
    assert _refusal(_limits()) is None


def test_a_start_within_the_cooldown_is_refused_until_it_ends() -> None:
    last = _ago(seconds=59)
    assert _refusal(_limits(), chat=(last,)) == Refusal(Rule.COOLDOWN, last + timedelta(seconds=60))


def test_a_start_exactly_at_the_cooldown_end_is_admitted() -> None:
    assert _refusal(_limits(), chat=(_ago(seconds=60),)) is None


def test_the_cooldown_counts_from_the_newest_start() -> None:
    newest = _ago(seconds=10)
    refusal = _refusal(_limits(starts_per_hour=5), chat=(newest, _ago(minutes=30)))
    assert refusal == Refusal(Rule.COOLDOWN, newest + timedelta(seconds=60))


def test_the_cooldown_holds_for_the_number_whoever_asks() -> None:
    last = _ago(seconds=5)
    assert _refusal(_limits(), number=(last,)) == Refusal(
        Rule.COOLDOWN, last + timedelta(seconds=60)
    )


def test_no_cooldown_admits_a_start_right_after_another() -> None:
    assert _refusal(_limits(cooldown_seconds=0), chat=(NOW,), number=(NOW,)) is None


def test_cooldown_end_is_none_without_a_cooldown_or_an_earlier_code() -> None:
    assert cooldown_end(_limits(cooldown_seconds=0), NOW) is None
    assert cooldown_end(_limits(), None) is None
    assert cooldown_end(_limits(), NOW) == NOW + timedelta(seconds=60)


# ---- hourly and daily windows ---------------------------------------------------------------


def test_a_full_hour_is_refused_until_its_oldest_start_leaves_it() -> None:
    oldest = _ago(minutes=50)
    refusal = _refusal(_limits(cooldown_seconds=0), chat=(oldest, _ago(minutes=10)))
    assert refusal == Refusal(Rule.HOUR, oldest + HOUR)


def test_a_start_exactly_an_hour_ago_has_left_the_hour() -> None:
    assert _refusal(_limits(cooldown_seconds=0), chat=(_ago(hours=1), _ago(minutes=10))) is None


def test_an_hour_over_its_limit_frees_up_when_enough_starts_leave_it() -> None:
    # Three in the hour, two allowed (the limit was lowered): two must leave before one fits.
    starts = (_ago(minutes=50), _ago(minutes=40), _ago(minutes=30))
    refusal = _refusal(_limits(cooldown_seconds=0, starts_per_day=10), number=starts)
    assert refusal == Refusal(Rule.HOUR, starts[1] + HOUR)


def test_a_full_day_is_refused_until_its_oldest_start_leaves_it() -> None:
    starts = (_ago(hours=23), _ago(hours=20), _ago(hours=2))
    refusal = _refusal(_limits(cooldown_seconds=0), chat=starts)
    assert refusal == Refusal(Rule.DAY, starts[0] + DAY)


def test_a_start_exactly_a_day_ago_has_left_the_day() -> None:
    starts = (_ago(days=1), _ago(hours=20), _ago(hours=2))
    assert _refusal(_limits(cooldown_seconds=0), chat=starts) is None


def test_the_chat_and_the_number_are_limited_apart() -> None:
    # Two starts by the chat to other numbers, one to this number by another chat: neither
    # the chat's nor the number's hour is full.
    limits = _limits(cooldown_seconds=0, starts_per_hour=3, starts_per_day=10)
    chat = (_ago(minutes=30), _ago(minutes=20))
    number = (_ago(minutes=25),)
    assert _refusal(limits, chat=chat, number=number) is None
    assert _refusal(limits, chat=(*chat, _ago(minutes=5)), number=number) == Refusal(
        Rule.HOUR, chat[0] + HOUR
    )


# ---- which rule wins ------------------------------------------------------------------------


def test_the_limit_that_frees_up_last_wins() -> None:
    # The chat's cooldown ends in 50 s; the number's hour frees up in 10 minutes.
    number = (_ago(minutes=50), _ago(minutes=40))
    refusal = _refusal(_limits(), chat=(_ago(seconds=10),), number=number)
    assert refusal == Refusal(Rule.HOUR, number[0] + HOUR)


def test_the_day_wins_over_the_hour_when_it_frees_up_later() -> None:
    starts = (_ago(hours=20), _ago(minutes=30), _ago(minutes=20))
    refusal = _refusal(_limits(cooldown_seconds=0), chat=starts)
    assert refusal == Refusal(Rule.DAY, starts[0] + DAY)


def test_the_global_cap_refuses_only_when_no_own_limit_does() -> None:
    limits = _limits(global_starts_per_hour=2)
    oldest = (_ago(minutes=45), _ago(minutes=30))
    assert _refusal(limits, everyone=2, oldest=oldest) == Refusal(Rule.GLOBAL, oldest[0] + HOUR)
    last = _ago(seconds=30)
    assert _refusal(limits, chat=(last,), everyone=2, oldest=oldest) == Refusal(
        Rule.COOLDOWN, last + timedelta(seconds=60)
    )


def test_the_global_cap_admits_below_it() -> None:
    assert (
        _refusal(_limits(global_starts_per_hour=2), everyone=1, oldest=(_ago(minutes=5),)) is None
    )


def test_a_global_hour_over_its_cap_frees_up_when_enough_starts_leave_it() -> None:
    oldest = (_ago(minutes=59), _ago(minutes=58), _ago(minutes=57))
    refusal = _refusal(_limits(global_starts_per_hour=2), everyone=4, oldest=oldest)
    assert refusal == Refusal(Rule.GLOBAL, oldest[2] + HOUR)


def test_the_oldest_global_starts_are_needed_only_when_the_cap_can_be_reached() -> None:
    limits = _limits(global_starts_per_hour=3)
    assert global_oldest_needed(limits, everyone_hour=1, admitting=2) == 0
    assert global_oldest_needed(limits, everyone_hour=1, admitting=3) == 1
    assert global_oldest_needed(limits, everyone_hour=3, admitting=1) == 1
    assert global_oldest_needed(limits, everyone_hour=5, admitting=1) == 3


# ---- a batch of decisions -------------------------------------------------------------------


def test_a_batch_counts_the_starts_it_admits_before_the_next_decision() -> None:
    limits = _limits()
    ledger = StartLedger([], everyone_hour=0)
    assert ledger.refusal(limits, chat_id=CHAT, number_hash=NUMBER, now=NOW) is None
    ledger.count(chat_id=CHAT, number_hash=NUMBER, at=NOW)
    # Another chat, the same number: the number's cooldown, counted from the start just made.
    assert ledger.refusal(limits, chat_id=CHAT + 1, number_hash=NUMBER, now=NOW) == Refusal(
        Rule.COOLDOWN, NOW + timedelta(seconds=60)
    )
    assert ledger.refusal(limits, chat_id=CHAT + 1, number_hash=OTHER_NUMBER, now=NOW) is None


def test_a_batch_reaching_the_global_cap_says_when_it_frees_up() -> None:
    limits = _limits(global_starts_per_hour=2)
    earlier = _ago(minutes=40)
    needed = global_oldest_needed(limits, everyone_hour=1, admitting=2)
    ledger = StartLedger(
        [(CHAT + 9, OTHER_NUMBER, earlier)], everyone_hour=1, everyone_oldest=[earlier][:needed]
    )
    ledger.count(chat_id=CHAT, number_hash=NUMBER, at=NOW)
    assert ledger.refusal(limits, chat_id=CHAT + 1, number_hash="c" * 64, now=NOW) == Refusal(
        Rule.GLOBAL, earlier + HOUR
    )


def test_a_batch_filling_an_empty_global_hour_frees_up_an_hour_after_its_first_start() -> None:
    limits = _limits(global_starts_per_hour=2)
    ledger = StartLedger([], everyone_hour=0)
    for n in range(2):
        ledger.count(chat_id=CHAT + n, number_hash=str(n) * 64, at=NOW + timedelta(seconds=n))
    assert ledger.refusal(limits, chat_id=CHAT + 5, number_hash="c" * 64, now=NOW) == Refusal(
        Rule.GLOBAL, NOW + HOUR
    )


# ---- destinations ---------------------------------------------------------------------------


def _number(text: str) -> phone.PhoneNumber:
    parsed = phone.parse(text)
    assert parsed is not None
    return parsed


def test_destinations_outside_the_allowed_countries_or_denied_are_refused() -> None:
    uk, us = _number("+44 7400 123123"), _number("+1 201 555 0123")
    allowed = Limits(1, 1, 1, 1, allowed_country_codes=frozenset({44}))
    assert destination_refusal(allowed, uk) is None
    assert destination_refusal(allowed, us) == Refusal(Rule.COUNTRY)
    denied = Limits(1, 1, 1, 1, denied_country_codes=frozenset({1}))
    assert destination_refusal(denied, us) == Refusal(Rule.COUNTRY)
    prefixed = Limits(1, 1, 1, 1, denied_number_prefixes=("+447400",))
    assert destination_refusal(prefixed, uk) == Refusal(Rule.PREFIX)
    assert destination_refusal(prefixed, us) is None


def test_regions_split_a_calling_code_between_its_countries() -> None:
    us, jamaica = _number("+1 201 555 0123"), _number("+1 876 210 1234")
    uk, jersey = _number("+44 7400 123123"), _number("+44 7797 900123")
    north_america = Limits(1, 1, 1, 1, allowed_regions=frozenset({"US", "CA"}))
    assert destination_refusal(north_america, us) is None
    assert destination_refusal(north_america, jamaica) == Refusal(Rule.COUNTRY)
    assert destination_refusal(north_america, uk) == Refusal(Rule.COUNTRY)
    britain = Limits(1, 1, 1, 1, allowed_regions=frozenset({"GB"}))
    assert destination_refusal(britain, uk) is None
    assert destination_refusal(britain, jersey) == Refusal(Rule.COUNTRY)
    no_jamaica = Limits(1, 1, 1, 1, denied_regions=frozenset({"JM"}))
    assert destination_refusal(no_jamaica, jamaica) == Refusal(Rule.COUNTRY)
    assert destination_refusal(no_jamaica, us) is None


def test_a_number_must_pass_every_allow_list_set_and_no_deny_list() -> None:
    us, jamaica, uk = (
        _number("+1 201 555 0123"),
        _number("+1 876 210 1234"),
        _number("+44 7400 123123"),
    )
    # Calling code 1 or 44, and then only these regions of them: the UK and the US.
    both = Limits(
        1,
        1,
        1,
        1,
        allowed_country_codes=frozenset({1, 44}),
        allowed_regions=frozenset({"GB", "US"}),
    )
    assert [destination_refusal(both, n) for n in (us, uk)] == [None, None]
    assert destination_refusal(both, jamaica) == Refusal(Rule.COUNTRY)
    # All of +1 but Jamaica; a deny-list wins over an allow-list.
    allowed_but_denied = Limits(
        1, 1, 1, 1, allowed_country_codes=frozenset({1}), denied_regions=frozenset({"JM"})
    )
    assert destination_refusal(allowed_but_denied, us) is None
    assert destination_refusal(allowed_but_denied, jamaica) == Refusal(Rule.COUNTRY)
    region_but_prefix_denied = Limits(
        1, 1, 1, 1, allowed_regions=frozenset({"US"}), denied_number_prefixes=("+1201",)
    )
    assert destination_refusal(region_but_prefix_denied, us) == Refusal(Rule.PREFIX)
