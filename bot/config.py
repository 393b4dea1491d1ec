"""Settings, read from the environment and a `.env` file, validated once at start.

Every name here is part of the product's public interface (operators script against them):
add settings, never rename them. The README has a table with one line per setting.
"""

from __future__ import annotations

import hashlib
import ipaddress
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import phonenumbers
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from bot.login import phone
from bot.login.steps import GATEWAY_CHANNEL

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///bot.db"

# Numbers are hashed under NUMBER_HASH_KEY; with a short or public key a hash is reversed by
# hashing every number of a country, so `/forget` would not anonymise.
HASH_KEY_MIN_BYTES = 32
_MAKE_A_KEY = 'python -c "import secrets; print(secrets.token_hex(32))"'
HASH_KEY_MISSING = (
    f"is missing: set it to a random value of at least {HASH_KEY_MIN_BYTES} bytes, made "
    f"for example with `{_MAKE_A_KEY}` (keep it: the command line needs the same key)"
)

# Channels that need nothing but the number (WhatsApp would need a business sender); the
# Telegram Gateway's goes first, with Vonage's after it to fall back on.
_VALID_CHANNELS = ("telegram", "sms", "voice")
# The Gateway's codes are 4 to 8 digits.
GATEWAY_MAX_CODE_LENGTH = 8


