"""SQLite under asyncio in one trip to the database thread per statement.

aiosqlite runs every sqlite3 call on the connection's own thread, one call per trip: the
event loop queues it, the thread wakes, runs it, and wakes the loop again. SQLAlchemy's
aiosqlite adapter makes four such trips for each statement (open a cursor, execute, fetch
the rows, close the cursor), and a login runs about thirty statements: the trips, not the
queries, were most of its CPU time, and more so when updates come one at a time (under the
flood limiter) than in bursts, where one wake-up of the loop serves many.

`OneTripConnection` is aiosqlite's connection with a cursor that does the four in one trip,
fetching the rows with the statement and closing the sqlite3 cursor once they are all read.
A large result (a streamed export) is fetched in chunks, as before. A transaction's BEGIN
goes with its first statement, and so needs no trip of its own; a rollback with nothing to
undo (the pool resets every connection it gets back) needs none either. Everything else
(commit, close, the thread) is aiosqlite's. `make_engine` uses it for every SQLite database;
the queries, the sessions and the transactions are the same without it.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import make_url
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite

# Rows read with the statement. More come by further trips, as a streaming reader asks for
# them, so a large result is never held whole because of this.
FIRST_ROWS = 256

T = TypeVar("T")

_Description = tuple[tuple[Any, ...], ...] | None


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors run a statement in one trip (see the module)."""

    # The BEGIN statement to run before the next statement, commit or rollback, if any.
    _begin: str | None = None

    def begin_with_next_statement(self, sql: str) -> None:
        """Open a transaction with `sql` (BEGIN IMMEDIATE...) in the trip of the next
        statement: nothing reaches the database in between, so it is the same transaction.
        A failing BEGIN (say, the write lock not free within the busy timeout) fails that
        statement instead."""
        self._begin = sql

    def take_begin(self) -> str | None:
        """The BEGIN to send with the statement now going out (then none is pending)."""
        begin, self._begin = self._begin, None
        return begin

    async def commit(self) -> None:
        """Commit; a transaction that ran no statement has nothing to commit."""
        if self.take_begin() is None:
            await super().commit()

    async def rollback(self) -> None:
        """Roll back, if a transaction is open."""
        if self.take_begin() is None and self.in_transaction:
            await super().rollback()

    async def cursor(self) -> OneTripCursor:  # type: ignore[override]
        """A cursor, made without a trip: its sqlite3 cursor is opened with the statement."""
        return OneTripCursor(self)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the connection's thread (one trip)."""
        result: T = await self._execute(fn, *args)  # type: ignore[no-untyped-call]
        return result


class OneTripCursor:
    """The part of aiosqlite's `Cursor` that SQLAlchemy's adapter uses, one trip each."""

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self._cursor: sqlite3.Cursor | None = None  # open while rows are left to read
        self._rows: deque[Any] = deque()
        self.description: _Description = None
        self.lastrowid: int | None = None
        self.rowcount = -1

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> OneTripCursor:
        """Run the statement and read its first rows, in one trip."""
        await self._close_left_open()
        begin = self._connection.take_begin()
        taken = await self._connection.run(self._execute, begin, sql, parameters or ())
        self._take(*taken)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> OneTripCursor:
        """Run the statement for every set of parameters, in one trip."""
        await self._close_left_open()
        begin = self._connection.take_begin()
        taken = await self._connection.run(self._executemany, begin, sql, parameters)
        self._take(*taken)
        return self

    async def fetchone(self) -> Any:
        """The next row, or None."""
        if not self._rows:
            await self._read(FIRST_ROWS)
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        """Up to `size` more rows (FIRST_ROWS if not given)."""
        wanted = FIRST_ROWS if size is None else size
        if len(self._rows) < wanted:
            await self._read(wanted - len(self._rows))
        return [self._rows.popleft() for _ in range(min(wanted, len(self._rows)))]

    async def fetchall(self) -> list[Any]:
        """Every row left."""
        await self._read(None)
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def _read(self, size: int | None) -> None:
        """Up to `size` more rows (all with None) into the buffer, if any are left."""
        if self._cursor is None:
            return
        rows, done = await self._connection.run(_fetch, self._cursor, size)
        self._rows.extend(rows)
        if done:
            self._cursor = None

    async def close(self) -> None:
        """Close the sqlite3 cursor if rows were left unread (otherwise it is closed)."""
        self._rows.clear()
        await self._close_left_open()

    async def _close_left_open(self) -> None:
        if self._cursor is not None:
            cursor, self._cursor = self._cursor, None
            await self._connection.run(cursor.close)

    def _take(
        self,
        cursor: sqlite3.Cursor | None,
        rows: list[Any],
        description: _Description,
        lastrowid: int | None,
        rowcount: int,
    ) -> None:
        self._cursor = cursor
        self._rows = deque(rows)
        self.description = description
        self.lastrowid = lastrowid
        self.rowcount = rowcount

    # ---- on the connection's thread ----------------------------------------------------

    def _execute(
        self, begin: str | None, sql: str, parameters: Sequence[Any]
    ) -> tuple[sqlite3.Cursor | None, list[Any], _Description, int | None, int]:
        if begin is not None:
            self._connection._conn.execute(begin)
        cursor = self._connection._conn.cursor()
        try:
            cursor.execute(sql, parameters)
            rows = cursor.fetchmany(FIRST_ROWS) if cursor.description else []
        except BaseException:
            cursor.close()
            raise
        left_open = cursor if len(rows) == FIRST_ROWS else None
        taken = (left_open, rows, cursor.description, cursor.lastrowid, cursor.rowcount)
        if left_open is None:
            cursor.close()
        return taken

    def _executemany(
        self, begin: str | None, sql: str, parameters: Iterable[Sequence[Any]]
    ) -> tuple[None, list[Any], _Description, int | None, int]:
        if begin is not None:
            self._connection._conn.execute(begin)
        cursor = self._connection._conn.cursor()
        try:
            cursor.executemany(sql, parameters)
            return None, [], cursor.description, cursor.lastrowid, cursor.rowcount
        finally:
            cursor.close()


def _fetch(cursor: sqlite3.Cursor, size: int | None) -> tuple[list[Any], bool]:
    """On the connection's thread: up to `size` rows (all with None), and whether that was
    the last of them (the cursor is then closed)."""
    rows = cursor.fetchall() if size is None else cursor.fetchmany(size)
    done = size is None or len(rows) < size
    if done:
        cursor.close()
    return rows, done


def connector(url: str, **connect_args: Any) -> Any:
    """`create_async_engine(async_creator=...)` for an SQLite URL: a `OneTripConnection`
    opened with the arguments SQLAlchemy's aiosqlite dialect would pass (file name, URI
    mode...), and `connect_args` on top."""
    args, params = SQLiteDialect_aiosqlite().create_connect_args(make_url(url))
    (database,) = args
    params.update(connect_args)

    def open_sqlite() -> sqlite3.Connection:
        return sqlite3.connect(database, **params)

    async def connect() -> OneTripConnection:
        connection = OneTripConnection(open_sqlite, 64)
        # As SQLAlchemy does for aiosqlite's own: the thread never keeps the process alive.
        connection._thread.daemon = True
        await connection
        return connection

    return connect
