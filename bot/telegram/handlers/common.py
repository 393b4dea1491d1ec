"""Commands outside the login conversation: who am I, logout, privacy, forget, and the
catch-alls (`bot.telegram.commands` says where each is answered)."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.ext import ApplicationHandlerStop, ConversationHandler

from bot import i18n, texts
from bot.login import phone
from bot.telegram.handlers.base import (
    BotContext,
    edit_quietly,
    is_private,
    person_of,
    private_button,
    reply,
)

logger = logging.getLogger(__name__)

END = ConversationHandler.END


async def without_sender(update: Update, context: BotContext) -> None:
    """Stop an update that names no sender (`from` absent: a malformed update, or a sender
    Telegram does not name) before any other handler: none could tell whose login it would
    touch. A new private message gets a short answer, a button press an empty one (so it
    stops spinning), anything else nothing."""
    if update.effective_user is not None:
        return
    chat = update.effective_chat
    logger.info("Ignored an update without a sender (chat %s)", chat.id if chat else None)
    if update.callback_query is not None:
        await update.callback_query.answer()
    elif update.message is not None and is_private(update):
        await reply(update, context.t(texts.NO_SENDER))
    raise ApplicationHandlerStop


async def whoami(update: Update, context: BotContext) -> None:
    """/whoami and /status: is this chat logged in, and with which number."""
    services, t = context.services, context.t
    chat_id = person_of(update).chat_id
    login = await services.login.login_of(chat_id)
    if login is not None:
        await reply(
            update,
            t(
                texts.WHOAMI,
                number=phone.pretty(login.phone_number),
                since=t.time(login.verified_at),
                method=t(texts.method(login.channel)),
            ),
        )
    elif await services.login.step_of(chat_id) is not None:
        await reply(update, t(texts.WHOAMI_FLOW))
    else:
        await reply(update, t(texts.NOT_LOGGED_IN))


async def logout(update: Update, context: BotContext) -> int:
    """/logout: end this chat's login (and any login in progress); END."""
    t = context.t
    login = await context.services.login.logout(person_of(update).chat_id)
    if login is None:
        await reply(update, t(texts.NOT_LOGGED_IN), reply_markup=ReplyKeyboardRemove())
    else:
        await reply(
            update,
            t(texts.LOGGED_OUT, number=phone.pretty(login.phone_number)),
            reply_markup=ReplyKeyboardRemove(),
        )
    return END


FORGET_CALLBACK = "forget:"
LANGUAGE_CALLBACK = "language:"


async def privacy(update: Update, context: BotContext) -> None:
    """/privacy: what is stored and why."""
    await reply(update, context.t(texts.PRIVACY, audit_days=context.services.audit_retention_days))


async def forget(update: Update, context: BotContext) -> None:
    """/forget: ask for confirmation before erasing anything."""
    t = context.t
    buttons = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(t(texts.FORGET_YES), callback_data=f"{FORGET_CALLBACK}yes"),
                InlineKeyboardButton(t(texts.FORGET_NO), callback_data=f"{FORGET_CALLBACK}no"),
            ]
        ]
    )
    await reply(update, t(texts.FORGET_CONFIRM), reply_markup=buttons)


async def forget_button(update: Update, context: BotContext) -> None:
    """The answer to /forget's question: erase everything about the chat, or nothing."""
    query = await private_button(update)
    if query is None:
        return
    await query.answer()
    if query.data == f"{FORGET_CALLBACK}yes":
        chat_id = person_of(update).chat_id
        await context.services.login.forget(chat_id)
        if context.services.web is not None:
            await context.services.web.forget(chat_id)
        # The chosen language is erased too: from now on the chat speaks Telegram's.
        user = update.effective_user
        context.language = i18n.from_telegram(user.language_code if user else None)
        await edit_quietly(update, context.t(texts.FORGOTTEN))
    else:
        await edit_quietly(update, context.t(texts.FORGET_KEPT))


async def language(update: Update, context: BotContext) -> None:
    """/language: one button per language, each in its own name."""
    buttons = [
        InlineKeyboardButton(choice.name, callback_data=f"{LANGUAGE_CALLBACK}{choice.code}")
        for choice in i18n.LANGUAGES
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    markup = InlineKeyboardMarkup(rows)
    await reply(update, context.t(texts.LANGUAGE_CHOOSE), reply_markup=markup)


async def language_button(update: Update, context: BotContext) -> None:
    """A /language button: keep that language for the chat, and say so in it at once."""
    query = await private_button(update)
    if query is None:
        return
    await query.answer()
    chosen = i18n.supported((query.data or "").removeprefix(LANGUAGE_CALLBACK))
    if chosen is None:
        # A button from another version of the bot: nothing to store.
        return
    await context.services.login.set_language(person_of(update).chat_id, chosen)
    context.language = chosen
    await edit_quietly(update, context.t(texts.LANGUAGE_CHOSEN))


async def nothing_to_cancel(update: Update, context: BotContext) -> None:
    """/cancel outside a flow."""
    t = context.t
    if await context.services.login.take_expired_notice(person_of(update).chat_id):
        await reply(update, t(texts.EXPIRED_NOTICE))
        return
    await reply(update, t(texts.NOTHING_TO_CANCEL), reply_markup=ReplyKeyboardRemove())


async def outside_flow(update: Update, context: BotContext) -> None:
    """Any other private message: point to /login, or to /whoami and /logout when logged in."""
    services, t = context.services, context.t
    chat_id = person_of(update).chat_id
    if await services.login.take_expired_notice(chat_id):
        await reply(update, t(texts.EXPIRED_NOTICE))
        return
    login = await services.login.login_of(chat_id)
    if login is not None:
        await reply(
            update, t(texts.OUTSIDE_FLOW_LOGGED_IN, number=phone.pretty(login.phone_number))
        )
    else:
        await reply(update, t(texts.OUTSIDE_FLOW))


async def private_only(update: Update, context: BotContext) -> None:
    """A number-related command in a group: point to the private chat, read nothing."""
    await reply(update, context.t(texts.PRIVATE_ONLY, link=f"https://t.me/{context.bot.username}"))
