"""Plain-text renderings of admin answers, shared by the Telegram commands and the command
line (numbers in full: only admins see these)."""

from __future__ import annotations

from bot import texts
from bot.admin.service import Stats, UserReport
from bot.db.models import AuthEvent
from bot.login import phone


def display_name(full_name: str | None, username: str | None) -> str:
    """`Ada Lovelace (@ada)`, or whichever part is known."""
    name = full_name or ""
    if username:
        name = f"{name} (@{username})".strip()
    return name or "?"


def event_line(event: AuthEvent) -> str:
    """One audit event on one line."""
    parts = [event.at.strftime("%Y-%m-%d %H:%M:%S"), event.event]
    if event.number_masked:
        parts.append(event.number_masked)
    if event.detail:
        parts.append(f"({event.detail})")
    return " ".join(parts)


def user_report(report: UserReport) -> str:
    """The answer to `/user` and `users show`."""
    login = report.login
    if login is None and not report.events and not report.chats_of_number:
        query = report.target.e164 or report.target.username or report.target.chat_id
        return texts.USER_NOT_FOUND.format(query=query)
    lines: list[str] = []
    if login is not None:
        lines.append(
            texts.USER_REPORT_LOGIN.format(
                number=phone.pretty(login.phone_number),
                chat_id=login.chat_id,
                user_id=login.user_id,
                name=display_name(login.full_name, login.username),
                when=login.verified_at.strftime("%Y-%m-%d %H:%M UTC"),
            )
        )
    else:
        lines.append(texts.USER_REPORT_NO_LOGIN)
    if report.chats_of_number:
        lines.append(
            texts.USER_REPORT_CHATS.format(chats=", ".join(map(str, report.chats_of_number)))
        )
    if report.chat_id is not None:
        lines.append(texts.USER_REPORT_EVENTS.format(chat_id=report.chat_id))
        lines += [f"  {event_line(e)}" for e in report.events] or [texts.USER_REPORT_NO_EVENTS]
    return "\n".join(lines)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def stats_text(stats: Stats) -> str:
    """The answer to `/stats` and `python -m bot stats`."""
    total = stats.total
    lines = [
        f"Last {stats.days} day(s) since {stats.since:%Y-%m-%d} UTC: {total.starts} started, "
        f"{total.verified} verified, conversion {_rate(total.conversion)}",
        "",
        "Per day:",
    ]
    lines += [
        f"  {day}: {c.starts} started, {c.verified} verified, {_rate(c.conversion)}"
        for day, c in stats.per_day.items()
    ] or ["  (nothing)"]
    lines.append("Per region:")
    suspicious = set(stats.suspicious_regions)
    lines += [
        f"  {_place_label(key)}: {c.starts} started, {c.verified} verified, {_rate(c.conversion)}"
        + ("  <- LOW CONVERSION: possible SMS pumping" if key in suspicious else "")
        for key, c in stats.per_region.items()
    ] or ["  (nothing)"]
    lines.append("Failures: " + (_counts(stats.failures) or "none"))
    lines.append("Limits tripped: " + (_counts(stats.limits) or "none"))
    return "\n".join(lines)


def _place_label(key: str) -> str:
    """`JM (+1)` for a region; a calling code (`+882`) or `unknown` as it is."""
    return f"{key} (+{phone.region_calling_code(key)})" if phone.is_region(key) else key


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())
