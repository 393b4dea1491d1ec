"""What every handler shares: the typed context, who is talking, how to reply."""

from __future__ import annotations

import logging
from typing import Any, Self

from telegram import CallbackQuery, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CallbackContext, ExtBot

from bot import i18n, texts
from bot.login.steps import Person
from bot.telegram.services import Services

logger = logging.getLogger(__name__)


class BotData:
    """`application.bot_data`: holds the services while the bot runs (`bot.telegram.lifecycle`)."""

    __slots__ = ("services",)

    def __init__(self) -> None:
        self.services: Services | None = None


class BotContext(CallbackContext[ExtBot[int], dict[Any, Any], dict[Any, Any], BotData]):
    """The callback context, with typed access to the services and the update's language.

    One context serves every handler group of an update, so the language found first (the
    sender's Telegram `language_code`, here) and then the chat's own choice (loaded with its
    login step, `bot.telegram.handlers.login.FlowConversationHandler`) reach every handler
    of that update and no other."""

    def __init__(
        self, application: Any, chat_id: int | None = None, user_id: int | None = None
    ) -> None:
        super().__init__(application, chat_id, user_id)
        self.language: str = i18n.SOURCE

    @classmethod
    def from_update(cls, update: object, application: Any) -> Self:
        """The context of an update, in the sender's Telegram language (English if the bot
        does not speak it)."""
        context = super().from_update(update, application)
        if isinstance(update, Update) and update.effective_user is not None:
            context.language = i18n.from_telegram(update.effective_user.language_code)
        return context

    @property
    def t(self) -> i18n.Texts:
        """The sentences in this update's language."""
        return i18n.texts_for(self.language)

    @property
    def services(self) -> Services:
        """The bot's services (open while it runs)."""
        services = self.bot_data.services
        if services is None:
            raise RuntimeError("services used while the bot is not running")
        return services


BotApp = Application[ExtBot[int], BotContext, dict[Any, Any], dict[Any, Any], BotData, Any]


def person_of(update: Update) -> Person:
    """The chat and user an update comes from (an update without a sender never reaches a
    handler: `bot.telegram.handlers.common.without_sender` stops it first)."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is None or user is None:
        raise ValueError("update without chat or user")
    return Person(
        chat_id=chat.id,
        user_id=user.id,
        username=user.username,
        full_name=user.full_name,
    )


def is_private(update: Update) -> bool:
    """Whether the update comes from a private chat with the bot."""
    chat = update.effective_chat
    return chat is not None and chat.type == ChatType.PRIVATE


def message_of(update: Update) -> Message:
    """The message an update carries (new or edited)."""
    message = update.effective_message
    if message is None:
        raise ValueError("update without message")
    return message


async def private_button(update: Update) -> CallbackQuery | None:
    """The button press, when it comes from a private chat with the bot. Any other press
    (one Telegram sends without its message, so without a chat) is answered, so the button
    stops spinning, and None is returned: there is nothing to act on."""
    query = update.callback_query
    if query is None:
        return None
    if not is_private(update):
        await query.answer()
        return None
    return query


async def reply(update: Update, text: str, **kwargs: Any) -> None:
    """Answer in the chat the update came from."""
    chat = update.effective_chat
    if chat is None:
        return
    await chat.send_message(text, **kwargs)


async def edit_quietly(update: Update, text: str, **kwargs: Any) -> None:
    """Replace the text of the message a button belongs to; a second tap on the same button
    (Telegram: "message is not modified") is not an error."""
    query = update.callback_query
    if query is None:
        return
    try:
        await query.edit_message_text(text, **kwargs)
    except BadRequest as error:
        if "not modified" not in error.message.lower():
            raise


async def notify_admins(context: BotContext, kind: str | None) -> None:
    """Tell every admin about a kind of trouble (callers make sure it is once, not per user),
    each in the language their chat chose (English if it chose none)."""
    if kind is None:
        return
    admin_ids = sorted(context.services.admin_ids)
    languages = await context.services.login.languages_of(admin_ids)
    for admin_id in admin_ids:
        t = i18n.texts_for(languages.get(admin_id, i18n.SOURCE))
        try:
            await context.bot.send_message(admin_id, t(texts.ALERTS.get(kind, kind)))
        except TelegramError as error:
            # An admin who never opened a chat with the bot cannot be messaged; say so, go on.
            logger.warning("Could not alert admin %s: %s", admin_id, type(error).__name__)
