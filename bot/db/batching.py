"""Group commit: many concurrent callers, one database round trip.

When a hundred users send their numbers at once, a hundred small transactions queue for the
database one after another (SQLite has one writer; each statement is a hop to a driver
thread and back). A `Coalescer` hands every call made while the previous batch was being
collected or run to one function, as a list in arrival order; that function answers all of
them with a few statements in one transaction. A lone call is a batch of one, so a quiet bot
pays almost nothing for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger(__name__)


class Coalescer(Generic[T, R]):
    """Calls `run_batch(items)` for the items of concurrent `await coalescer(item)` calls.

    `run_batch` must return one result per item, in order. If it raises for a batch of
    several items, each item is retried alone, so one item that cannot be handled fails
    only its own caller (the batch's transaction was rolled back, so nothing is done twice).
    """

    def __init__(
        self, run_batch: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_size: int = 256
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._run_batch = run_batch
        self._max_size = max_size
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._runner is None:
            # Runs once the callers already scheduled in this loop turn have joined.
            self._runner = asyncio.create_task(self._drain(), name="coalescer")
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_size]
                del self._pending[: self._max_size]
                await self._run(batch)
        except BaseException as error:  # cancelled (shutdown): the waiting callers are too
            waiting, self._pending = self._pending, []
            for _, future in waiting:
                _settle(future, error=error)
            raise
        finally:
            self._runner = None

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run_batch([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for {len(batch)} items")
        except Exception as error:
            if len(batch) > 1:
                logger.warning(
                    "A batch of %d failed (%s); running its items one by one",
                    len(batch),
                    type(error).__name__,
                )
                for one in batch:
                    await self._run([one])
                return
            _settle(batch[0][1], error=error)
            return
        except BaseException as error:  # cancelled: nobody gets an answer from this batch
            for _, future in batch:
                _settle(future, error=error)
            raise
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(
    future: asyncio.Future[R], *, result: R | None = None, error: BaseException | None = None
) -> None:
    if future.done():  # its caller was cancelled meanwhile
        return
    if error is None:
        future.set_result(result)  # type: ignore[arg-type]
    elif isinstance(error, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(error)
