"""No secret, PIN or full phone number reaches a log line, even at DEBUG."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot import logs, texts
from bot.config import Settings
from bot.demo.sandbox import FakeTelegram, FakeVerify
from bot.telegram.handlers.base import BotApp
from tests.helpers import (
    GATEWAY_TOKEN,
    HASH_KEY,
    TOKEN,
    VONAGE_SECRET,
    Chat,
    refuse_new_logins,
)


@pytest.fixture
def verbose_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture everything at DEBUG, with third-party loggers held where the bot holds them."""
    names = ["", *logs.QUIET_LOGGERS]
    saved = {name: logging.getLogger(name).level for name in names}
    caplog.set_level(logging.DEBUG)
    logs.quiet_third_parties("DEBUG")
    yield caplog
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


async def _whole_login(chat: Chat, verify: FakeVerify) -> str:
    """A login with everything that logs: a wrong code, a Verify failure, the right code,
    /whoami and /logout. Returns the right code."""
    await chat.send("/login")
    await chat.number("+44 7400 123123")
    right = verify.last_code()
    await chat.say("000000" if right != "000000" else "111111")
    verify.fail_next(500, path_kind="check")
    await chat.say(right)
    await chat.say(right)
    await chat.say("/whoami")
    await chat.say("/logout")
    await chat.quiet()
    return right


async def test_logs_of_a_whole_login_hold_no_token_secret_pin_or_number(
    verbose_logs: pytest.LogCaptureFixture, tg: FakeTelegram, chat: Chat, verify: FakeVerify
) -> None:
    right = await _whole_login(chat, verify)

    # The stand-in servers are the test's, not the product's: their debug lines do not count.
    product = [r for r in verbose_logs.records if not r.name.startswith("bot.demo.sandbox")]
    text = "\n".join(verbose_logs.handler.format(r) for r in product)
    assert "Code sent to +44******123" in text  # the masked form is what logs carry
    for secret in (TOKEN, VONAGE_SECRET, right, "447400123123", "7400123123", "7400 123123"):
        assert secret not in text, secret


def test_redaction_filter_removes_known_secrets_from_messages_and_tracebacks() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "url %s", (f"/bot{TOKEN}/x",), None)
    try:
        raise RuntimeError(f"failed https://host/bot{TOKEN}/getMe")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    logs.RedactSecrets([TOKEN]).filter(record)
    assert TOKEN not in record.getMessage()
    assert record.exc_text is not None
    assert TOKEN not in record.exc_text
    assert "<redacted>" in record.exc_text


@contextlib.contextmanager
def _bot_logging(level: str, form: str) -> Iterator[Callable[[], str]]:
    """The bot process's own logging (`logs.configure`, as `python -m bot` sets it up), its
    handler writing to a buffer instead of stderr; gives a reader of what it wrote."""
    root = logging.getLogger()
    names = ["", *logs.QUIET_LOGGERS]
    saved_levels = {name: logging.getLogger(name).level for name in names}
    saved_handlers = root.handlers[:]
    logs.configure(level, secrets=[TOKEN, VONAGE_SECRET], form=form)
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    try:
        yield buffer.getvalue
    finally:
        root.handlers[:] = saved_handlers
        for name, level_before in saved_levels.items():
            logging.getLogger(name).setLevel(level_before)


@pytest.fixture
def bot_logging() -> Iterator[Callable[[], str]]:
    """The bot's log as LOG_LEVEL=INFO writes it."""
    with _bot_logging("INFO", "text") as read:
        yield read


