"""SQLite through `make_engine`: each statement is one trip to the database thread, with
every answer SQLAlchemy expects (rows, row counts, ids, RETURNING, errors), and a large
result still streamed in chunks. Always on an SQLite file, whatever database the suite uses."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Integer, String, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.db.engine import READONLY_OPTION, make_engine, make_sessionmaker
from bot.db.sqlite import FIRST_ROWS


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'items.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


def trips(caplog: pytest.LogCaptureFixture) -> int:
    """Calls aiosqlite's thread ran (it logs each one at DEBUG)."""
    return sum(
        1
        for r in caplog.records
        if r.name == "aiosqlite" and r.getMessage().startswith("executing")
    )


async def test_a_statement_and_its_rows_take_one_trip_to_the_database_thread(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(Item), [{"name": f"n{i}"} for i in range(3)])
    # A reader, as the bot's read-only sessions are: no BEGIN before the statement.
    async with engine.connect() as conn:
        await conn.execution_options(**{READONLY_OPTION: True})
        caplog.set_level("DEBUG", logger="aiosqlite")
        rows = (await conn.execute(select(Item.name).order_by(Item.id))).all()
        assert trips(caplog) == 1
    assert [name for (name,) in rows] == ["n0", "n1", "n2"]


async def test_a_writing_transaction_is_a_trip_with_its_first_statement_and_one_to_commit(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="aiosqlite")
    async with make_sessionmaker(engine).begin() as session:
        session.add(Item(name="a"))
    # BEGIN IMMEDIATE goes with the INSERT; the pool's reset of the connection, with nothing
    # to undo, needs no trip.
    assert trips(caplog) == 2
    async with make_sessionmaker(engine)() as session:
        assert (await session.execute(select(Item.name))).scalars().all() == ["a"]


async def test_the_write_lock_is_taken_before_the_first_statement_runs(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "items.db", isolation_level=None)
    try:
        async with make_sessionmaker(engine).begin() as session:
            await session.execute(select(Item.id))  # a read, in a writing transaction
            # Another writer (another process) now finds the database locked.
            other.execute("PRAGMA busy_timeout=0")
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()


async def test_row_counts_ids_and_returning_come_back(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await conn.execute(insert(Item).values(name="a"))
        assert first.inserted_primary_key == (1,)
        returned = await conn.execute(insert(Item).values(name="b").returning(Item.id, Item.name))
        assert [tuple(row) for row in returned] == [(2, "b")]
        many = await conn.execute(insert(Item), [{"name": "c"}, {"name": "d"}])
        assert many.rowcount == 2
        changed = await conn.execute(update(Item).where(Item.id > 2).values(name=Item.name + "!"))
        assert changed.rowcount == 2
    async with engine.connect() as conn:
        names = (await conn.execute(select(Item.name).order_by(Item.id))).scalars().all()
    assert names == ["a", "b", "c!", "d!"]


async def test_a_large_result_is_streamed_in_chunks(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    total = 3 * FIRST_ROWS + 10
    async with engine.begin() as conn:
        await conn.execute(insert(Item), [{"name": f"n{i:05d}"} for i in range(total)])
    caplog.set_level("DEBUG", logger="aiosqlite")
    seen: list[str] = []
    async with engine.connect() as conn:
        result = await conn.stream(
            select(Item.name).order_by(Item.id).execution_options(yield_per=100)
        )
        async for (name,) in result:
            seen.append(name)
    assert seen == [f"n{i:05d}" for i in range(total)]
    # Read as the stream asked for it, not all with the statement.
    assert trips(caplog) > total // FIRST_ROWS


async def test_a_failing_statement_raises_and_the_connection_goes_on(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(Item).values(name="same"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(insert(Item).values(name="same"))
    async with engine.begin() as conn:
        await conn.execute(insert(Item).values(name="other"))
        assert (await conn.execute(text("SELECT count(*) FROM items"))).scalar() == 2
