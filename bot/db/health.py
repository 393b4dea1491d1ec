"""Whether the database answers: an outage is logged once, with its cause, and its end once.

While the database cannot be reached every update fails the same way, and a traceback for
each would bury the one line an operator needs. Whoever catches an error asks
`DatabaseHealth.failed(error)`: True means the database is unreachable, and the caller only
answers (users get the apology); the first such failure logs the outage at ERROR with its
cause. The first success after it (`answered()`) logs that the database is back.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)

# SQLSTATE classes of a lost or refused connection: 08 (connection exception) and 57
# (operator intervention: the server shutting down, restarting, or not accepting yet).
_UNREACHABLE_SQLSTATE_CLASSES = ("08", "57")
# The packages between the bot and the database (SQLAlchemy and the drivers under it).
_DATABASE_PACKAGES = frozenset({"sqlalchemy", "asyncpg", "aiosqlite", "sqlite3"})


def unreachable(error: BaseException) -> bool:
    """Whether an error means the database cannot be reached (down, restarting, or the network
    to it broken) rather than a fault in what was asked of it."""
    return _unreachable_cause(error) is not None


def _unreachable_cause(error: BaseException) -> BaseException | None:
    """The error in the chain that says the database cannot be reached, if one does."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return current.orig or current
        # Refused, reset or timed-out connections, unknown hosts (the drivers raise these
        # themselves, unwrapped, when connecting); the same errors from Telegram's or
        # Vonage's HTTP clients are not the database's.
        if isinstance(current, (OSError, TimeoutError)) and _raised_by_database(current):
            return current
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _UNREACHABLE_SQLSTATE_CLASSES:
            return current
        current = current.__cause__ or current.__context__
    return None


def _raised_by_database(error: BaseException) -> bool:
    """Whether the error was raised in the database's drivers (its traceback passes through
    them)."""
    trace = error.__traceback__
    while trace is not None:
        module = trace.tb_frame.f_globals.get("__name__")
        if isinstance(module, str) and module.partition(".")[0] in _DATABASE_PACKAGES:
            return True
        trace = trace.tb_next
    return False


class DatabaseHealth:
    """The database's state as the bot last saw it: reachable, or down since when."""

    def __init__(self) -> None:
        self._down_since: float | None = None

    @property
    def down(self) -> bool:
        """Whether the last thing tried found the database unreachable."""
        return self._down_since is not None

    def failed(self, error: BaseException) -> bool:
        """Whether `error` is the database being unreachable (logged once per outage, with its
        cause); False for any other error, which the caller reports itself."""
        cause = _unreachable_cause(error)
        if cause is None:
            return False
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.error(
                "The database cannot be reached (%s: %s); updates are answered with an "
                "apology until it is back",
                type(cause).__name__,
                str(cause)[:200],
            )
        return True

    def answered(self) -> None:
        """The database answered: the end of an outage, if there was one, is logged."""
        if self._down_since is not None:
            logger.warning(
                "The database answers again, after %.0f s unreachable",
                time.monotonic() - self._down_since,
            )
            self._down_since = None
