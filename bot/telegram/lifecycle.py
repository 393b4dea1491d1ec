"""Starting and stopping the bot: the one place its services are opened and closed.

`running(settings)` is the bot started, with its services open, for as long as the `async with`
lasts; on the way out it closes whatever it opened (also after a failed start). Updates reach
it by polling (`bot.telegram.polling.polling`) or by the webhook server
(`bot.telegram.webhook.receiving`), each of which finishes the updates in hand when it stops;
`serve` is the production process, the demo and the tests use `running` and `polling`
directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import i18n
from bot.admin.service import AdminService, prices_of
from bot.app import build_application, shares_chats
from bot.clock import utcnow
from bot.config import SettingError, Settings, hash_key
from bot.db.engine import is_sqlite, make_engine, make_sessionmaker, server_connections
from bot.db.locks import ChatLocks
from bot.db.store import LoginStore
from bot.login.audit import Audit
from bot.login.gateway import GatewayClient, GatewayConfig
from bot.login.limits import Limits
from bot.login.oidc_keys import ProviderKeys
from bot.login.service import FlowPolicy, LoginService
from bot.login.steps import GATEWAY_CHANNEL
from bot.login.verification import VerifyClient, VerifyConfig
from bot.login.weblogin import WebLogin, WebLoginPolicy
from bot.metrics import Metrics
from bot.telegram import commands, metrics_http, webhook
from bot.telegram.handlers.base import BotApp
from bot.telegram.handlers.login import announce_fallbacks
from bot.telegram.ordering import ChatOrderedUpdateProcessor
from bot.telegram.polling import polling
from bot.telegram.services import Services

logger = logging.getLogger(__name__)

# How often the sweeper looks for codes that expired unused.
SWEEP_SECONDS = 15.0


async def serve(settings: Settings) -> None:
    """The bot process: run until SIGTERM or SIGINT (Ctrl-C), receiving updates by webhook
    when WEBHOOK_URL is set and by polling otherwise; then finish the updates in flight."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Before starting: a signal during the start stops the bot as soon as it is up.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running(settings) as application, contextlib.AsyncExitStack() as receiving:
        if settings.webhook_url:
            await receiving.enter_async_context(webhook.receiving(application, settings))
        else:
            if webhook.serves_http(settings):
                # The web login needs the HTTP server in polling mode too (the health check,
                # the metrics and the OIDC endpoints, no webhook path).
                await receiving.enter_async_context(webhook.web_serving(application, settings))
            logger.info("Starting to poll for updates")
            await receiving.enter_async_context(polling(application, settings))
        await stop.wait()
        logger.info("Stopping: finishing the updates in flight")


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    sweep_seconds: float = SWEEP_SECONDS,
) -> AsyncIterator[BotApp]:
    """The bot, started: services open, command menu set, handling whatever updates its
    processor is given; its metrics served on METRICS_PORT when the bot's HTTP server (which
    serves them otherwise) does not run. `sweep_seconds=0` runs no sweeper (tests expire
    codes themselves)."""
    metrics = Metrics()
    application = build_application(settings, metrics)
    async with contextlib.AsyncExitStack() as stack:
        # Initialising asks Telegram who the bot is: a wrong token stops the start here.
        await stack.enter_async_context(application)
        services = await stack.enter_async_context(
            open_services(settings, clock=clock, metrics=metrics)
        )
        application.bot_data.services = services
        stack.callback(setattr, application.bot_data, "services", None)
        if settings.metrics_port is not None and not webhook.serves_http(settings):
            await stack.enter_async_context(
                metrics_http.serving(application, settings.metrics_listen, settings.metrics_port)
            )
        await _set_command_menu(application)
        if services.web is not None:
            await services.web.prepare()
        locks = _chat_locks(settings, application, services.engine)
        if locks is not None:
            stack.push_async_callback(locks.close)
        if sweep_seconds > 0:
            await stack.enter_async_context(sweeping(application, sweep_seconds, locks))
        await application.start()
        stack.push_async_callback(application.stop)
        yield application


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings, *, clock: Callable[[], datetime] = utcnow, metrics: Metrics
) -> AsyncIterator[Services]:
    """What the handlers use (the database, the Verify client, the services on them), open
    while inside."""
    engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
    try:
        if not is_sqlite(settings.database_url):
            await _check_connection_budget(engine, settings.database_pool_size)
        verify = verify_client(settings, metrics)
        gateway = gateway_client(settings, metrics)
        try:
            await asyncio.to_thread(verify.start_workers)
            yield make_services(
                settings,
                engine=engine,
                verify=verify,
                gateway=gateway,
                clock=clock,
                metrics=metrics,
            )
        finally:
            if gateway is not None:
                await gateway.close()
            await asyncio.to_thread(verify.close)
    finally:
        await engine.dispose()


