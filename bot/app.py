"""The one place the bot is wired: settings in, a ready `Application` out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from telegram import BotCommand, Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    BaseUpdateProcessor,
    ContextTypes,
    SimpleUpdateProcessor,
)

from bot.admin.service import AdminService
from bot.clock import utcnow
from bot.config import Settings, hash_key
from bot.db.engine import is_sqlite, make_engine, make_sessionmaker
from bot.db.locks import ChatLocks
from bot.db.store import LoginStore
from bot.login.audit import Audit
from bot.login.limits import Limits
from bot.login.service import FlowPolicy, LoginService
from bot.login.verification import VerifyClient, VerifyConfig
from bot.telegram.handlers.admin import build_admin_handlers
from bot.telegram.handlers.base import BotApp, BotContext, BotData
from bot.telegram.handlers.common import build_common_handlers
from bot.telegram.handlers.errors import on_error
from bot.telegram.handlers.login import build_login_handlers
from bot.telegram.http import AiohttpRequest
from bot.telegram.ordering import ChatOrderedUpdateProcessor
from bot.telegram.services import Services

logger = logging.getLogger(__name__)

JSONDict = dict[str, Any]  # what the Bot API answers, as PTB types it

# Bot API calls on the wire at once (getUpdates has its own connection).
TELEGRAM_IN_FLIGHT = 8

# Database connections (PostgreSQL; SQLite uses one). Transactions never wait on Vonage or
# Telegram, so a few connections serve many concurrent updates; every extra one costs a
# connection setup and server memory.
DATABASE_CONNECTIONS = 8

# Connections for cross-process chat locks (webhook mode on PostgreSQL): each update being
# handled holds one, so this bounds the updates one process handles at once.
LOCK_CONNECTIONS = 60

# How often the sweeper looks for codes that expired unused.
SWEEP_SECONDS = 15.0

COMMANDS = [
    BotCommand("login", "Log in with your phone number"),
    BotCommand("whoami", "Am I logged in, and with which number?"),
    BotCommand("logout", "Log out"),
    BotCommand("cancel", "Stop a login in progress"),
    BotCommand("help", "What this bot does"),
]


def verify_client(settings: Settings) -> VerifyClient:
    """The Verify client the settings describe."""
    secret = settings.vonage_api_secret
    key = settings.vonage_private_key
    return VerifyClient.from_credentials(
        config=VerifyConfig(
            brand=settings.vonage_brand,
            code_length=settings.verify_code_length,
            channel_timeout=settings.verify_channel_timeout,
            workflow=tuple(settings.verify_workflow),
        ),
        api_host=settings.vonage_api_host,
        timeout_seconds=settings.vonage_timeout_seconds,
        max_workers=settings.vonage_max_concurrency,
        api_key=settings.vonage_api_key,
        api_secret=secret.get_secret_value() if secret else None,
        application_id=settings.vonage_application_id,
        private_key=key.get_secret_value() if key else None,
    )


def build_application(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    sweep_seconds: float = SWEEP_SECONDS,
) -> BotApp:
    """The bot, ready to `run_polling()` (or to be initialised and fed updates by tests).

    Shared services (database engine, Verify client) are created in `post_init` and closed in
    `post_shutdown`, so building an application opens nothing.
    """
    sweeper: list[asyncio.Task[None]] = []

    async def post_init(application: BotApp) -> None:
        engine = make_engine(settings.database_url, pool_size=DATABASE_CONNECTIONS)
        sessions = make_sessionmaker(engine)
        readers = make_sessionmaker(engine, readonly=True)
        verify = verify_client(settings)
        await asyncio.to_thread(verify.start_workers)
        audit = Audit(hash_key=hash_key(settings), clock=clock)
        limits = Limits(
            cooldown_seconds=settings.limit_cooldown_seconds,
            starts_per_hour=settings.limit_starts_per_hour,
            starts_per_day=settings.limit_starts_per_day,
            global_starts_per_hour=settings.limit_global_starts_per_hour,
            allowed_country_codes=frozenset(settings.allowed_country_codes),
            denied_country_codes=frozenset(settings.denied_country_codes),
            denied_number_prefixes=tuple(settings.denied_number_prefixes),
        )
        login = LoginService(
            store=LoginStore(
                sessions=sessions, readers=readers, audit=audit, limits=limits, clock=clock
            ),
            verify=verify,
            limits=limits,
            policy=FlowPolicy(
                code_ttl_seconds=settings.verify_code_ttl_seconds,
                max_attempts=settings.verify_max_attempts,
            ),
            clock=clock,
        )
        application.bot_data.services = Services(
            engine=engine,
            sessions=sessions,
            verify=verify,
            login=login,
            admin=AdminService(sessions=sessions, readers=readers, audit=audit, clock=clock),
            admin_ids=frozenset(settings.bot_admin_ids),
            code_length=settings.verify_code_length,
            workflow=tuple(settings.verify_workflow),
            can_call="voice" in settings.verify_workflow[1:],
            resend_after=settings.limit_cooldown_seconds,
        )
        try:
            await application.bot.set_my_commands(COMMANDS)
        except Exception as error:
            logger.warning("Could not set the command menu: %s", type(error).__name__)
        processor = application.update_processor
        if (
            settings.webhook_url
            and not is_sqlite(settings.database_url)
            and isinstance(processor, ChatOrderedUpdateProcessor)
        ):
            # Webhook processes behind a load balancer may share PostgreSQL: serialise each
            # chat across all of them. (Polling is one process by nature: Telegram answers a
            # second poller with 409, so in-process ordering is enough there.)
            processor.chat_locks = ChatLocks(
                settings.database_url, size=min(settings.max_concurrent_updates, LOCK_CONNECTIONS)
            )
        if sweep_seconds > 0:
            sweeper.append(
                asyncio.create_task(
                    _sweep(login, sweep_seconds, processor_locks(application)), name="sweeper"
                )
            )

    async def post_shutdown(application: BotApp) -> None:
        for task in sweeper:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        locks = processor_locks(application)
        if locks is not None:
            await locks.close()
        services = application.bot_data.services
        if services is not None:
            await asyncio.to_thread(services.verify.close)
            await services.engine.dispose()
            application.bot_data.services = None

    application: BotApp = (
        Application.builder()
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
        .request(AiohttpRequest(connection_pool_size=TELEGRAM_IN_FLIGHT + 4, pool_timeout=30))
        .get_updates_request(AiohttpRequest(connection_pool_size=1))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    add_handlers(application)
    return application


class BoundedRateLimiter(AIORateLimiter):
    """PTB's rate limiter (Telegram's flood limits, 429 retries), with at most a few Bot API
    calls on the wire at once: beyond that, each extra concurrent call only makes the HTTP
    connection pool slower for all of them (httpcore scans its whole pool per request)."""

    def __init__(self, *, max_in_flight: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._in_flight = asyncio.Semaphore(max_in_flight)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        """Wait for a free slot, then let PTB's limiter send the request."""
        async with self._in_flight:
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )


