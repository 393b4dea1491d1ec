"""The bot's `Application`: how it talks to Telegram, and which handler answers what.

Building one opens nothing; `bot.telegram.lifecycle.running` starts it with its services.
"""

from __future__ import annotations

from collections.abc import Collection

from telegram import Update
from telegram.ext import (
    Application,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    SimpleUpdateProcessor,
    TypeHandler,
    filters,
)

from bot.config import Settings
from bot.db.engine import is_sqlite
from bot.metrics import Metrics
from bot.telegram import commands
from bot.telegram.commands import Chats, When
from bot.telegram.handlers import admin, common, login, weblogin
from bot.telegram.handlers.base import BotApp, BotContext, BotData
from bot.telegram.handlers.errors import on_error
from bot.telegram.http import AiohttpRequest
from bot.telegram.measured import MeasuredApplication
from bot.telegram.ordering import ChatOrderedUpdateProcessor
from bot.telegram.ratelimit import BoundedRateLimiter

# Bot API calls on the wire at once (getUpdates has its own connection).
TELEGRAM_IN_FLIGHT = 8

# The update types the bot handles (Telegram sends only these).
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]


def build_application(settings: Settings, metrics: Metrics) -> BotApp:
    """The bot with every handler, not yet initialised, counting into `metrics`."""
    application: BotApp = (
        Application.builder()
        .application_class(MeasuredApplication, kwargs={"metrics": metrics})
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_base_url)
        .context_types(ContextTypes(context=BotContext, bot_data=BotData))
        .concurrent_updates(update_processor(settings))
        .rate_limiter(
            BoundedRateLimiter(
                max_in_flight=TELEGRAM_IN_FLIGHT,
                overall_max_rate=settings.telegram_max_messages_per_second,
                max_retries=3,
            )
        )
        # aiohttp instead of PTB's default httpx: a quarter of the CPU per Bot API call.
        .request(
            AiohttpRequest(
                connection_pool_size=TELEGRAM_IN_FLIGHT + 4, pool_timeout=30, metrics=metrics
            )
        )
        .get_updates_request(AiohttpRequest(connection_pool_size=1, metrics=metrics))
        # No PTB Updater: bot.telegram.polling fetches the updates (bounded, quick to stop).
        .updater(None)
        .build()
    )
    add_handlers(application, admin_ids=settings.bot_admin_ids)
    return application


def update_processor(settings: Settings) -> BaseUpdateProcessor:
    """Per-chat ordered concurrency; or PTB's own one-at-a-time processing when set to 1,
    unless other processes share the chats (only ours keeps them in order across processes
    and acts on each update once)."""
    if settings.max_concurrent_updates == 1 and not shares_chats(settings):
        return SimpleUpdateProcessor(1)
    return ChatOrderedUpdateProcessor(max_concurrent_updates=settings.max_concurrent_updates)


def shares_chats(settings: Settings) -> bool:
    """Whether other processes may handle this bot's chats too: webhook processes behind a
    load balancer, on one PostgreSQL database. Polling is one process by nature (Telegram
    answers a second poller with 409), and SQLite is one machine's file."""
    return settings.webhook_url is not None and not is_sqlite(settings.database_url)


def add_handlers(application: BotApp, *, admin_ids: Collection[int]) -> None:
    """Every handler, top to bottom. Order matters! Within a group only the first handler
    that accepts an update answers it. Admin commands match BOT_ADMIN_IDS only: to anyone
    else they do not exist."""
    admins = filters.User(user_id=admin_ids)
    conversation = login.login_conversation(
        entry_points=commands.handlers(When.STARTS_FLOW, admins=admins),
        fallbacks=commands.handlers(When.IN_FLOW, admins=admins),
    )

    # Group -2, first: an update that names no sender reaches no other handler.
    application.add_handler(TypeHandler(Update, common.without_sender), group=-2)

    # Group -1, before anything reads it: the chat's login step, loaded from the database.
    application.add_handler(TypeHandler(Update, conversation.sync_from_database), group=-1)

    # Order matters! Commands answered at any time (admin ones included) come before the
    # conversation, which claims every private update while a login waits.
    application.add_handlers(commands.handlers(When.ALWAYS, admins=admins))

    # The login conversation: /login, then the number, then the code.
    application.add_handler(conversation)

    # Buttons: the conversation never claims them; each callback checks what it may do.
    application.add_handlers(
        [
            CallbackQueryHandler(login.resend_button, pattern=f"^{login.RESEND_CALLBACK}"),
            CallbackQueryHandler(weblogin.answer_button, pattern=f"^{weblogin.CONFIRM_CALLBACK}"),
            CallbackQueryHandler(common.forget_button, pattern=f"^{common.FORGET_CALLBACK}"),
            CallbackQueryHandler(common.language_button, pattern=f"^{common.LANGUAGE_CALLBACK}"),
            CallbackQueryHandler(admin.users_page_button, pattern=f"^{admin.USERS_CALLBACK}"),
            CallbackQueryHandler(admin.revoke_button, pattern=f"^{admin.REVOKE_CALLBACK}"),
        ]
    )

    # Commands answered differently with no login in progress (during one, the conversation
    # has already taken them).
    application.add_handlers(commands.handlers(When.OUTSIDE_FLOW, admins=admins))

    # Order matters! The catch-alls come last. In a group, a private command gets a pointer
    # to the private chat (an admin command, for admins only); edits outside a flow (commands
    # included) change nothing and get no answer; any other private message gets a pointer to
    # /login (or to /whoami and /logout when logged in).
    application.add_handlers(
        [
            CommandHandler(
                commands.private_names(),
                common.private_only,
                filters=filters.ChatType.GROUPS & filters.UpdateType.MESSAGE,
            ),
            CommandHandler(
                commands.private_names(Chats.ADMIN),
                common.private_only,
                filters=filters.ChatType.GROUPS & filters.UpdateType.MESSAGE & admins,
            ),
            MessageHandler(
                filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE, common.outside_flow
            ),
        ]
    )

    # Group 1, after everything: the chat's login step leaves memory (the database keeps it).
    application.add_handler(TypeHandler(Update, conversation.forget_chat), group=1)

    # Whatever a handler did not expect: logged, and answered with an apology.
    application.add_error_handler(on_error)
