"""Chat claims across processes (PostgreSQL): each `ChatLocks` here plays one bot process on
the shared database, with short timings so that lapses and waits are quick to see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.engine import make_engine
from bot.db.locks import ChatBusy, ChatLocks
from bot.db.models import ChatClaim


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    if not database_url.startswith("postgresql"):
        pytest.skip("chat claims are for processes sharing PostgreSQL")
    made = make_engine(database_url, pool_size=4)
    yield made
    await made.dispose()


async def _claims(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(ChatClaim)) or 0)


async def test_a_chat_held_by_one_process_runs_at_the_other_only_after_it(
    engine: AsyncEngine,
) -> None:
    one, other = ChatLocks(engine), ChatLocks(engine)
    order: list[str] = []
    held = asyncio.Event()

    async def first() -> None:
        async with one.hold(1001, 1) as fresh:
            assert fresh
            held.set()
            await asyncio.sleep(0.3)
            order.append("first done")

    async def second() -> None:
        await held.wait()
        async with other.hold(1001, 2) as fresh:
            assert fresh
            order.append("second")

    async def other_chat() -> None:
        await held.wait()
        async with other.hold(1002, 3):
            order.append("other chat")

    await asyncio.gather(first(), second(), other_chat())
    assert order == ["other chat", "first done", "second"]
    assert await _claims(engine) == 0  # given back, no connection or row left behind
    await one.close()
    await other.close()


async def test_an_update_handled_by_one_process_is_not_run_again_by_another(
    engine: AsyncEngine,
) -> None:
    one, other = ChatLocks(engine), ChatLocks(engine)
    async with one.hold(1001, 77) as fresh:
        assert fresh
    async with other.hold(1001, 77) as fresh:
        assert not fresh
    async with other.hold(1001, 78) as fresh:
        assert fresh
    await one.close()
    await other.close()


async def test_an_update_that_failed_is_run_again_when_delivered_again(
    engine: AsyncEngine,
) -> None:
    locks = ChatLocks(engine)
    with pytest.raises(RuntimeError):
        async with locks.hold(1001, 77):
            raise RuntimeError("the process failed half-way")
    async with locks.hold(1001, 77) as fresh:
        assert fresh
    await locks.close()


async def test_a_process_that_stops_renewing_frees_its_chat_after_the_lease(
    engine: AsyncEngine,
) -> None:
    dead = ChatLocks(engine, lease=0.3)
    alive = ChatLocks(engine, wait=5)
    async with dead.hold(1001, 1):
        await dead.close()  # renews nothing from now on, as if the process had died
        started = asyncio.get_running_loop().time()
        async with alive.hold(1001, 2) as fresh:
            assert fresh
        waited = asyncio.get_running_loop().time() - started
    assert 0.1 < waited < 2
    await alive.close()


async def test_a_stuck_update_keeps_its_chat_no_longer_than_the_longest_hold(
    engine: AsyncEngine,
) -> None:
    stuck = ChatLocks(engine, lease=0.3, max_hold=0.6)
    waiting = ChatLocks(engine, wait=5)
    async with stuck.hold(1001, 1):
        started = asyncio.get_running_loop().time()
        async with waiting.hold(1001, 2) as fresh:  # renewed, but only for 0.6 s
            assert fresh
        waited = asyncio.get_running_loop().time() - started
    assert 0.5 < waited < 2
    await stuck.close()
    await waiting.close()


async def test_a_wait_longer_than_the_bound_raises_chat_busy(engine: AsyncEngine) -> None:
    holder = ChatLocks(engine)
    impatient = ChatLocks(engine, wait=0.3)
    async with holder.hold(1001, 1):
        with pytest.raises(ChatBusy):
            async with impatient.hold(1001, 2):
                raise AssertionError("ran while another process held the chat")
    async with impatient.hold(1001, 2) as fresh:  # not recorded as handled: it runs now
        assert fresh
    await holder.close()
    await impatient.close()
