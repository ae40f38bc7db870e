"""What every router of the server shares: the store, the settings, the query threads,
the assessor, the case-assessing processes and the answer cache.

Kept on ``app.state`` and handed to endpoints through the ``State`` dependency, so that a
router added later (cases, CDS Hooks) reaches the same store without globals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

import pyoxigraph as ox
from fastapi import Depends, Request

from ..assess import Assessor
from .answer_cache import AnswerCache
from .case_workers import CaseWorkers
from .executor import QueryExecutor
from .settings import ServerSettings

T = TypeVar("T")


@dataclass
class ServerState:
    store: ox.Store
    settings: ServerSettings
    executor: QueryExecutor
    knowledge_graphs: list[str]
    """The named graphs that hold the knowledge base (listed in the service description)."""
    assessor: Assessor
    """The fast engine, compiled once for the application (cases stored at start, case
    pages, CDS Hooks calls, cases read back)."""
    case_workers: CaseWorkers
    """The processes that assess posted cases, off this process's GIL."""
    answers: AnswerCache
    """Query answers kept until the next write (see ``write``)."""
    case_lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while the assessor of this process runs (its lookup caches are not made for
    concurrent use) and while a case is written (its "created or replaced" answer must
    match what was stored)."""

    async def write(self, job: Callable[[], T]) -> T:
        """Run ``job``, which changes the store, on a worker thread, then invalidate the
        cached answers, whether or not it succeeded (a failed update may have applied part
        of its work). Every HTTP route that writes goes through here, so that no answer
        computed before a write is served once the write is acknowledged."""
        try:
            return await self.executor.run(job)
        finally:
            self.answers.invalidate()


def server_state(request: Request) -> ServerState:
    """The application's shared state, for code that holds the request."""
    return request.app.state.lbp


async def _state(request: Request) -> ServerState:
    # A coroutine, so that FastAPI runs it on the event loop: a synchronous dependency is
    # sent to the thread pool, which cost a thread hop on every request under load.
    return request.app.state.lbp


State = Annotated[ServerState, Depends(_state)]
"""The shared state as an endpoint parameter type."""
