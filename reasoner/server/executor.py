"""Run blocking store calls on worker threads, so that the event loop stays free.

The store reads and writes of cases, pages and CDS Hooks are short (a case graph, a
term's description); SPARQL queries, which can be long, run elsewhere (``query_pool``),
so these never wait behind them. pyoxigraph releases the GIL while it works, so a call
on a worker thread does not hold up other requests. A fixed number of daemon threads
take jobs in arrival order, and a job still waiting when its request gives up is never
started. The threads are daemons so that a call still running when the server stops
does not keep the process alive (asyncio's default executor joins its threads at exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _settle(future: asyncio.Future, value: Any, failed: bool) -> None:
    if not future.done():  # the caller may have given up (timeout) meanwhile
        if failed:
            future.set_exception(value)
        else:
            future.set_result(value)


class StoreExecutor:
    """A fixed pool of daemon threads that run callables for coroutines."""

    def __init__(self, threads: int):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"store-{i}", daemon=True) for i in range(threads)
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

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on a worker thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._jobs.put((fn, loop, future))
        return await future

    def shutdown(self) -> None:
        """Let idle threads end; busy ones end with their job (or with the process)."""
        for _ in self._threads:
            self._jobs.put(None)
