"""Admin commands: only for the Telegram user ids in BOT_ADMIN_IDS, only in private chats.
The handlers match only admins' updates: to anyone else the commands do not exist, so they get
exactly what an unknown command gets, which reveals nothing."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot import texts
from bot.admin import reports
from bot.admin.service import REVOKE_CONFIRM_SECONDS, Confirmation, RevokeOutcome, parse_target
from bot.login import phone
from bot.telegram.handlers.base import BotContext, edit_quietly, is_private, reply

USERS_CALLBACK = "users:"
REVOKE_CALLBACK = "revoke:"
MAX_STATS_DAYS = 366


def _admin_id(update: Update, context: BotContext) -> int | None:
    user = update.effective_user
    if is_private(update) and user is not None and user.id in context.services.admin_ids:
        return user.id
    return None


async def _refuse(update: Update) -> None:
    # The command handlers' filters keep other people's commands away (bot.telegram.commands);
    # a button press (or an admin removed from BOT_ADMIN_IDS since it was sent) is only
    # acknowledged.
    if update.callback_query is not None:
        await update.callback_query.answer()


AdminCallback = Callable[[Update, BotContext, int], Coroutine[Any, Any, None]]


def admin_only(
    callback: AdminCallback,
) -> Callable[[Update, BotContext], Coroutine[Any, Any, None]]:
    """Run the callback (with the admin's user id) for admins in a private chat; do nothing
    for anyone else."""

    @functools.wraps(callback)
    async def checked(update: Update, context: BotContext) -> None:
        admin = _admin_id(update, context)
        if admin is None:
            await _refuse(update)
            return
        await callback(update, context, admin)

    return checked


@admin_only
async def users(update: Update, context: BotContext, admin: int) -> None:
    """/users [page]: one page of verified users, newest first, with paging buttons."""
    page = 1
    if context.args:
        arg = context.args[0]
        page = int(arg) if arg.isdigit() and len(arg) < 7 else 1
    text, markup = await _users_page(context, page, admin)
    await reply(update, text, reply_markup=markup)


@admin_only
async def users_page_button(update: Update, context: BotContext, admin: int) -> None:
    """A paging button under a /users answer: show that page in the same message."""
    query = update.callback_query
    if query is None:
        return
    raw = (query.data or "").removeprefix(USERS_CALLBACK)
    page = int(raw) if raw.isdigit() and len(raw) < 7 else 1
    text, markup = await _users_page(context, page, admin)
    await query.answer()
    await edit_quietly(update, text, reply_markup=markup)


async def _users_page(
    context: BotContext, page: int, admin: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    services, t = context.services, context.t
    rows, page, pages, total = await services.admin.users_page(
        page, size=services.users_page_size, by=f"admin {admin}"
    )
    if total == 0:
        return t(texts.USERS_EMPTY), None
    lines = [t(texts.USERS_HEADER, total=total, page=page, pages=pages)]
    lines += [
        t(
            texts.USERS_LINE,
            number=phone.pretty(row.phone_number),
            chat_id=row.chat_id,
            name=reports.display_name(row.full_name, row.username),
            when=row.verified_at.strftime("%Y-%m-%d %H:%M UTC"),
        )
        for row in rows
    ]
    buttons = []
    if page > 1:
        buttons.append(
            InlineKeyboardButton(
                t(texts.USERS_PREVIOUS), callback_data=f"{USERS_CALLBACK}{page - 1}"
            )
        )
    if page < pages:
        buttons.append(
            InlineKeyboardButton(t(texts.USERS_NEXT), callback_data=f"{USERS_CALLBACK}{page + 1}")
        )
    return "\n".join(lines), InlineKeyboardMarkup([buttons]) if buttons else None


@admin_only
async def user(update: Update, context: BotContext, admin: int) -> None:
    """/user <number | chat id | @username>: the current login and the last 20 events."""
    target = parse_target(" ".join(context.args or []))
    if target is None:
        await reply(update, context.t(texts.USER_USAGE))
        return
    report = await context.services.admin.lookup(target, by=f"admin {admin}")
    await reply(update, reports.user_report(report, context.t))


@admin_only
async def revoke(update: Update, context: BotContext, admin: int) -> None:
    """/revoke <number | chat id>: show the login and ask for confirmation (a button bound to
    that login, which expires)."""
    t = context.t
    query = " ".join(context.args or [])
    target = parse_target(query)
    if target is None or target.kind == "username":
        await reply(update, t(texts.REVOKE_USAGE))
        return
    offer = await context.services.admin.offer_revoke(target, by=f"admin {admin}")
    if offer is None:
        await reply(update, t(texts.REVOKE_NOTHING, query=query))
        return
    login, confirmation = offer
    buttons = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    t(texts.REVOKE_YES), callback_data=REVOKE_CALLBACK + _encode(confirmation)
                ),
                InlineKeyboardButton(t(texts.REVOKE_NO), callback_data=f"{REVOKE_CALLBACK}no"),
            ]
        ]
    )
    await reply(
        update,
        t(texts.REVOKE_CONFIRM, number=phone.pretty(login.phone_number), chat_id=login.chat_id),
        reply_markup=buttons,
    )


@admin_only
async def revoke_button(update: Update, context: BotContext, admin: int) -> None:
    """The confirmation of /revoke: end the login shown, if it is still the chat's login and
    the question is fresh."""
    query = update.callback_query
    if query is None:
        return
    t = context.t
    await query.answer()
    confirmation = _decode((query.data or "").removeprefix(REVOKE_CALLBACK))
    if confirmation is None:
        await edit_quietly(update, t(texts.REVOKE_KEPT))
        return
    outcome, revoked = await context.services.admin.revoke_confirmed(
        confirmation, by=f"admin {admin}"
    )
    if outcome is RevokeOutcome.EXPIRED:
        await edit_quietly(update, t(texts.REVOKE_EXPIRED, minutes=REVOKE_CONFIRM_SECONDS // 60))
    elif outcome is RevokeOutcome.CHANGED or revoked is None:
        await edit_quietly(update, t(texts.REVOKE_CHANGED))
    else:
        number = phone.pretty(revoked.phone_number)
        await edit_quietly(update, t(texts.REVOKED, number=number, chat_id=revoked.chat_id))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _encode(confirmation: Confirmation) -> str:
    """`chat:number key:verified_at:shown_at`, the times exact (microseconds since the epoch),
    integers in hex: at most 61 bytes with the prefix, within Telegram's 64."""
    return ":".join(
        (
            format(confirmation.chat_id, "x"),
            confirmation.number_key,
            format((confirmation.verified_at - _EPOCH) // _MICROSECOND, "x"),
            format((confirmation.shown_at - _EPOCH) // (_MICROSECOND * 1_000_000), "x"),
        )
    )


def _decode(data: str) -> Confirmation | None:
    """The confirmation a button carries; None for "No" or anything malformed."""
    parts = data.split(":")
    if len(parts) != 4 or not all(0 < len(part) <= 17 for part in parts):
        return None
    chat, key, verified, shown = parts
    try:
        return Confirmation(
            int(chat, 16),
            key,
            _EPOCH + int(verified, 16) * _MICROSECOND,
            shown_at=_EPOCH + timedelta(seconds=int(shown, 16)),
        )
    except (ValueError, OverflowError):
        return None


@admin_only
async def stats(update: Update, context: BotContext, admin: int) -> None:
    """/stats [days]: starts, verified, conversion, failures and limits, per day and region."""
    days = 7
    if context.args:
        arg = context.args[0]
        if not (arg.isdigit() and 1 <= int(arg) <= MAX_STATS_DAYS):
            await reply(update, context.t(texts.STATS_USAGE))
            return
        days = int(arg)
    await reply(update, reports.stats_text(await context.services.admin.stats(days), context.t))
