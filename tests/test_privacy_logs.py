"""No secret, PIN or full phone number reaches a log line, even at DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot import logs
from bot.demo.sandbox import FakeTelegram, FakeVerify
from tests.helpers import TOKEN, VONAGE_SECRET, Chat


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


async def test_logs_of_a_whole_login_hold_no_token_secret_pin_or_number(
    verbose_logs: pytest.LogCaptureFixture, tg: FakeTelegram, chat: Chat, verify: FakeVerify
) -> None:
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
        import sys

        record.exc_info = sys.exc_info()
    logs.RedactSecrets([TOKEN]).filter(record)
    assert TOKEN not in record.getMessage()
    assert record.exc_text is not None
    assert TOKEN not in record.exc_text
    assert "<redacted>" in record.exc_text