def make_services(
    settings: Settings,
    *,
    engine: AsyncEngine,
    verify: VerifyClient,
    clock: Callable[[], datetime],
    gateway: GatewayClient | None = None,
    metrics: Metrics,
) -> Services:
    """The services the settings describe, on an open database and Verify client."""
    sessions = make_sessionmaker(engine)
    readers = make_sessionmaker(engine, readonly=True)
    audit = Audit(hash_key=hash_key(settings), clock=clock)
    limits = Limits(
        cooldown_seconds=settings.limit_cooldown_seconds,
        starts_per_hour=settings.limit_starts_per_hour,
        starts_per_day=settings.limit_starts_per_day,
        global_starts_per_hour=settings.limit_global_starts_per_hour,
        allowed_country_codes=frozenset(settings.allowed_country_codes),
        denied_country_codes=frozenset(settings.denied_country_codes),
        allowed_regions=frozenset(settings.allowed_regions),
        denied_regions=frozenset(settings.denied_regions),
        denied_number_prefixes=tuple(settings.denied_number_prefixes),
    )
    login = LoginService(
        store=LoginStore(
            sessions=sessions, readers=readers, audit=audit, limits=limits, clock=clock
        ),
        verify=verify,
        gateway=gateway,
        limits=limits,
        policy=FlowPolicy(
            code_ttl_seconds=settings.verify_code_ttl_seconds,
            max_attempts=settings.verify_max_attempts,
            audit_retention_days=settings.audit_retention_days,
            workflow=tuple(settings.verify_workflow),
            channel_timeout=settings.verify_channel_timeout,
        ),
        clock=clock,
        metrics=metrics,
    )
    return Services(
        engine=engine,
        metrics=metrics,
        login=login,
        admin=AdminService(
            sessions=sessions,
            readers=readers,
            audit=audit,
            clock=clock,
            prices=prices_of(settings),
        ),
        admin_ids=frozenset(settings.bot_admin_ids),
        code_length=settings.verify_code_length,
        workflow=tuple(settings.verify_workflow),
        can_call="voice" in vonage_channels(settings)[1:],
        resend_after=settings.limit_cooldown_seconds,
        audit_retention_days=settings.audit_retention_days,
        trust_contact=settings.trust_telegram_contact,
        web=web_login(
            settings, sessions=sessions, readers=readers, audit=audit, clock=clock, metrics=metrics
        ),
    )


def web_login(
    settings: Settings,
    *,
    sessions: async_sessionmaker[AsyncSession],
    readers: async_sessionmaker[AsyncSession],
    audit: Audit,
    clock: Callable[[], datetime],
    metrics: Metrics,
) -> WebLogin | None:
    """The OpenID Connect provider, when OIDC_ISSUER is set."""
    if settings.oidc_issuer is None:
        return None
    key = settings.oidc_signing_key
    return WebLogin(
        sessions=sessions,
        readers=readers,
        keys=ProviderKeys(
            sessions=sessions,
            readers=readers,
            configured_pem=key.get_secret_value() if key else None,
            clock=clock,
        ),
        audit=audit,
        policy=WebLoginPolicy(
            issuer=settings.oidc_issuer,
            requests_per_ip_per_hour=settings.limit_web_requests_per_ip_per_hour,
            requests_per_client_per_hour=settings.limit_web_requests_per_client_per_hour,
        ),
        clock=clock,
        metrics=metrics,
    )


def verify_client(settings: Settings, metrics: Metrics) -> VerifyClient:
    """The Verify client the settings describe."""
    secret = settings.vonage_api_secret
    key = settings.vonage_private_key
    return VerifyClient.from_credentials(
        config=VerifyConfig(
            brand=settings.vonage_brand,
            code_length=settings.verify_code_length,
            channel_timeout=settings.verify_channel_timeout,
            workflow=vonage_channels(settings),
        ),
        api_host=settings.vonage_api_host,
        timeout_seconds=settings.vonage_timeout_seconds,
        max_workers=settings.vonage_max_concurrency,
        api_key=settings.vonage_api_key,
        api_secret=secret.get_secret_value() if secret else None,
        application_id=settings.vonage_application_id,
        private_key=key.get_secret_value() if key else None,
        metrics=metrics,
    )


