"""Synchronous checks run one at a time, with the event loop's I/O served between any two.

asyncio runs every callback that is ready before it looks at the sockets again. When a burst of answers lands
together, their record checks (a few hundred microseconds to a few milliseconds each) would all run before the
loop reads the next answer, and each worker sends its next request only once its answer is read: a burst of 128
checks held the next requests back by a third of a second. Queued here, one check runs per turn of the loop, so
answers are read and the next requests sent first, and the checks fill the time the requests are out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class CheckQueue:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[Callable[[], Any], asyncio.Future[Any]]] = asyncio.Queue()
        self._server: asyncio.Task[None] | None = None

    async def run(self, check: Callable[[], T]) -> T:
        """`check()`'s result (or its exception), once its turn comes."""
        loop = asyncio.get_running_loop()
        if self._server is None:
            self._server = loop.create_task(self._serve())
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put_nowait((check, future))
        return await future

    async def _serve(self) -> None:
        while True:
            check, future = await self._queue.get()
            if not future.cancelled():
                try:
                    future.set_result(check())
                except Exception as err:  # the waiter raises it, as if it had run the check itself
                    future.set_exception(err)
            await asyncio.sleep(0)  # one check per turn: the loop polls the sockets before the next

    async def close(self) -> None:
        if self._server is not None:
            self._server.cancel()
            await asyncio.gather(self._server, return_exceptions=True)
            self._server = None
