"""Answers to read-only queries, kept until the store next changes.

Why: the named queries of ``/api`` and most ad-hoc queries are asked again and again
with the same text, and between two writes the answer to the same text over the same
dataset in the same format is the same bytes. Evaluating and serialising it again costs
the server's one Python core (and pyoxigraph's evaluation threads) for nothing.

Correct by construction:

* The cache has a *generation*, which ``invalidate`` increments, dropping every kept
  answer and forgetting every computation under way. ``ServerState.write`` calls it after
  each write the server makes over HTTP (``POST``/``DELETE /cases``, SPARQL Update) has
  returned, whether it succeeded or not, and before the write is acknowledged.
* An answer is kept only if the generation has not changed between the start of its
  computation and its end. A computation that overlapped a write (it may have seen the
  store before or after it) therefore answers only the requests that were waiting for it,
  all of which arrived before the write was acknowledged; it is never served again.
* So a request that starts after a write was acknowledged is answered from the store as
  it is after that write, exactly as without the cache.

The caller decides what may be cached (``key`` None: not cacheable): the key holds
everything the answer depends on besides the store (query text with its parameters
bound, dataset, base IRI, Accept), and queries whose answer changes from one evaluation
to the next (``NOW()``, ``RAND()``, ``UUID()``, ``STRUUID()``, ``BNODE()``, ``SERVICE``)
are not cached. Requests for an answer being computed wait for that computation instead
of starting another (all of them would compute the same thing). The kept answers are
bounded in bytes, the least recently used dropped first. Everything here runs on the
event loop's thread, so nothing needs a lock.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

from .query import Answer

UNCACHEABLE = ("NOW", "RAND", "UUID", "STRUUID", "BNODE", "SERVICE")
"""Keywords (as ``sparql_text.scan`` finds them) of queries whose answer may differ from
one evaluation to the next over the same store."""


class AnswerCache:
    """Answers by key, valid until ``invalidate`` (see the module docstring)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.generation = 0
        self._kept: OrderedDict[Hashable, Answer] = OrderedDict()
        self._size = 0
        self._running: dict[Hashable, asyncio.Task[Answer]] = {}

    def invalidate(self) -> None:
        """The store has changed: no answer computed so far may be served again."""
        self.generation += 1
        self._kept.clear()
        self._size = 0
        self._running.clear()

    async def answer(self, key: Hashable | None, compute: Callable[[], Awaitable[Answer]]) -> Answer:
        """The answer kept under ``key``, the one being computed for it, or ``compute()``'s
        (kept if the store did not change meanwhile). Errors are not kept."""
        if key is None or self.max_bytes <= 0:
            return await compute()
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            return kept
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(self._compute(key, compute, self.generation))
            task.add_done_callback(_retrieve)
            self._running[key] = task
        # shielded: a waiter that gives up (its client went away) must not cancel the
        # computation the other waiters share
        return await asyncio.shield(task)

    async def _compute(
        self, key: Hashable, compute: Callable[[], Awaitable[Answer]], generation: int
    ) -> Answer:
        try:
            answer = await compute()
        finally:
            if self.generation == generation:
                del self._running[key]
        if self.generation == generation:
            self._keep(key, answer)
        return answer

    def _keep(self, key: Hashable, answer: Answer) -> None:
        size = len(answer.body)
        if size > self.max_bytes:
            return
        self._kept[key] = answer
        self._size += size
        while self._size > self.max_bytes:
            _, dropped = self._kept.popitem(last=False)
            self._size -= len(dropped.body)


def _retrieve(task: asyncio.Task) -> None:
    """Mark a computation's error as seen: its waiters may all have given up, and asyncio
    would otherwise log it as never retrieved."""
    if not task.cancelled():
        task.exception()