def _split_csv(value: Any) -> Any:
    """Turn `"1, 2,3"` into `["1", "2", "3"]`; empty text into an empty list."""
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class DatabaseSettings(BaseSettings):
    """The one setting the command line needs: where the database is."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str = Field(default=DEFAULT_DATABASE_URL, min_length=1)
    # Empty is allowed here: commands that never hash a number run without it (`hash_key`).
    number_hash_key: SecretStr = SecretStr("")

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                "(for example sqlite+aiosqlite:///bot.db)"
            )
        return value

    @field_validator("number_hash_key")
    @classmethod
    def _strong_key(cls, value: SecretStr) -> SecretStr:
        size = len(value.get_secret_value().encode())
        if 0 < size < HASH_KEY_MIN_BYTES:
            raise ValueError(
                f"too short ({size} bytes); use at least {HASH_KEY_MIN_BYTES} random bytes, "
                f"for example from `{_MAKE_A_KEY}`"
            )
        return value

    def secrets(self) -> list[str]:
        """Every secret these settings hold, for the log's redaction filter: each `SecretStr`
        setting that is set (by its type, so a new secret setting is covered without a list
        to keep) and the database password."""
        found = [
            value.get_secret_value()
            for value in (getattr(self, name) for name in type(self).model_fields)
            if isinstance(value, SecretStr) and value.get_secret_value()
        ]
        password = make_url(self.database_url).password
        if password:
            found.append(str(password))
        return found

    def __repr_args__(self) -> Any:
        # repr() and str() of the settings end up in logs and tracebacks: no password there.
        for name, value in super().__repr_args__():
            if name == "database_url" and isinstance(value, str):
                value = make_url(value).render_as_string(hide_password=True)
            yield name, value


class ReportSettings(DatabaseSettings):
    """What the command line's reports need besides the database: the channels codes go by
    and their prices, which turn sends into an estimated spend."""

    verify_workflow: Annotated[list[str], NoDecode] = ["sms", "voice"]
    # Empty means unknown: the spend is then reported as unknown, never guessed.
    price_per_sms: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=6)
    price_per_voice_call: Decimal | None = Field(
        default=None, ge=0, max_digits=12, decimal_places=6
    )
    price_per_gateway_code: Decimal | None = Field(
        default=None, ge=0, max_digits=12, decimal_places=6
    )
    price_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")

    @field_validator("verify_workflow", mode="before")
    @classmethod
    def _workflow_csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("verify_workflow")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        channels = [v.lower() for v in value]
        if not channels:
            raise ValueError("needs at least one channel, for example sms,voice")
        unknown = [c for c in channels if c not in _VALID_CHANNELS]
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r}; use telegram, sms or voice")
        if len(set(channels)) != len(channels):
            raise ValueError("lists a channel twice")
        if GATEWAY_CHANNEL in channels[1:]:
            raise ValueError("has telegram only first, for example telegram,sms,voice")
        if channels == [GATEWAY_CHANNEL]:
            raise ValueError("needs sms or voice after telegram to fall back on (telegram,sms)")
        return channels

    @field_validator(
        "price_per_sms", "price_per_voice_call", "price_per_gateway_code", mode="before"
    )
    @classmethod
    def _empty_is_unknown(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class Settings(ReportSettings):
    """Everything the running bot needs."""

    telegram_bot_token: SecretStr = Field(min_length=1)
    telegram_base_url: str = "https://api.telegram.org/bot"
    # Telegram's documented flood limit; 0 turns our side of it off (429s are still obeyed).
    telegram_max_messages_per_second: float = Field(default=30, ge=0)
    # Updates handled at once (different chats; one chat's updates are always in order).
    # 1 is python-telegram-bot's own sequential processing, except where webhook processes
    # share PostgreSQL: they keep their cross-process ordering (`bot.app.update_processor`).
    max_concurrent_updates: int = Field(default=256, ge=1, le=4096)
    # Server connections one bot process opens at most (PostgreSQL; SQLite uses one): every
    # update's queries and its chat's claim share them. Processes x this must fit the
    # server's max_connections (checked at start as far as the server can tell).
    database_pool_size: int = Field(default=10, ge=1, le=1000)

    # The Telegram Gateway (VERIFY_WORKFLOW starting with telegram).
    telegram_gateway_token: SecretStr | None = None
    telegram_gateway_url: str = "https://gatewayapi.telegram.org/"

    vonage_api_key: str | None = None
    vonage_api_secret: SecretStr | None = None
    vonage_application_id: str | None = None
    vonage_private_key: SecretStr | None = None
    vonage_api_host: str = "api.nexmo.com"
    vonage_brand: str = Field(default="Login", min_length=1, max_length=16)
    vonage_timeout_seconds: int = Field(default=10, ge=1, le=120)
    vonage_max_concurrency: int = Field(default=128, ge=1, le=1024)

    bot_admin_ids: Annotated[list[int], NoDecode] = []

    verify_code_length: int = Field(default=6, ge=6, le=10)
    verify_code_ttl_seconds: int = Field(default=600, ge=60, le=600)
    verify_channel_timeout: int = Field(default=300, ge=15, le=900)
    verify_max_attempts: int = Field(default=3, ge=1, le=10)

    # A contact the user shares from the button, their own, logs them in without a code.
    trust_telegram_contact: bool = False

    limit_cooldown_seconds: int = Field(default=60, ge=0)
    limit_starts_per_hour: int = Field(default=5, ge=1)
    limit_starts_per_day: int = Field(default=10, ge=1)
    limit_global_starts_per_hour: int = Field(default=1000, ge=1)
    allowed_country_codes: Annotated[list[int], NoDecode] = []
    denied_country_codes: Annotated[list[int], NoDecode] = []
    # ISO 3166 alpha-2, as phonenumbers reports a number's region (+1 876 is JM, not US).
    allowed_regions: Annotated[list[str], NoDecode] = []
    denied_regions: Annotated[list[str], NoDecode] = []
    denied_number_prefixes: Annotated[list[str], NoDecode] = []

    # How long the audit trail keeps its events.
    audit_retention_days: int = Field(default=400, ge=1, le=36500)

    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    # Proxies whose X-Forwarded-For is believed (the web login's per-address limit).
    webhook_trusted_proxies: Annotated[
        list[ipaddress.IPv4Network | ipaddress.IPv6Network], NoDecode
    ] = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]

    # Logging in to websites (OpenID Connect): on when OIDC_ISSUER is set.
    oidc_issuer: str | None = None
    oidc_signing_key: SecretStr | None = None
    limit_web_requests_per_ip_per_hour: int = Field(default=30, ge=1)
    limit_web_requests_per_client_per_hour: int = Field(default=1000, ge=1)

    # Prometheus metrics in polling mode (webhook mode serves /metrics on the webhook server).
    metrics_listen: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)

    log_level: str = "INFO"
    log_format: str = "text"

    @field_validator(
        "bot_admin_ids",
        "allowed_country_codes",
        "denied_country_codes",
        "allowed_regions",
        "denied_regions",
        "denied_number_prefixes",
        "webhook_trusted_proxies",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("webhook_trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        networks = []
        for item in value:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network such as 10.0.0.0/8"
                ) from None
        return networks

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        if not value:
            return None
        problem = (
            "must be the public https:// base URL of the login, such as https://login.example.com"
        )
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise ValueError(problem) from None
        local = parts.scheme == "http" and is_loopback(parts.hostname)
        if not (parts.scheme == "https" or local) or not parts.hostname:
            raise ValueError(problem + " (plain http only on localhost)")
        if parts.query or parts.fragment or "#" in value or parts.username or parts.password:
            raise ValueError(problem + " (no query, fragment or user name)")
        return value.rstrip("/")

    @field_validator("allowed_country_codes", "denied_country_codes")
    @classmethod
    def _calling_codes(cls, value: list[int]) -> list[int]:
        for code in value:
            if not phonenumbers.region_codes_for_country_code(code):
                raise ValueError(f"{code} is not a country calling code (such as 44 or 49)")
        return value

    @field_validator("allowed_regions", "denied_regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        regions = [code.upper() for code in value]
        for code in regions:
            if not phone.is_region(code):
                raise ValueError(
                    f"{code!r} is not a region code (ISO 3166 alpha-2 such as GB, US or JM)"
                )
        return regions

    @field_validator("denied_number_prefixes")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not (prefix.startswith("+") and prefix[1:].isdigit()):
                raise ValueError(f"{prefix!r} is not an E.164 prefix such as +4470")
        return value

    @field_validator("telegram_base_url", "telegram_gateway_url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        if value.startswith("https://"):
            return value
        # A token travels with every call: in clear only to a server on this machine.
        if not (value.startswith("http://") and is_loopback(urlsplit(value).hostname)):
            example = (
                "https://gatewayapi.telegram.org/"
                if info.field_name == "telegram_gateway_url"
                else "https://api.telegram.org/bot"
            )
            raise ValueError(
                f"must be https:// (such as {example}); plain http:// only "
                "to a server on this machine (127.0.0.1, ::1 or localhost)"
            )
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith("https://") or len(value) < 10:
            raise ValueError("must be the public https:// URL Telegram posts updates to")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        secret = value.get_secret_value()
        allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
        if not 16 <= len(secret) <= 256 or not set(secret) <= allowed:
            raise ValueError(
                "must be 16-256 characters of A-Z, a-z, 0-9, _ and - "
                "(for example from `openssl rand -hex 32`)"
            )
        return value

    @field_validator("vonage_api_host")
    @classmethod
    def _api_host(cls, value: str) -> str:
        host, _, port = value.partition(":")
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
        if not host or not set(host) <= allowed or (port and not port.isdigit()):
            raise ValueError("must be a host name such as api.nexmo.com (no https://, no path)")
        return value

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _unset_port(cls, value: Any) -> Any:
        # `METRICS_PORT=` (as .env.example has it) means no metrics server.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        form = value.lower()
        if form not in ("text", "json"):
            raise ValueError("must be text or json")
        return form

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @model_validator(mode="after")
    def _vonage_credentials(self) -> Settings:
        has_key = bool(self.vonage_api_key) or self.vonage_api_secret is not None
        has_app = bool(self.vonage_application_id) or self.vonage_private_key is not None
        if has_app:
            if not self.vonage_application_id:
                raise SettingError("vonage_application_id", "is needed with VONAGE_PRIVATE_KEY")
            if self.vonage_private_key is None:
                raise SettingError("vonage_private_key", "is needed with VONAGE_APPLICATION_ID")
            self.vonage_private_key = SecretStr(
                _read_private_key(self.vonage_private_key, "vonage_private_key")
            )
        elif has_key:
            if not self.vonage_api_key:
                raise SettingError("vonage_api_key", "is needed with VONAGE_API_SECRET")
            if self.vonage_api_secret is None or not self.vonage_api_secret.get_secret_value():
                raise SettingError("vonage_api_secret", "is needed with VONAGE_API_KEY")
        else:
            raise SettingError(
                "vonage_api_key",
                "is missing: set VONAGE_API_KEY and VONAGE_API_SECRET, "
                "or VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY",
            )
        if self.webhook_url and self.webhook_secret is None:
            raise SettingError(
                "webhook_secret",
                "is needed with WEBHOOK_URL: a random string that Telegram sends back with "
                "every update (for example from `openssl rand -hex 32`)",
            )
        self._regions_reachable()
        self._gateway_usable()
        if self.oidc_signing_key is not None:
            if not self.oidc_signing_key.get_secret_value():
                self.oidc_signing_key = None
            else:
                pem = _read_private_key(self.oidc_signing_key, "oidc_signing_key")
                from bot.login.oidc_keys import load_key

                try:
                    load_key(pem)
                except ValueError as error:
                    raise SettingError("oidc_signing_key", str(error)) from None
                self.oidc_signing_key = SecretStr(pem)
        if self.verify_channel_timeout * len(self.verify_workflow) > self.verify_code_ttl_seconds:
            raise SettingError(
                "verify_channel_timeout",
                f"times {len(self.verify_workflow)} channels must fit in "
                f"VERIFY_CODE_TTL_SECONDS ({self.verify_code_ttl_seconds})",
            )
        if self.limit_starts_per_hour > self.limit_starts_per_day:
            raise SettingError(
                "limit_starts_per_hour",
                f"({self.limit_starts_per_hour}) must not be above LIMIT_STARTS_PER_DAY "
                f"({self.limit_starts_per_day}): the daily limit would never be reached first",
            )
        return self

    @model_validator(mode="after")
    def _hash_key_is_set(self) -> Settings:
        # After the other checks, so a fresh setup is first told about the token.
        if not self.number_hash_key.get_secret_value():
            raise SettingError("number_hash_key", HASH_KEY_MISSING)
        return self

    def _gateway_usable(self) -> None:
        """With telegram in VERIFY_WORKFLOW: its token is set and the code fits the Gateway."""
        token = self.telegram_gateway_token
        if token is not None and not token.get_secret_value():
            self.telegram_gateway_token = token = None
        if GATEWAY_CHANNEL not in self.verify_workflow:
            return
        if token is None:
            raise SettingError(
                "telegram_gateway_token",
                "is needed with telegram in VERIFY_WORKFLOW: the token of your Telegram "
                "Gateway account (https://gateway.telegram.org/account/api)",
            )
        if self.verify_code_length > GATEWAY_MAX_CODE_LENGTH:
            raise SettingError(
                "verify_code_length",
                f"must be at most {GATEWAY_MAX_CODE_LENGTH} with telegram in VERIFY_WORKFLOW "
                "(the Gateway sends 4 to 8 digits)",
            )

    def _regions_reachable(self) -> None:
        """An allowed region that the other destination settings shut out is a mistake: no
        number there could ever get a code."""
        for region in self.allowed_regions:
            code = phone.region_calling_code(region)
            if self.allowed_country_codes and code not in self.allowed_country_codes:
                blocker = f"whose calling code {code} is not in ALLOWED_COUNTRY_CODES"
            elif code in self.denied_country_codes:
                blocker = f"whose calling code {code} is in DENIED_COUNTRY_CODES"
            elif region in self.denied_regions:
                blocker = "which DENIED_REGIONS lists too"
            else:
                continue
            raise SettingError(
                "allowed_regions", f"lists {region}, {blocker}: no number there could get a code"
            )


def is_loopback(host: str | None) -> bool:
    """`localhost` or a loopback address (where plain http is acceptable)."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hash_key(settings: DatabaseSettings) -> bytes:
    """The key for hashing numbers in counters and the audit trail, from NUMBER_HASH_KEY.
    SettingError when it is not set: the bot's settings never lack it, and a command-line
    command that hashes a number (to find its history, or to record a lookup) needs the
    bot's own key."""
    secret = settings.number_hash_key.get_secret_value()
    if not secret:
        raise SettingError("number_hash_key", HASH_KEY_MISSING)
    return hashlib.sha256(b"phone-login-bot:" + secret.encode()).digest()


class SettingError(ValueError):
    """A setting that is wrong in a way only visible with the others."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


def _read_private_key(value: SecretStr, name: str) -> str:
    """Accept the PEM text itself or a path to a file holding it (setting `name`)."""
    text = value.get_secret_value()
    if "-----BEGIN" in text:
        return text.replace("\\n", "\n")
    path = Path(text).expanduser()
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        raise SettingError(name, "must be PEM text or the path of a readable key file") from None


def describe_error(error: ValidationError | SettingError) -> str:
    """One line naming the first bad setting and how to fix it (no values: they may be secret)."""
    if isinstance(error, SettingError):
        return f"{error.name.upper()} {error.message}"
    first = error.errors()[0]
    name = str(first["loc"][0]).upper() if first["loc"] else "SETTINGS"
    if first["type"] == "missing":
        return f"{name} is missing: set it in the environment or in .env (see README)"
    ctx = first.get("ctx") or {}
    inner = ctx.get("error")
    if isinstance(inner, SettingError):
        return f"{inner.name.upper()} {inner.message}"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{name} is invalid: {message}"
