"""The bot's Prometheus metrics: every figure an operator watches, defined once.

Each running bot (`bot.telegram.lifecycle.running`) has its own `Metrics` on its own
registry, so several bots in one process (the tests, the demo) count apart and none touches
prometheus-client's global registry. `bot.telegram.metrics_http` serves them as
`GET /metrics`. Every label takes values from a bounded set (regions, channels, rules,
outcomes, failure kinds, Bot API methods, update types): never a chat id, a number or a
token, which would also make one series per user.

The call sites are one line each, at the seams: the login service (starts, code checks,
logins, limits), the Verify client (call latency), the Bot API client (call latency, 429s),
the application (updates) and the error handler (database errors).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.exc import SQLAlchemyError

# Outcomes of a verification start (`outcome` label); `reason` says which rule or kind.
SENT = "sent"  # Vonage started a new request
REUSED = "reused"  # a request already running for the chat was taken over
REFUSED = "refused"  # a destination rule: never sent there (reason: the rule)
LIMITED = "limited"  # a rate limit (reason: the rule)
FAILED = "failed"  # Vonage did not start it (reason: the failure kind)

# How a login attempt ended (`outcome` label of the logins counter).
LOGIN_OUTCOMES = ("completed", "cancelled", "expired", "failed")

# Bot API methods are names of letters; anything else (a file path) is counted as "other".
_OTHER = "other"


class Metrics:
    """The metric objects of one running bot, and the few helpers their call sites use."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.verification_starts = Counter(
            "phone_login_verification_starts",
            "Verification starts asked for, by destination region (ISO 3166), first channel "
            "and outcome (sent, reused, refused, limited, failed); reason is the rule or "
            "failure kind",
            ["region", "channel", "outcome", "reason"],
            registry=registry,
        )
        self.code_checks = Counter(
            "phone_login_code_checks",
            "Codes users gave, by result (verified, wrong, too_many, expired, unavailable, "
            "no_flow) and the region of the number they were sent to (empty: no code sent)",
            ["result", "region"],
            registry=registry,
        )
        self.logins = Counter(
            "phone_login_logins",
            "Login attempts that ended, by outcome (completed, cancelled, expired, failed)",
            ["outcome"],
            registry=registry,
        )
        self.limits_tripped = Counter(
            "phone_login_limits_tripped",
            "Starts refused by a limit or a destination rule, by rule",
            ["rule"],
            registry=registry,
        )
        self.provider_calls = Histogram(
            "phone_login_provider_call_seconds",
            "Calls to a code provider (verify: Vonage Verify), by operation (start, check, "
            "cancel, next) and outcome (ok or the failure kind)",
            ["provider", "operation", "outcome"],
            registry=registry,
        )
        self.telegram_calls = Histogram(
            "phone_login_telegram_call_seconds",
            "Bot API calls on the wire, by method and HTTP status (or timeout, network)",
            ["method", "status"],
            registry=registry,
        )
        self.telegram_rate_limited = Counter(
            "phone_login_telegram_rate_limited",
            "Bot API calls Telegram answered with 429 (flood control), by method",
            ["method"],
            registry=registry,
        )
        self.updates = Histogram(
            "phone_login_update_handling_seconds",
            "Updates handled, by type, with the time from the first handler to the last",
            ["type"],
            registry=registry,
        )
        self.updates_in_flight = Gauge(
            "phone_login_updates_in_flight",
            "Updates being handled by this process now",
            registry=registry,
        )
        self.updates_waiting = Gauge(
            "phone_login_updates_waiting",
            "Updates this process received and has not started handling (queued, or waiting "
            "for their chat's earlier updates or a free slot)",
            registry=registry,
        )
        self.database_errors = Counter(
            "phone_login_database_errors",
            "Database errors that stopped an update, a sweep or an HTTP request, by SQLAlchemy "
            "error class",
            ["kind"],
            registry=registry,
        )
        self.web_logins = Counter(
            "phone_login_web_logins",
            "Logins to websites through the bot (OpenID Connect), by registered client id and "
            "outcome (opened, approved, exchanged, refused); reason is the refusal's",
            ["client", "outcome", "reason"],
            registry=registry,
        )
        # Series that exist from the start, so rates and alerts see zeros, not gaps.
        for outcome in LOGIN_OUTCOMES:
            self.logins.labels(outcome)

    def start(self, *, region: str, channel: str, outcome: str, reason: str = "") -> None:
        """A verification start and what became of it; a refusal also trips its rule."""
        self.verification_starts.labels(region, channel, outcome, reason).inc()
        if outcome in (REFUSED, LIMITED):
            self.limits_tripped.labels(reason).inc()

    def code_checked(self, result: str, region: str) -> None:
        """A code a user gave, and its result."""
        self.code_checks.labels(result, region).inc()

    def login_ended(self, outcome: str) -> None:
        """A login attempt ended (one of LOGIN_OUTCOMES)."""
        self.logins.labels(outcome).inc()

    def failed(self, error: BaseException) -> None:
        """Work that stopped on `error` (an update, a sweep, an HTTP request): counted if the
        database's."""
        if isinstance(error, SQLAlchemyError):
            self.database_errors.labels(type(error).__name__).inc()

    def web_login(self, client: str | None, outcome: str, reason: str = "") -> None:
        """A step of a website's login: its page opened, approved in Telegram, its code
        exchanged, or refused (`client` only ever a registered client's id; `-` when none
        is known, so a made-up client id never becomes a series)."""
        self.web_logins.labels(client or "-", outcome, reason).inc()

    def provider_call(
        self, operation: str, outcome: str, seconds: float, *, provider: str = "verify"
    ) -> None:
        """One call to a code provider (`verify`: Vonage Verify; another provider's client
        names itself) and how long it took."""
        self.provider_calls.labels(provider, operation, outcome).observe(seconds)

    def telegram_call(self, url: str, status: str, seconds: float) -> None:
        """One Bot API call (its URL, token included, is reduced to the method name)."""
        method = url.rpartition("/")[2]
        if not method.isalpha():
            method = _OTHER
        self.telegram_calls.labels(method, status).observe(seconds)
        if status == "429":
            self.telegram_rate_limited.labels(method).inc()
