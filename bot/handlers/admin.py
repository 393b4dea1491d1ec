"""Admin commands: only for the Telegram user ids in BOT_ADMIN_IDS, only in private chats.
Anyone else gets the same answer as for an unknown command, which reveals nothing."""

from __future__ import annotations

import math

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot import texts
from bot.db import repo
from bot.handlers.base import BotContext, is_private, reply
from bot.services import phone

USERS_CALLBACK = "users:"


def _is_admin(update: Update, context: BotContext) -> bool:
    user = update.effective_user
    return is_private(update) and user is not None and user.id in context.services.admin_ids


async def users(update: Update, context: BotContext) -> None:
    """/users [page]: one page of verified users, newest first, with paging buttons."""
    if not _is_admin(update, context):
        await reply(update, texts.NOT_ALLOWED)
        return
    page = 1
    if context.args:
        arg = context.args[0]
        page = int(arg) if arg.isdigit() and 0 < len(arg) < 7 else 1
    text, markup = await _users_page(context, page)
    await reply(update, text, reply_markup=markup)


async def users_page_button(update: Update, context: BotContext) -> None:
    """A paging button under a /users answer: show that page in the same message."""
    query = update.callback_query
    if query is None:
        return
    if not _is_admin(update, context):
        await query.answer()
        return
    raw = (query.data or "").removeprefix(USERS_CALLBACK)
    page = int(raw) if raw.isdigit() else 1
    text, markup = await _users_page(context, page)
    await query.answer()
    await query.edit_message_text(text, reply_markup=markup)


async def _users_page(context: BotContext, page: int) -> tuple[str, InlineKeyboardMarkup | None]:
    services = context.services
    size = services.users_page_size
    async with services.sessions() as session:
        total = await repo.count_logins(session)
        pages = max(1, math.ceil(total / size))
        page = min(max(page, 1), pages)
        rows = await repo.page_logins(session, offset=(page - 1) * size, limit=size)
    if total == 0:
        return texts.USERS_EMPTY, None
    lines = [texts.USERS_HEADER.format(total=total, page=page, pages=pages)]
    for row in rows:
        name = row.full_name or "?"
        if row.username:
            name += f" (@{row.username})"
        lines.append(
            texts.USERS_LINE.format(
                number=phone.pretty(row.phone_number),
                chat_id=row.chat_id,
                name=name,
                when=row.verified_at.strftime("%Y-%m-%d %H:%M UTC"),
            )
        )
    buttons = []
    if page > 1:
        buttons.append(
            InlineKeyboardButton("« Previous", callback_data=f"{USERS_CALLBACK}{page - 1}")
        )
    if page < pages:
        buttons.append(InlineKeyboardButton("Next »", callback_data=f"{USERS_CALLBACK}{page + 1}"))
    return "\n".join(lines), InlineKeyboardMarkup([buttons]) if buttons else None


def build_admin_handlers() -> list[BaseHandler[Update, BotContext, object]]:
    """Admin handlers; they go before the login conversation, so /users works mid-flow."""
    return [
        CommandHandler("users", users, filters=filters.ChatType.PRIVATE),
        CallbackQueryHandler(users_page_button, pattern=f"^{USERS_CALLBACK}"),
    ]
