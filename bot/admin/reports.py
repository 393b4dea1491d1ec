"""Plain-text renderings of admin answers, shared by the Telegram commands and the command
line (numbers in full: only admins see these), and the two rules that make what users wrote
safe to show: on a terminal, and in a spreadsheet."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

from bot import texts
from bot.admin.service import Counts, Stats, UserReport
from bot.db.models import AuthEvent
from bot.i18n import ENGLISH, Texts
from bot.login import phone

# Control characters (ANSI escape sequences, C1 controls such as CSI, newlines) can repaint
# an operator's terminal or forge table rows; format characters (bidi overrides and isolates,
# zero-width spaces) reorder or hide what is shown. Zero-width (non-)joiners are format
# characters too, but part of how several scripts and emoji are written, and move nothing.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})
# OWASP's CSV injection rule (with the NUL of ASVS 1.2.10): a cell starting with one of these
# is a formula to a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")
# A plus and digits only (every phone_number we store) is a number to a spreadsheet, not a
# formula: it can call nothing, so it is exported as it is.
_PLAIN_NUMBER = re.compile(r"\+[0-9]{1,15}")
# Spend is shown to a hundredth of a cent: an SMS can cost less than a cent.
_SPEND_STEP = Decimal("0.0001")


def terminal_safe(text: str) -> str:
    """`text` with every control and format character written as a visible escape (`\\x1b`,
    `\\u202e`), so that what users wrote cannot act on the screen that shows it."""
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) in _UNSAFE_CATEGORIES and char not in _JOINERS
        else char
        for char in text
    )


def spreadsheet_safe(cell: object) -> object:
    """A CSV cell as a spreadsheet will show it rather than run it: text starting like a
    formula gets a leading `'` (OWASP); other values are unchanged."""
    if (
        isinstance(cell, str)
        and cell.startswith(_FORMULA_START)
        and not _PLAIN_NUMBER.fullmatch(cell)
    ):
        return "'" + cell
    return cell


def display_name(full_name: str | None, username: str | None) -> str:
    """`Ada Lovelace (@ada)`, or whichever part is known; safe to show on a terminal."""
    name = full_name or ""
    if username:
        name = f"{name} (@{username})".strip()
    return terminal_safe(name) or "?"


def event_line(event: AuthEvent) -> str:
    """One audit event on one line."""
    parts = [event.at.strftime("%Y-%m-%d %H:%M:%S"), event.event]
    if event.number_masked:
        parts.append(event.number_masked)
    if event.detail:
        parts.append(f"({terminal_safe(event.detail)})")
    return " ".join(parts)


def user_report(report: UserReport, t: Texts = ENGLISH) -> str:
    """The answer to `/user` (in the admin's language) and `users show` (English). Times
    stay in ISO form, as an operator sorts and compares them."""
    login = report.login
    if login is None and not report.events and not report.chats_of_number:
        query = report.target.e164 or report.target.username or report.target.chat_id
        return t(texts.USER_NOT_FOUND, query=terminal_safe(str(query)))
    lines: list[str] = []
    if login is not None:
        lines.append(
            t(
                texts.USER_REPORT_LOGIN,
                number=phone.pretty(login.phone_number),
                chat_id=login.chat_id,
                user_id=login.user_id,
                name=display_name(login.full_name, login.username),
                when=login.verified_at.strftime("%Y-%m-%d %H:%M UTC"),
                method=login.channel or "unknown",
            )
        )
    else:
        lines.append(t(texts.USER_REPORT_NO_LOGIN))
    if report.chats_of_number:
        lines.append(t(texts.USER_REPORT_CHATS, chats=", ".join(map(str, report.chats_of_number))))
    if report.chat_id is not None:
        lines.append(t(texts.USER_REPORT_EVENTS, chat_id=report.chat_id))
        lines += [f"  {event_line(e)}" for e in report.events] or [t(texts.USER_REPORT_NO_EVENTS)]
    return "\n".join(lines)


def rate(value: float | None) -> str:
    """A conversion rate as people read it: `60%`, or `-` before any start."""
    return "-" if value is None else f"{value:.0%}"


def stats_text(stats: Stats, t: Texts = ENGLISH) -> str:
    """The answer to `/stats` (in the admin's language) and `python -m bot stats` (English)."""
    total = stats.total
    nothing = [f"  {t(texts.STATS_NOTHING)}"]
    lines = [
        t(
            texts.STATS_HEADER,
            days=stats.days,
            since=f"{stats.since:%Y-%m-%d}",
            starts=total.starts,
            verified=total.verified,
            conversion=rate(total.conversion),
        ),
        "",
        t(texts.STATS_PER_DAY),
    ]
    lines += [f"  {_row(stats, day, c, t)}" for day, c in stats.per_day.items()] or nothing
    lines.append(t(texts.STATS_PER_REGION))
    suspicious = set(stats.suspicious_regions)
    lines += [
        f"  {_row(stats, place_label(key), c, t)}"
        + (f"  {t(texts.STATS_SUSPICIOUS)}" if key in suspicious else "")
        for key, c in stats.per_region.items()
    ] or nothing
    none = t(texts.STATS_NONE)
    lines.append(t(texts.STATS_FAILURES, counts=_counts(stats.failures) or none))
    lines.append(t(texts.STATS_LIMITS, counts=_counts(stats.limits) or none))
    lines.append(spend_line(stats, t))
    clients = ", ".join(f"{name} ({cid}) {n}" for cid, (name, n) in stats.web_logins.items())
    lines.append(t(texts.STATS_WEB_LOGINS, clients=clients or none))
    return "\n".join(lines)


def amount(value: Decimal | None) -> str | None:
    """A price or spend as exact decimal text (`0.0125`), None when unknown."""
    return None if value is None else str(value.quantize(_SPEND_STEP))


def _row(stats: Stats, label: str, counts: Counts, t: Texts) -> str:
    """A day's or a region's figures, with its spend once any price is set."""
    figures = {
        "label": label,
        "starts": counts.starts,
        "verified": counts.verified,
        "conversion": rate(counts.conversion),
    }
    if not stats.prices.known:
        return t(texts.STATS_ROW, **figures)
    currency, spend = stats.prices.currency, amount(stats.spend(counts))
    if spend is None:
        return t(texts.STATS_ROW_SPEND_UNKNOWN, currency=currency, **figures)
    return t(texts.STATS_ROW_SPEND, currency=currency, spend=spend, **figures)


# The settings that price a send, named as an operator sets them (never translated).
_PRICE_SETTINGS = "PRICE_PER_SMS, PRICE_PER_VOICE_CALL, PRICE_PER_GATEWAY_CODE"


def spend_line(stats: Stats, t: Texts = ENGLISH) -> str:
    """The estimated spend of the period, per verified login, and the sends it comes from."""
    prices, total = stats.prices, stats.total
    sends = ", ".join(f"{channel} {n}" for channel, n in sorted(total.sends.items()))
    sends = sends or t(texts.STATS_NONE)
    if not prices.known:
        return t(texts.STATS_SPEND_UNPRICED, sends=sends, settings=_PRICE_SETTINGS)
    spend = amount(stats.spend(total))
    if spend is None:
        missing = ", ".join(c for c in sorted(total.sends) if prices.of(c) is None)
        return t(texts.STATS_SPEND_NO_PRICE, sends=sends, channels=missing)
    per_login = amount(stats.spend_per_verified(total)) or "-"
    return t(
        texts.STATS_SPEND,
        sends=sends,
        currency=prices.currency,
        spend=spend,
        per_login=per_login,
    )


def place_label(key: str) -> str:
    """How a place of `Stats.per_region` is shown: `JM (+1)` for a region; a calling code
    (`+882`) or `unknown` as it is."""
    return f"{key} (+{phone.region_calling_code(key)})" if phone.is_region(key) else key


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())
