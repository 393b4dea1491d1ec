"""The last line of defence: whatever a handler did not expect is logged with context and
answered with an apology; the bot keeps running."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, NetworkError, RetryAfter, TimedOut

from bot import texts
from bot.db.locks import ChatBusy
from bot.telegram.handlers.base import BotContext

logger = logging.getLogger(__name__)


async def on_error(update: object, context: BotContext) -> None:
    """Log the error (type and chat only: no message text, it may hold a number or a code)
    and apologise to the user where there is one."""
    error = context.error
    chat_id = None
    if isinstance(update, Update) and update.effective_chat is not None:
        chat_id = update.effective_chat.id
    if isinstance(error, Forbidden):
        # The user blocked the bot: there is nobody to answer. Forget their flow.
        logger.info("Chat %s blocked the bot; dropping its login flow", chat_id)
        if chat_id is not None and context.bot_data.services is not None:
            await context.services.login.cancel(chat_id)
        return
    if error is not None and context.bot_data.services is not None:
        context.services.metrics.failed(error)
    if isinstance(error, (RetryAfter, TimedOut, NetworkError)) and update is None:
        logger.warning("Telegram network trouble: %s", type(error).__name__)
        return
    services = context.bot_data.services
    if isinstance(error, ChatBusy):
        # Not a bug here: another process is slow or stuck with this chat.
        logger.warning(
            "Chat %s was held by another process for %g s; answering with the apology",
            chat_id,
            error.waited,
        )
    elif error is None or services is None or not services.database.failed(error):
        # (A database outage is logged once, by `failed`, not for every update.)
        logger.error(
            "Unhandled %s while handling an update from chat %s",
            type(error).__name__,
            chat_id,
            exc_info=error,
        )
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await update.effective_chat.send_message(context.t(texts.APOLOGY))
        except Exception:
            logger.warning("Could not send the apology to chat %s", chat_id)
