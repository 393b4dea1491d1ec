"""The group-commit helper: concurrent calls share one batch, every caller gets its own
answer, and one bad item fails only its own caller."""

from __future__ import annotations

import asyncio

import pytest

from bot.db.batching import Coalescer


class Recorder:
    """A batch function that remembers its batches and answers item * 10."""

    def __init__(self, *, fail_on: int | None = None, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.delay = delay

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(self.delay)
        if self.fail_on in items:
            raise ValueError(f"cannot handle {self.fail_on}")
        return [item * 10 for item in items]


async def test_calls_made_together_share_one_batch_in_order() -> None:
    run = Recorder()
    coalesce = Coalescer(run)
    results = await asyncio.gather(*(coalesce(i) for i in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert run.batches == [[0, 1, 2, 3, 4]]


async def test_a_lone_call_is_a_batch_of_one() -> None:
    run = Recorder()
    coalesce = Coalescer(run)
    assert await coalesce(7) == 70
    assert await coalesce(8) == 80
    assert run.batches == [[7], [8]]


async def test_calls_during_a_running_batch_form_the_next_one() -> None:
    run = Recorder(delay=0.05)
    coalesce = Coalescer(run)
    first = asyncio.gather(*(coalesce(i) for i in range(2)))
    await asyncio.sleep(0.01)  # the first batch is running
    second = asyncio.gather(*(coalesce(i) for i in range(2, 5)))
    assert await first == [0, 10]
    assert await second == [20, 30, 40]
    assert run.batches == [[0, 1], [2, 3, 4]]


async def test_batches_are_capped() -> None:
    run = Recorder()
    coalesce = Coalescer(run, max_size=2)
    assert await asyncio.gather(*(coalesce(i) for i in range(5))) == [0, 10, 20, 30, 40]
    assert run.batches == [[0, 1], [2, 3], [4]]


async def test_a_failing_batch_is_retried_item_by_item() -> None:
    run = Recorder(fail_on=2)
    coalesce = Coalescer(run)
    results = await asyncio.gather(*(coalesce(i) for i in range(4)), return_exceptions=True)
    assert results[:2] == [0, 10]
    assert isinstance(results[2], ValueError)
    assert results[3] == 30
    assert run.batches == [[0, 1, 2, 3], [0], [1], [2], [3]]


async def test_a_batch_function_must_answer_every_item() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    coalesce = Coalescer(short)
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        await coalesce(1)


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    run = Recorder(delay=0.05)
    coalesce = Coalescer(run)
    leaving = asyncio.ensure_future(coalesce(1))
    staying = asyncio.ensure_future(coalesce(2))
    await asyncio.sleep(0.01)
    leaving.cancel()
    assert await staying == 20
    assert leaving.cancelled()
    # and the next call still works
    assert await coalesce(3) == 30


async def test_cancelling_the_batch_cancels_every_waiting_caller() -> None:
    started = asyncio.Event()

    async def hang(items: list[int]) -> list[int]:
        started.set()
        await asyncio.sleep(3600)
        return items

    coalesce = Coalescer(hang, max_size=1)
    callers = [asyncio.ensure_future(coalesce(i)) for i in range(3)]
    await started.wait()
    runner = coalesce._runner
    assert runner is not None
    runner.cancel()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(result, asyncio.CancelledError) for result in results)
    assert coalesce._runner is None
