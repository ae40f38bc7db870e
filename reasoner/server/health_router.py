"""``GET /health``: what a supervisor (systemd, Kubernetes, a load balancer) polls.

A 200 means the server answers; the JSON says which software and knowledge base it
serves and what its store and workers are. It needs no token and holds no patient data.

It must answer even when every query process is busy or stuck, so it never goes through
the query processes nor the store threads: it runs on the event loop and reads only what
is cheap there. Counting a store's graphs or cases is a scan (on a store on disk with
100,000 case graphs, measured: 0.25 s to list the graph names, 0.9 s to find the case
records), so the named graphs are counted up to ``GRAPH_COUNT_CAP`` (about 5 ms on that
store) and the answer says whether the count is complete; a store on disk also reports
the size of its files (one directory listing).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from rdflib import OWL, URIRef

from .. import DISCLAIMER, __version__
from ..knowledge import KnowledgeBase
from .state import State

GRAPH_COUNT_CAP = 1000
"""The most named graphs counted for an answer."""


def _peak_memory() -> int | None:
    """The server process's peak resident memory in bytes, where the platform says it."""
    if sys.platform == "win32":
        return None
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def _bytes_on_disk(directory: Path) -> int:
    total = 0
    for entry in os.scandir(directory):
        with contextlib.suppress(FileNotFoundError):  # the store may remove a file meanwhile
            total += entry.stat().st_size if entry.is_file() else 0
    return total


def health_router(kb: KnowledgeBase, store_path: Path | None) -> APIRouter:
    """The router of ``/health`` for a server of ``kb`` whose store is at ``store_path``
    (None: in memory); its uptime counts from now."""
    started = time.monotonic()
    identity = kb.identity
    top = identity["ontology"]
    version = kb.ontology.value(URIRef(top), OWL.versionInfo) if top else None
    knowledge_base = {**identity, "versionInfo": str(version) if version is not None else None}
    router = APIRouter(tags=["health"])

    @router.get(
        "/health",
        summary="Liveness, versions, store and workers",
        description="200 while the server answers, for supervisors: the software and knowledge-base "
        "versions, the store (in memory or on disk, its named graphs counted up to "
        f"{GRAPH_COUNT_CAP:,}, its size on disk) and the workers. No token; no patient data. "
        "Answered without waiting for queries.",
    )
    async def health(state: State) -> dict[str, Any]:
        counted = sum(1 for _ in itertools.islice(state.store.named_graphs(), GRAPH_COUNT_CAP + 1))
        store: dict[str, Any] = {
            "storage": "memory" if store_path is None else "disk",
            "namedGraphs": {"count": min(counted, GRAPH_COUNT_CAP), "complete": counted <= GRAPH_COUNT_CAP},
            "knowledgeBaseGraphs": len(state.knowledge_graphs),
        }
        if store_path is not None:
            store["bytesOnDisk"] = _bytes_on_disk(store_path)
        settings = state.settings
        return {
            "status": "ok",
            "service": "lbp-imaging",
            "version": __version__,
            "knowledgeBase": knowledge_base,
            "store": store,
            "workers": {
                "queryProcesses": state.queries.status(),
                "storeThreads": settings.store_threads,
                "caseWorkers": settings.case_workers,
            },
            "process": {
                "uptimeSeconds": round(time.monotonic() - started, 3),
                "peakMemoryBytes": _peak_memory(),
            },
            "disclaimer": DISCLAIMER,
        }

    return router
