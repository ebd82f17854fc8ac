"""Coalescing many small database writes into one transaction.

Under load, many tasks want to write one row each at the same moment (the outbox sender claims
a row before every send and records it after). On SQLite every transaction holds the one write
lock and pays for a commit, so one transaction per row caps throughput. A ``Coalescer`` lets
each task ``await submit(item)`` as if it wrote alone, while the items that arrive together (or
while the previous batch is being written) go to the database as one batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalescer(Generic[Item, Result]):
    """Runs ``write_batch(items) -> results`` for items submitted close together."""

    def __init__(
        self,
        write_batch: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int = 200,
    ) -> None:
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Write ``item`` in the next batch and return its result (or raise its error)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the tasks that are ready now join this batch
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                results = await self._write_batch([item for item, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
