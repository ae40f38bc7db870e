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
from ..knowledge import KnowledgeBase
from ..pipeline.assess import Assessor
from .cases.router import router as cases_router
from .cases.workers import CaseWorkers
from .cds_hooks.form_links import FormLinks
from .cds_hooks.order_form_router import router as order_form_router
from .cds_hooks.router import router as cds_hooks_router
from .cds_hooks.schemas import COMPONENT_MODELS as CDS_HOOKS_MODELS
from .executor import StoreExecutor
from .graphs import load_knowledge_base
from .health_router import health_router
from .http.api_docs import router as api_docs_router
from .http.audit_log import AuditLog
from .http.body_limit import BodyLimit
from .http.openapi import install_openapi
from .http.security_headers import SecurityHeaders
from .named_queries.router import named_query_router
from .pages.assets import add_assets
from .pages.linked_data_router import router as linked_data_router
from .pages.router import router as pages_router
from .settings import ServerSettings
from .sparql.answer_cache import AnswerCache
from .sparql.query_pool import QueryPool
from .sparql.router import router as sparql_router
from .state import ServerState
from .store_log import LoggedStore


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
    assessor.selector.prepare()  # a server assesses case after case: memoise from the first
    # Opened before the workers start, so that a file that cannot be opened stops the server
    # before it has processes to stop (the workers never write to it).
    audit = AuditLog(
        kb.identity, settings.audit_log, settings.audit_log_max_bytes, settings.audit_log_backups
    )
    # Forked first: before this process runs any other thread or opens the store.
    case_workers = CaseWorkers(assessor, settings.case_workers)
    store = LoggedStore(open_store(store_path))
    knowledge_graphs = load_knowledge_base(store, kb)
    executor = StoreExecutor(settings.store_threads)
    queries = QueryPool(store, settings.query_processes, settings.max_query_memory_mb * 1024 * 1024)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Started here, once the cases given at start are stored: the replicas begin as a dump.
        await queries.start()
        yield
        await queries.close()
        executor.shutdown()
        case_workers.shutdown()
        store.flush()
        audit.close()

    app = FastAPI(
        title="lbp-imaging",
        version=__version__,
        description="Imaging criteria for low back pain as a knowledge graph: a SPARQL 1.1 "
        "endpoint, cases assessed and stored over HTTP, the named queries as a web API, and the "
        f"ontology's IRIs dereferenced. {DISCLAIMER}",
        lifespan=lifespan,
        docs_url=None,  # served by api_docs, with Swagger UI from this server (no CDN)
        redoc_url=None,
    )
    app.state.lbp = ServerState(
        store,
        settings,
        executor,
        queries,
        knowledge_graphs,
        assessor,
        case_workers,
        AnswerCache(settings.answer_cache_bytes),
        audit,
        FormLinks(settings.form_link_seconds),
    )
    app.include_router(sparql_router)
    app.include_router(pages_router)
    app.include_router(cases_router)
    app.include_router(named_query_router(kb.queries, settings.max_rows))
    app.include_router(linked_data_router)
    app.include_router(cds_hooks_router)
    app.include_router(order_form_router)
    app.include_router(health_router(kb, store_path))
    app.include_router(api_docs_router)
    install_openapi(app, CDS_HOOKS_MODELS)
    add_assets(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Accept", "Authorization", "Content-Type"],
        )
    return app