def update_processor(settings: Settings) -> BaseUpdateProcessor:
    """Per-chat ordered concurrency, or PTB's own one-at-a-time processing when set to 1."""
    if settings.max_concurrent_updates == 1:
        return SimpleUpdateProcessor(1)
    return ChatOrderedUpdateProcessor(max_concurrent_updates=settings.max_concurrent_updates)


def add_handlers(application: BotApp) -> None:
    """Every handler, in the order that matters:

    group -1: load the chat's login step from the database (before anything reads it);
    group 0: admin commands, then the login conversation (it claims every private update
    while a flow waits), then the commands and catch-alls used outside a flow.
    """
    login_handlers = build_login_handlers()
    for group, handler in login_handlers:
        if group < 0:
            application.add_handler(handler, group=group)
    application.add_handlers(build_admin_handlers())
    for group, handler in login_handlers:
        if group >= 0:
            application.add_handler(handler, group=group)
    application.add_handlers(build_common_handlers())
    application.add_error_handler(on_error)


def processor_locks(application: BotApp) -> ChatLocks | None:
    """The cross-process chat locks, when the database is PostgreSQL."""
    processor = application.update_processor
    return processor.chat_locks if isinstance(processor, ChatOrderedUpdateProcessor) else None


async def _sweep(login: LoginService, every: float, locks: ChatLocks | None) -> None:
    """Expire codes nobody used, and cancel their Verify requests, every few seconds."""
    while True:
        await asyncio.sleep(every)
        try:
            await login.expire_due()
            if locks is not None:
                await locks.purge()
        except Exception:
            logger.exception("Sweeping expired logins failed; trying again later")


async def start_polling(application: BotApp, *, poll_timeout: int = 10) -> None:
    """What `run_polling()` does before it blocks, for callers that keep their own event
    loop (the demo, the tests): initialise, create the services, start, poll."""
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    await application.start()
    if application.updater is None:
        raise RuntimeError("the application was built without an updater")
    await application.updater.start_polling(
        poll_interval=0.0, timeout=poll_timeout, allowed_updates=allowed_updates()
    )


async def stop_polling(application: BotApp) -> None:
    """Stop polling, finish the updates in flight, close the services. Safe to call on an
    application that only got part way through `start_polling`."""
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()
    await application.shutdown()
    if application.post_shutdown is not None:
        await application.post_shutdown(application)


def allowed_updates() -> list[str]:
    """The update types the bot handles (Telegram sends only these)."""
    return [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]
