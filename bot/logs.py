"""Logging that is safe to ship: no bot token, no Vonage secret, no PIN, no full number.

Our own lines only ever carry masked numbers. Third-party loggers that print URLs (httpx: the
token is in every Bot API URL) or request bodies (the Vonage SDK at DEBUG: numbers and codes)
are held at WARNING or above whatever LOG_LEVEL says, and a filter replaces the secrets we
know of anywhere they might still appear.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

# logger name -> the most verbose level it may ever log at
QUIET_LOGGERS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "telegram": logging.INFO,
    "telegram.ext.ExtBot": logging.WARNING,
    "vonage": logging.ERROR,
    "urllib3": logging.WARNING,
    "aiohttp.access": logging.WARNING,
    "aiohttp.client": logging.WARNING,
    "apscheduler": logging.WARNING,
    # database drivers log statements with their parameters (numbers) at DEBUG
    "aiosqlite": logging.WARNING,
    "asyncpg": logging.WARNING,
    "sqlalchemy": logging.WARNING,
}


_FORMATTER = logging.Formatter()


class RedactSecrets(logging.Filter):
    """Replaces known secret values in a record's final text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Exception texts can carry request URLs; format now so they can be redacted.
            record.exc_text = self._redact(_FORMATTER.formatException(record.exc_info))
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text


def configure(level: str, *, secrets: Iterable[str] = ()) -> None:
    """Set up the root handler for the bot process."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_third_parties(level)


def quiet_third_parties(level: str | int) -> None:
    """Hold the chatty libraries at their safe levels."""
    wanted = logging.getLevelName(level) if isinstance(level, str) else level
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, wanted))
