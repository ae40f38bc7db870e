"""What every router of the server shares: the store, the settings, the query threads and
the assessor.

Kept on ``app.state`` and handed to endpoints through ``Depends(server_state)``, so that a
router added later (cases, CDS Hooks) reaches the same store without globals.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pyoxigraph as ox
from fastapi import Request

from ..assess import Assessor
from .executor import QueryExecutor
from .settings import ServerSettings


@dataclass
class ServerState:
    store: ox.Store
    settings: ServerSettings
    executor: QueryExecutor
    knowledge_graphs: list[str]
    """The named graphs that hold the knowledge base (listed in the service description)."""
    assessor: Assessor
    """The fast engine, compiled once for the application (cases posted and stored at start)."""
    case_lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while a case is assessed and written: the assessor's lookup caches are not made
    for concurrent use, and a case's "created or replaced" answer must match what was
    stored."""


def server_state(request: Request) -> ServerState:
    return request.app.state.lbp
