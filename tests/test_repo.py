"""The queries the limits and the batched store rely on, on a real database (SQLite, or
PostgreSQL under TEST_DATABASE_URL): which starts they see, in which order, and what they
lock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.models import LoginFlow, VerifiedUser

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
A, B, C = "a" * 64, "b" * 64, "c" * 64


async def _count(
    db: async_sessionmaker[AsyncSession], *starts: tuple[int, str, datetime]
) -> list[int]:
    async with db.begin() as session:
        return await repo.add_starts(
            session, rows=[(repo.StartRow(chat, number, at), 44) for chat, number, at in starts]
        )


async def test_added_starts_get_their_ids_in_the_order_given(
    db: async_sessionmaker[AsyncSession],
) -> None:
    starts = [(1001, A, NOW), (1002, B, NOW - timedelta(minutes=1)), (1003, C, NOW)]
    ids = await _count(db, *starts)
    assert len(set(ids)) == 3
    async with db() as session:
        seen = await repo.recent_starts(
            session, chat_ids=[1001, 1002, 1003], number_hashes=[], since=NOW - timedelta(days=1)
        )
    by_chat = {start.chat_id: start for start in seen}
    assert [by_chat[chat].number_hash for chat, _, _ in starts] == [A, B, C]
    # Removing by the returned id uncounts exactly that start.
    async with db.begin() as session:
        await repo.remove_start(session, start_id=ids[1])
    async with db() as session:
        left = await repo.recent_starts(
            session, chat_ids=[1001, 1002, 1003], number_hashes=[], since=NOW - timedelta(days=1)
        )
    assert sorted(start.chat_id for start in left) == [1001, 1003]


async def test_recent_starts_are_those_of_the_chats_or_to_the_numbers_after_the_time(
    db: async_sessionmaker[AsyncSession],
) -> None:
    since = NOW - timedelta(days=1)
    await _count(
        db,
        (1001, C, NOW - timedelta(hours=2)),  # by the chat, to another number
        (1002, A, NOW - timedelta(minutes=5)),  # by another chat, to the number
        (1003, C, NOW),  # neither
        (1001, A, since),  # exactly at the time: already outside
        (1001, A, since + timedelta(seconds=1)),
    )
    async with db() as session:
        seen = await repo.recent_starts(session, chat_ids=[1001], number_hashes=[A], since=since)
    assert sorted((s.chat_id, s.number_hash, s.created_at) for s in seen) == [
        (1001, A, since + timedelta(seconds=1)),
        (1001, C, NOW - timedelta(hours=2)),
        (1002, A, NOW - timedelta(minutes=5)),
    ]


async def test_everyones_starts_are_counted_and_listed_oldest_first_after_the_time(
    db: async_sessionmaker[AsyncSession],
) -> None:
    hour_ago = NOW - timedelta(hours=1)
    times = [hour_ago, NOW - timedelta(minutes=10), NOW - timedelta(minutes=50), NOW]
    await _count(db, *((1001 + n, A, at) for n, at in enumerate(times)))
    async with db() as session:
        assert await repo.count_starts(session, since=hour_ago) == 3
        assert await repo.oldest_starts(session, since=hour_ago, limit=2) == [
            NOW - timedelta(minutes=50),
            NOW - timedelta(minutes=10),
        ]


async def test_purged_starts_are_only_those_before_the_time(
    db: async_sessionmaker[AsyncSession],
) -> None:
    cutoff = NOW - timedelta(days=2)
    await _count(db, (1001, A, cutoff - timedelta(seconds=1)), (1002, A, cutoff))
    async with db.begin() as session:
        await repo.purge_starts(session, before=cutoff)
    async with db() as session:
        assert await repo.count_starts(session, since=cutoff - timedelta(days=1)) == 1


async def test_flow_steps_come_with_the_number_the_chat_is_logged_in_with(
    db: async_sessionmaker[AsyncSession],
) -> None:
    async with db.begin() as session:
        for chat_id, step in ((1001, "number"), (1002, "code")):
            session.add(LoginFlow(chat_id=chat_id, user_id=chat_id, step=step, started_at=NOW))
        session.add(
            VerifiedUser(chat_id=1001, user_id=1001, phone_number="+447400123123", verified_at=NOW)
        )
        session.add(  # logged in, but no flow: left out
            VerifiedUser(chat_id=1003, user_id=1003, phone_number="+447400555666", verified_at=NOW)
        )
    async with db.begin() as session:
        states = await repo.flow_steps_and_numbers(session, chat_ids=[1001, 1002, 1003])
    assert states == {1001: ("number", "+447400123123"), 1002: ("code", None)}


async def test_updating_flows_says_how_many_chats_had_one(
    db: async_sessionmaker[AsyncSession],
) -> None:
    async with db.begin() as session:
        session.add(LoginFlow(chat_id=1001, user_id=1001, step="number", started_at=NOW))
    rows: list[dict[str, object]] = [
        {"chat_id": chat_id, "step": "code", "tries_left": 3} for chat_id in (1001, 1002)
    ]
    async with db.begin() as session:
        updated = await repo.update_flows(session, rows=rows)
    # asyncpg cannot count the rows of an executemany: the store then checks which chats
    # have a flow (locked_flow_chats).
    assert updated in (1, None)
    async with db.begin() as session:
        assert await repo.locked_flow_chats(session, chat_ids=[1001, 1002]) == {1001}
        flow = await repo.get_flow(session, chat_id=1001)
    assert flow is not None
    assert (flow.step, flow.tries_left) == ("code", 3)


async def test_an_admission_makes_every_other_admission_wait_until_it_commits(
    db: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's writers already exclude each other; nothing to lock")
    order: list[str] = []
    locked = asyncio.Event()

    async def first() -> None:
        async with db.begin() as session:
            await repo.lock_admissions(session)
            locked.set()
            await asyncio.sleep(0.3)
            order.append("first done")

    async def other() -> None:
        await locked.wait()
        async with db.begin() as session:
            await repo.lock_admissions(session)
            order.append("other")

    await asyncio.gather(first(), other())
    assert order == ["first done", "other"]
