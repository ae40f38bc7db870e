"""Build the web application: one store, the knowledge base in it, one router per concern.

``create_app`` is the only place that wires things together; each concern (the SPARQL
endpoint, cases, the named queries of ``/api``, the linked-data view of the ontology's
IRIs, the CDS Hooks services) is an ``APIRouter`` that reaches the shared store through
``state.server_state``, so another router can be included without touching this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pyoxigraph as ox
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .. import DISCLAIMER, __version__
from ..assess import Assessor
from ..knowledge import KnowledgeBase
from .answer_cache import AnswerCache
from .case_workers import CaseWorkers
from .cases_router import router as cases_router
from .cds_hooks_router import router as cds_hooks_router
from .executor import QueryExecutor
from .graphs import load_knowledge_base
from .linked_data_router import router as linked_data_router
from .named_query_router import named_query_router
from .pages_router import router as pages_router
from .settings import ServerSettings
from .sparql_router import router as sparql_router
from .state import ServerState


def open_store(store_path: Path | None) -> ox.Store:
    """An in-memory store, or the on-disk store at ``store_path`` (created if missing).
    Raises ``OSError`` when another process holds it."""
    if store_path is None:
        return ox.Store()
    store_path.mkdir(parents=True, exist_ok=True)
    return ox.Store(str(store_path))


def create_app(
    kb: KnowledgeBase, store_path: Path | None = None, settings: ServerSettings | None = None
) -> FastAPI:
    """The application over a store holding ``kb`` (graphs as in ``graphs``): in memory by
    default, kept on disk at ``store_path`` with the cases stored in it before."""
    settings = settings or ServerSettings()
    assessor = Assessor(kb)
    # Forked first: before this process runs any other thread or opens the store.
    case_workers = CaseWorkers(assessor, settings.case_workers)
    store = open_store(store_path)
    knowledge_graphs = load_knowledge_base(store, kb)
    executor = QueryExecutor(settings.query_threads)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        executor.shutdown()
        case_workers.shutdown()
        store.flush()

    app = FastAPI(
        title="lbp-imaging",
        version=__version__,
        description="Imaging criteria for low back pain as a knowledge graph: a SPARQL 1.1 "
        "endpoint, cases assessed and stored over HTTP, the named queries as a web API, and the "
        f"ontology's IRIs dereferenced. {DISCLAIMER}",
        lifespan=lifespan,
    )
    app.state.lbp = ServerState(
        store,
        settings,
        executor,
        knowledge_graphs,
        assessor,
        case_workers,
        AnswerCache(settings.answer_cache_bytes),
    )
    app.include_router(sparql_router)
    app.include_router(pages_router)
    app.include_router(cases_router)
    app.include_router(named_query_router(kb.queries))
    app.include_router(linked_data_router)
    app.include_router(cds_hooks_router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Accept", "Authorization", "Content-Type"],
        )
    return app
