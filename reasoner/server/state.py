"""What every router of the server shares: the store, the settings, the store threads, the
query processes, the assessor, the case-assessing processes and the answer cache.

Kept on ``app.state`` and handed to endpoints through the ``State`` dependency, so that a
router added later (cases, CDS Hooks) reaches the same store without globals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from ..pipeline.assess import Assessor
from .cases.workers import CaseWorkers
from .cds_hooks.form_links import FormLinks
from .executor import StoreExecutor
from .http.audit_log import AuditLog
from .settings import ServerSettings
from .sparql.answer_cache import AnswerCache
from .sparql.query_pool import QueryPool
from .store_log import LoggedStore

T = TypeVar("T")


@dataclass
class ServerState:
    store: LoggedStore
    """The store of record; its changes are replayed on the query processes' replicas."""
    settings: ServerSettings
    executor: StoreExecutor
    queries: QueryPool
    """The processes that evaluate SPARQL queries (``/sparql`` and ``/api``)."""
    knowledge_graphs: list[str]
    """The named graphs that hold the knowledge base (listed in the service description)."""
    assessor: Assessor
    """The fast engine, compiled once for the application (cases stored at start, case
    pages, CDS Hooks calls, cases read back)."""
    case_workers: CaseWorkers
    """The processes that assess posted cases, off this process's GIL."""
    answers: AnswerCache
    """Query answers kept until the next write (see ``write``)."""
    audit: AuditLog
    """The audit log of case writes and CDS Hooks decisions (``audit_log``)."""
    form_links: FormLinks
    """The keys of CDS cards' links to pre-filled forms (``form_links``)."""
    case_lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while the assessor of this process runs (its lookup caches are not made for
    concurrent use) and while a case is written (its "created or replaced" answer, the
    version and the right to replace it that were tested, and its audit line must match
    what was stored: ``case_service``)."""

    async def write(self, job: Callable[[], T]) -> T:
        """Run ``job``, which changes the store, on a worker thread, then hand its changes to
        the query processes and invalidate the cached answers, whether or not it succeeded
        (a failed update may have applied part of its work). Every HTTP route that writes
        goes through here, so that no query sent after a write is acknowledged is answered
        from the store as it was before."""
        try:
            return await self.executor.run(job)
        finally:
            await self.queries.publish(self.store.take_changes())
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