def vonage_channels(settings: Settings) -> tuple[str, ...]:
    """The channels of VERIFY_WORKFLOW that Vonage sends by (all but the Gateway's)."""
    return tuple(c for c in settings.verify_workflow if c != GATEWAY_CHANNEL)


def gateway_client(settings: Settings, metrics: Metrics) -> GatewayClient | None:
    """The Telegram Gateway client, when VERIFY_WORKFLOW starts with telegram."""
    token = settings.telegram_gateway_token
    if settings.verify_workflow[0] != GATEWAY_CHANNEL or token is None:
        return None
    return GatewayClient(
        GatewayConfig(
            base_url=settings.telegram_gateway_url,
            token=token.get_secret_value(),
            code_length=settings.verify_code_length,
            ttl_seconds=settings.verify_channel_timeout,
            timeout_seconds=settings.vonage_timeout_seconds,
            callback_url=webhook.gateway_callback_url(settings),
        ),
        metrics=metrics,
    )


async def _set_command_menu(application: BotApp) -> None:
    """Tell Telegram the command menu: once per language (each user sees the one of their
    Telegram language) and once without one (English, for every other language). The bot
    works without it, so a failure only warns."""
    bot = application.bot
    calls = [bot.set_my_commands(commands.menu(i18n.ENGLISH))] + [
        bot.set_my_commands(
            commands.menu(i18n.texts_for(language.code)), language_code=language.telegram_code
        )
        for language in i18n.LANGUAGES
    ]
    for outcome in await asyncio.gather(*calls, return_exceptions=True):
        if isinstance(outcome, BaseException):
            logger.warning("Could not set the command menu: %s", type(outcome).__name__)


async def _check_connection_budget(engine: AsyncEngine, pool_size: int) -> None:
    """Stop the start (one line naming DATABASE_POOL_SIZE) when this process's connections
    cannot fit in what the PostgreSQL server has free now. The server only shows what is open
    at this moment: other processes' pools grow to their own size under load, so sizing all
    of them together is the operator's part (README, Deployment)."""
    server = await server_connections(engine)
    if pool_size > server.free:
        raise SettingError(
            "database_pool_size",
            f"({pool_size}) does not fit the database server: max_connections is "
            f"{server.max_connections}, {server.reserved} reserved, {server.open} open now; "
            "lower DATABASE_POOL_SIZE or raise the server's max_connections",
        )
    logger.info(
        "Database: up to %d connections for this process; the server allows %d "
        "(%d reserved, %d open now)",
        pool_size,
        server.max_connections,
        server.reserved,
        server.open,
    )


def _chat_locks(settings: Settings, application: BotApp, engine: AsyncEngine) -> ChatLocks | None:
    """Cross-process chat claims, given to the update processor, when other processes may
    share the chats; they use the process's own pool."""
    processor = application.update_processor
    if not shares_chats(settings) or not isinstance(processor, ChatOrderedUpdateProcessor):
        return None
    locks = ChatLocks(engine)
    processor.share_chats(locks, on_busy=application.process_error)
    return locks


@contextlib.asynccontextmanager
async def sweeping(
    application: BotApp, every: float, locks: ChatLocks | None
) -> AsyncIterator[None]:
    """While inside: every few seconds, expire the codes nobody used (cancelling their Verify
    requests), send by SMS the Telegram codes not used in time, delete what has aged out
    (`LoginService.expire_due`), drop web login requests older than a day and chat claims
    that lapsed long ago."""
    task = asyncio.create_task(_sweep(application, every, locks), name="sweeper")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _sweep(application: BotApp, every: float, locks: ChatLocks | None) -> None:
    while True:
        await asyncio.sleep(every)
        services = application.bot_data.services
        if services is None:
            continue
        try:
            await services.login.expire_due()
            await announce_fallbacks(application)
            if services.web is not None:
                await services.web.purge()
            if locks is not None:
                await locks.purge()
        except Exception as error:
            services.metrics.failed(error)
            if not services.database.failed(error):  # an outage is logged once
                logger.exception("Sweeping expired logins failed; trying again later")
        else:
            services.database.answered()