@pytest.fixture
def json_logging() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The bot's log as LOG_FORMAT=json LOG_LEVEL=DEBUG writes it, read back line by line
    (every line must be one JSON object)."""
    with _bot_logging("DEBUG", "json") as read:
        yield lambda: [json.loads(line) for line in read().splitlines()]


async def _login_the_database_refuses(database_url: str, chat: Chat, verify: FakeVerify) -> None:
    """A login whose last step fails on a database error naming the number (answered with
    the apology)."""
    await refuse_new_logins(database_url)
    await chat.send("/login")
    await chat.number("+44 7400 123123")

    assert await chat.say(verify.last_code()) == texts.APOLOGY
    await chat.quiet()


async def test_a_database_error_naming_the_number_is_logged_with_the_number_masked(
    bot_logging: Callable[[], str], database_url: str, bot: BotApp, chat: Chat, verify: FakeVerify
) -> None:
    await _login_the_database_refuses(database_url, chat, verify)

    logged = bot_logging()
    # The error handler logged the whole error, with the number where the database put it.
    error = logged[logged.index("Unhandled IntegrityError") :]
    assert "Traceback" in error
    assert "+44******123" in error
    for secret in ("+447400123123", "447400123123", "7400123123"):
        assert secret not in logged, logged


def test_numbers_are_masked_in_messages_arguments_exceptions_and_stacks() -> None:
    number = "+447400123123"
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "to %s, %s and +1 201 555 0123", (number, 42), None
    )
    try:
        raise RuntimeError(
            f'DETAIL:  Key (phone_number)=({number}) already exists. "to": "447400123123"'
        )
    except RuntimeError:
        record.exc_info = sys.exc_info()
    record.stack_info = f"Stack (most recent call last):\n  send({number!r})"
    logs.RedactSecrets([]).filter(record)
    assert record.getMessage() == "to +44******123, 42 and +1******123"
    assert record.exc_text is not None
    assert "Key (phone_number)=(+44******123) already exists" in record.exc_text
    assert '"to": "+44******123"' in record.exc_text
    assert record.stack_info == "Stack (most recent call last):\n  send('+44******123')"
    # What logs legitimately carry stays: masked numbers, times, chat and update ids.
    kept = "Code sent to +44******123 at 2026-01-01T10:00:00+00:00 for chat 5123456789"
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, kept, None, None)
    logs.RedactSecrets([]).filter(plain)
    assert plain.getMessage() == kept


async def test_json_logs_of_a_whole_login_at_debug_are_json_lines_with_nothing_private(
    json_logging: Callable[[], list[dict[str, Any]]], chat: Chat, verify: FakeVerify
) -> None:
    right = await _whole_login(chat, verify)

    lines = json_logging()
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
    # The stand-in servers are the test's, not the product's: their lines do not count.
    product = [line for line in lines if not line["logger"].startswith("bot.demo.sandbox")]
    assert any(line["level"] == "DEBUG" for line in product)
    sent = [line for line in product if line.get("outcome") == "code_sent"]
    assert sent == [{**sent[0], "chat_id": chat.id, "number": "+44******123"}]
    assert any(line.get("outcome") == "verified" for line in product)
    assert any(isinstance(line.get("duration"), float) for line in product)
    text = json.dumps(product)
    for secret in (TOKEN, VONAGE_SECRET, right, "447400123123", "7400123123", "7400 123123"):
        assert secret not in text, secret


async def test_a_traceback_in_json_logs_has_the_number_masked(
    json_logging: Callable[[], list[dict[str, Any]]],
    database_url: str,
    bot: BotApp,
    chat: Chat,
    verify: FakeVerify,
) -> None:
    await _login_the_database_refuses(database_url, chat, verify)

    lines = json_logging()
    (error,) = [line for line in lines if line["message"].startswith("Unhandled IntegrityError")]
    assert error["level"] == "ERROR"
    assert "Traceback" in error["exc_info"]
    assert "+44******123" in error["exc_info"]
    text = json.dumps(lines)
    for secret in ("+447400123123", "447400123123", "7400123123"):
        assert secret not in text, secret


def test_fields_given_with_extra_are_redacted_as_the_message_is() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "started", None, None)
    record.number = "+447400123123"
    record.url = f"https://host/bot{TOKEN}/getMe"
    record.chat_id = 5123456789
    logs.RedactSecrets([TOKEN]).filter(record)
    line = json.loads(logs.JsonLines().format(record))
    assert line["number"] == "+44******123"
    assert line["url"] == "https://host/bot<redacted>/getMe"
    assert line["chat_id"] == 5123456789
    assert (line["level"], line["logger"], line["message"]) == ("INFO", "x", "started")


def _signing_key() -> str:
    """An RSA key as OIDC_SIGNING_KEY takes it (PEM text)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_every_secret_setting_and_the_database_password_are_kept_out_of_the_log() -> None:
    given: dict[str, Any] = {
        "telegram_bot_token": TOKEN,
        "telegram_gateway_token": GATEWAY_TOKEN,
        "vonage_api_key": "vkey",
        "vonage_api_secret": VONAGE_SECRET,
        "vonage_application_id": "app",
        "vonage_private_key": "-----BEGIN PRIVATE KEY-----\nvonage\n-----END PRIVATE KEY-----\n",
        "webhook_url": "https://bot.example/hook",
        "webhook_secret": "webhook-secret-0123456789",
        "number_hash_key": HASH_KEY,
        "oidc_issuer": "https://login.example",
        "oidc_signing_key": _signing_key(),
        "database_url": "postgresql+asyncpg://bot:db-password-42@db.example/bot",
    }
    secret_settings = sorted(
        name
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    )
    # A secret setting added later is given a value here too, or this fails.
    assert set(secret_settings) <= given.keys()
    settings = Settings(_env_file=None, **given)
    values = [getattr(settings, name).get_secret_value() for name in secret_settings]
    values.append("db-password-42")
    text = " | ".join(values)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, text, None, None)
    logs.RedactSecrets(settings.secrets()).filter(record)
    assert record.getMessage() == " | ".join(["<redacted>"] * len(values))
