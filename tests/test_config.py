"""Settings: the committed example is valid, and every bad value is named in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.config import SettingError, Settings, describe_error

ROOT = Path(__file__).resolve().parents[1]
KEY = "k" * 32
BASE: dict[str, Any] = {
    "telegram_bot_token": "1:x",
    "vonage_api_key": "k",
    "vonage_api_secret": "s",
    "number_hash_key": KEY,
}


def _error(**values: Any) -> str:
    values.setdefault("_env_file", None)
    with pytest.raises((ValidationError, SettingError)) as caught:
        Settings(**values)
    assert isinstance(caught.value, (ValidationError, SettingError))
    return describe_error(caught.value)


def test_env_example_is_a_valid_configuration_once_it_has_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = ("TELEGRAM_BOT_TOKEN", "VONAGE_API_KEY", "VONAGE_API_SECRET", "DATABASE_URL")
    for name in (*names, "NUMBER_HASH_KEY"):
        monkeypatch.delenv(name, raising=False)
    # The example cannot ship a key (it would be public): copied as it is, it says so.
    assert _error(_env_file=ROOT / ".env.example").startswith("NUMBER_HASH_KEY is missing")
    monkeypatch.setenv("NUMBER_HASH_KEY", KEY)
    settings = Settings(_env_file=ROOT / ".env.example")
    assert settings.vonage_brand == "AcmeLogin"
    assert settings.bot_admin_ids == []
    assert settings.limit_cooldown_seconds == 60


def test_lists_are_comma_separated() -> None:
    settings = Settings(
        _env_file=None,
        **BASE,
        bot_admin_ids="1, 2,3",
        allowed_country_codes="44,49,1",
        allowed_regions="gb, DE,us",
        denied_regions="JE",
        denied_number_prefixes="+4470",
        verify_workflow="voice",
        verify_channel_timeout=600,
    )
    assert settings.bot_admin_ids == [1, 2, 3]
    assert settings.allowed_country_codes == [44, 49, 1]
    assert settings.allowed_regions == ["GB", "DE", "US"]
    assert settings.denied_regions == ["JE"]
    assert settings.denied_number_prefixes == ["+4470"]
    assert settings.verify_workflow == ["voice"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"allowed_country_codes": "44,999"}, "ALLOWED_COUNTRY_CODES is invalid: 999 is not"),
        ({"denied_number_prefixes": "4470"}, "DENIED_NUMBER_PREFIXES is invalid: '4470'"),
        ({"allowed_regions": "GB,UK"}, "ALLOWED_REGIONS is invalid: 'UK' is not a region code"),
        ({"denied_regions": "+1876"}, "DENIED_REGIONS is invalid: '+1876' is not a region"),
        ({"denied_regions": "001"}, "DENIED_REGIONS is invalid: '001' is not a region code"),
        (
            {"allowed_regions": "GB,JM", "allowed_country_codes": "44"},
            "ALLOWED_REGIONS lists JM, whose calling code 1 is not in ALLOWED_COUNTRY_CODES",
        ),
        (
            {"allowed_regions": "US", "denied_country_codes": "1"},
            "ALLOWED_REGIONS lists US, whose calling code 1 is in DENIED_COUNTRY_CODES",
        ),
        (
            {"allowed_regions": "US,JM", "denied_regions": "JM"},
            "ALLOWED_REGIONS lists JM, which DENIED_REGIONS lists too",
        ),
        ({"verify_workflow": "sms,fax"}, "VERIFY_WORKFLOW is invalid: unknown channel 'fax'"),
        ({"verify_workflow": "sms,telegram"}, "VERIFY_WORKFLOW is invalid: has telegram only"),
        ({"verify_workflow": "telegram"}, "VERIFY_WORKFLOW is invalid: needs sms or voice after"),
        (
            {"verify_workflow": "telegram,sms", "telegram_gateway_token": ""},
            "TELEGRAM_GATEWAY_TOKEN is needed with telegram in VERIFY_WORKFLOW",
        ),
        (
            {
                "verify_workflow": "telegram,sms",
                "telegram_gateway_token": "t",
                "verify_code_length": 9,
            },
            "VERIFY_CODE_LENGTH must be at most 8 with telegram in VERIFY_WORKFLOW",
        ),
        (
            {"telegram_gateway_url": "http://gateway.example/"},
            "TELEGRAM_GATEWAY_URL is invalid: must be https:// (such as https://gatewayapi",
        ),
        ({"verify_channel_timeout": 400}, "VERIFY_CHANNEL_TIMEOUT times 2 channels must fit"),
        ({"webhook_url": "https://bot.example/hook"}, "WEBHOOK_SECRET is needed with WEBHOOK_URL"),
        ({"webhook_url": "http://bot.example/hook", "webhook_secret": "abc"}, "WEBHOOK_URL is"),
        ({"webhook_url": "https://b.example/h", "webhook_secret": "a b"}, "WEBHOOK_SECRET is"),
        ({"log_level": "LOUD"}, "LOG_LEVEL is invalid"),
        ({"log_format": "xml"}, "LOG_FORMAT is invalid: must be text or json"),
        ({"metrics_port": "9100x"}, "METRICS_PORT is invalid"),
        ({"metrics_port": 65536}, "METRICS_PORT is invalid"),
        ({"database_pool_size": 0}, "DATABASE_POOL_SIZE is invalid"),
        ({"audit_retention_days": 0}, "AUDIT_RETENTION_DAYS is invalid"),
        ({"webhook_url": "https://b.example/h", "webhook_secret": "short"}, "WEBHOOK_SECRET is"),
        ({"vonage_api_host": "https://api.nexmo.com"}, "VONAGE_API_HOST is invalid"),
        (
            {"limit_starts_per_hour": 11, "limit_starts_per_day": 10},
            "LIMIT_STARTS_PER_HOUR (11) must not be above LIMIT_STARTS_PER_DAY (10)",
        ),
        (
            {"telegram_base_url": "http://bot-api.example/bot"},
            "TELEGRAM_BASE_URL is invalid: must be https://",
        ),
        (
            {"telegram_base_url": "http://127.0.0.1.example/bot"},
            "TELEGRAM_BASE_URL is invalid: must be https://",
        ),
        ({"number_hash_key": ""}, "NUMBER_HASH_KEY is missing: set it to a random value"),
        ({"number_hash_key": "a-long-random-string"}, "NUMBER_HASH_KEY is invalid: too short"),
        (
            {"vonage_private_key": "/nonexistent/key.pem", "vonage_application_id": "a"},
            "VONAGE_PRIVATE_KEY must be PEM text or the path of a readable key file",
        ),
    ],
)
def test_bad_values_are_named_in_one_line(values: dict[str, Any], expected: str) -> None:
    message = _error(**{**BASE, **values})
    assert message.startswith(expected), message
    assert "\n" not in message


def test_the_gateway_token_is_secret_and_the_url_has_its_default() -> None:
    settings = Settings(
        _env_file=None,
        **BASE,
        verify_workflow="telegram,sms,voice",
        telegram_gateway_token="gw-secret-token",
        verify_channel_timeout=200,
    )
    assert settings.verify_workflow == ["telegram", "sms", "voice"]
    assert settings.telegram_gateway_url == "https://gatewayapi.telegram.org/"
    assert "gw-secret-token" not in repr(settings)
    assert "gw-secret-token" not in str(settings)


def test_the_hash_key_error_says_how_to_make_one() -> None:
    message = _error(**{**BASE, "number_hash_key": ""})
    assert 'python -c "import secrets; print(secrets.token_hex(32))"' in message
    assert "\n" not in message


def test_the_token_is_named_first_when_nothing_is_set() -> None:
    # `make run` on a fresh clone: the first thing to set is the token, not the key.
    assert _error().startswith("TELEGRAM_BOT_TOKEN is missing")


@pytest.mark.parametrize(
    "url",
    [
        "https://api.telegram.org/bot",
        "http://127.0.0.1:8081/bot",
        "http://localhost:8081/bot",
        "http://[::1]:8081/bot",
        "http://127.3.4.5/bot",
    ],
)
def test_plain_http_is_allowed_only_to_this_machine(url: str) -> None:
    assert Settings(_env_file=None, **BASE, telegram_base_url=url).telegram_base_url == url


def test_an_empty_metrics_port_means_no_metrics_server_and_json_may_be_capitalised() -> None:
    settings = Settings(_env_file=None, **BASE, metrics_port="", log_format="JSON")
    assert settings.metrics_port is None
    assert settings.log_format == "json"
    assert Settings(_env_file=None, **BASE, metrics_port="9100").metrics_port == 9100


def test_no_cooldown_and_equal_hourly_and_daily_limits_are_allowed() -> None:
    settings = Settings(
        _env_file=None,
        **BASE,
        limit_cooldown_seconds=0,
        limit_starts_per_hour=10,
        limit_starts_per_day=10,
    )
    assert (settings.limit_cooldown_seconds, settings.limit_starts_per_hour) == (0, 10)


def test_repr_and_str_hide_the_database_password() -> None:
    settings = Settings(
        _env_file=None,
        **BASE,
        database_url="postgresql+asyncpg://bot:pa55-w0rd@db.example:5432/bot",
    )
    for shown in (repr(settings), str(settings)):
        assert "pa55-w0rd" not in shown
        assert KEY not in shown
        assert "postgresql+asyncpg://bot:***@db.example:5432/bot" in shown
    # Only the text is masked: the bot still connects with the password.
    assert "pa55-w0rd" in settings.database_url


def test_private_key_may_be_a_path_or_the_pem_text(tmp_path: Path) -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n"
    key_file = tmp_path / "private.key"
    key_file.write_text(pem)
    for value in (str(key_file), pem.replace("\n", "\\n")):
        settings = Settings(
            _env_file=None,
            telegram_bot_token="1:x",
            number_hash_key=KEY,
            vonage_application_id="app",
            vonage_private_key=value,
        )
        assert settings.vonage_private_key is not None
        assert settings.vonage_private_key.get_secret_value() == pem
