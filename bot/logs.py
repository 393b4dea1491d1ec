"""Logging that is safe to ship: no bot token, no Vonage secret, no PIN, no full number.

Our own lines only ever carry masked numbers. Third-party loggers that print URLs (httpx: the
token is in every Bot API URL) or request bodies (the Vonage SDK at DEBUG: numbers and codes)
are held at WARNING or above whatever LOG_LEVEL says, and a filter replaces the secrets we
know of anywhere they might still appear. The same filter masks anything that looks like a
phone number, since errors from elsewhere can carry one (PostgreSQL names the failing row in
a constraint error's DETAIL: `Key (phone_number)=(+447400123123) already exists`).

LOG_FORMAT=json writes one JSON object per line (python-json-logger): `time`, `level`,
`logger`, `message`, the traceback as `exc_info`, and the event's own fields given with
`extra=` (`chat_id`, `number` masked, `outcome`, `duration` in seconds...). The same filter
runs first, on those fields too, so both formats carry exactly what the redaction leaves.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from bot.login.phone import mask

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
    # the plugins it sets up, at every start (the bot migrates in a fresh child process)
    "alembic.runtime.plugins": logging.WARNING,
    # database drivers log statements with their parameters (numbers) at DEBUG
    "aiosqlite": logging.WARNING,
    "asyncpg": logging.WARNING,
    "sqlalchemy": logging.WARNING,
}


_FORMATTER = logging.Formatter()

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("x", logging.INFO, __file__, 1, "", None, None))
) | {"message", "asctime"}

# E.164 as written or spaced (`+447400123123`, `+44 7400 123123`): 7 to 15 digits after `+`.
# Without the `+` only where a key names it, as Verify's `"to"` and Telegram's contact
# `phone_number` do: bare digit runs are mostly chat and update ids, which logs need.
_NUMBER = re.compile(
    r"\+[1-9](?:[ .\-\u00a0]?\d){6,14}(?!\d)"
    r"|(?<=phone_number[\"']: [\"'])\d{7,15}(?!\d)"
    r"|(?<=[\"']to[\"']: [\"'])\d{7,15}(?!\d)"
)


def _mask_number(match: re.Match[str]) -> str:
    digits = "".join(ch for ch in match.group() if ch.isdigit())
    return mask("+" + digits)


class RedactSecrets(logging.Filter):
    """Replaces known secret values in a record's final text (message, exception and stack)
    and masks phone numbers there."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Exception texts can carry request URLs and numbers; format now to redact them.
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, self._redact(value))
        return True

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return _NUMBER.sub(_mask_number, text)


class JsonLines(JsonFormatter):
    """One JSON object per record: time (ISO 8601, UTC), level, logger, message, then the
    record's `extra=` fields and its traceback (`exc_info`)."""

    def __init__(self) -> None:
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
        )

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON, its traceback the text the redaction filter left."""
        if record.exc_info and record.exc_text:
            # python-json-logger formats `exc_info` afresh, which would undo the redaction.
            record = copy.copy(record)
            record.exc_info = None
        return super().format(record)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """`time` first, then the library's fields."""
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat()
        super().add_fields(log_data, record, message_dict)


def configure(level: str, *, secrets: Iterable[str] = (), form: str = "text") -> None:
    """Set up the root handler for the bot process: LOG_LEVEL, LOG_FORMAT (`text`, `json`)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if form == "json" else logging.Formatter(TEXT_FORMAT))
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
