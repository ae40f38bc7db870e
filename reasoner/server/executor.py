"""Run blocking store calls on worker threads, so that the event loop stays free.

pyoxigraph releases the GIL while it evaluates, so a slow query on a worker thread does
not hold up other requests. A fixed number of daemon threads take jobs in arrival
order: at most that many queries are evaluated at once, and a job still waiting when its
request gives up is never started. The threads are daemons because a query cannot be
interrupted: one still running when the server stops must not keep the process alive
(asyncio's default executor joins its threads at exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class DeadlinePassed(Exception):
    """The job did not finish within the time the caller would wait."""


def _settle(future: asyncio.Future, value: Any, failed: bool) -> None:
    if not future.done():  # the caller may have given up (timeout) meanwhile
        if failed:
            future.set_exception(value)
        else:
            future.set_result(value)


class QueryExecutor:
    """A fixed pool of daemon threads that run callables for coroutines."""

    def __init__(self, threads: int):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"sparql-{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, loop, future = job
            if future.cancelled():  # its request timed out while it waited
                continue
            try:
                value, failed = fn(), False
            except Exception as exc:
                value, failed = exc, True
            with contextlib.suppress(RuntimeError):  # a closed event loop: nobody is waiting
                loop.call_soon_threadsafe(_settle, future, value, failed)

    async def run(self, fn: Callable[[], T], timeout: float | None = None) -> T:
        """``fn()`` on a worker thread; ``DeadlinePassed`` after ``timeout`` seconds (the
        thread then finishes ``fn`` on its own: see ``query`` for how queries stop)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._jobs.put((fn, loop, future))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise DeadlinePassed from None

    def shutdown(self) -> None:
        """Let idle threads end; busy ones end with their job (or with the process)."""
        for _ in self._threads:
            self._jobs.put(None)
