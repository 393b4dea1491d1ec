"""Settings: the committed example is valid, and every bad value is named in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.config import SettingError, Settings, describe_error

ROOT = Path(__file__).resolve().parents[1]
BASE: dict[str, Any] = {
    "telegram_bot_token": "1:x",
    "vonage_api_key": "k",
    "vonage_api_secret": "s",
}


def _error(**values: Any) -> str:
    with pytest.raises((ValidationError, SettingError)) as caught:
        Settings(_env_file=None, **values)
    assert isinstance(caught.value, (ValidationError, SettingError))
    return describe_error(caught.value)


def test_env_example_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TELEGRAM_BOT_TOKEN", "VONAGE_API_KEY", "VONAGE_API_SECRET", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=ROOT / ".env.example")
    assert settings.vonage_brand == "AcmeLogin"
    assert settings.bot_admin_ids == []
    assert settings.limit_cooldown_seconds == 60


def test_lists_are_comma_separated() -> None:
    settings = Settings(
        _env_file=None,
        **BASE,
        bot_admin_ids="1, 2,3",
        allowed_country_codes="44,49",
        denied_number_prefixes="+4470",
        verify_workflow="voice",
        verify_channel_timeout=600,
    )
    assert settings.bot_admin_ids == [1, 2, 3]
    assert settings.allowed_country_codes == [44, 49]
    assert settings.denied_number_prefixes == ["+4470"]
    assert settings.verify_workflow == ["voice"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"allowed_country_codes": "44,999"}, "ALLOWED_COUNTRY_CODES is invalid: 999 is not"),
        ({"denied_number_prefixes": "4470"}, "DENIED_NUMBER_PREFIXES is invalid: '4470'"),
        ({"verify_workflow": "sms,fax"}, "VERIFY_WORKFLOW is invalid: unknown channel 'fax'"),
        ({"verify_channel_timeout": 400}, "VERIFY_CHANNEL_TIMEOUT times 2 channels must fit"),
        ({"webhook_url": "https://bot.example/hook"}, "WEBHOOK_SECRET is needed with WEBHOOK_URL"),
        ({"webhook_url": "http://bot.example/hook", "webhook_secret": "abc"}, "WEBHOOK_URL is"),
        ({"webhook_url": "https://b.example/h", "webhook_secret": "a b"}, "WEBHOOK_SECRET is"),
        ({"log_level": "LOUD"}, "LOG_LEVEL is invalid"),
        ({"webhook_url": "https://b.example/h", "webhook_secret": "short"}, "WEBHOOK_SECRET is"),
        ({"vonage_api_host": "https://api.nexmo.com"}, "VONAGE_API_HOST is invalid"),
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


def test_private_key_may_be_a_path_or_the_pem_text(tmp_path: Path) -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n"
    key_file = tmp_path / "private.key"
    key_file.write_text(pem)
    for value in (str(key_file), pem.replace("\n", "\\n")):
        settings = Settings(
            _env_file=None,
            telegram_bot_token="1:x",
            vonage_application_id="app",
            vonage_private_key=value,
        )
        assert settings.vonage_private_key is not None
        assert settings.vonage_private_key.get_secret_value() == pem
