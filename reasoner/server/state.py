"""What every router of the server shares: the store, the settings and the query threads.

Kept on ``app.state`` and handed to endpoints through ``Depends(server_state)``, so that a
router added later (cases, CDS Hooks) reaches the same store without globals.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyoxigraph as ox
from fastapi import Request

from .executor import QueryExecutor
from .settings import ServerSettings


@dataclass
class ServerState:
    store: ox.Store
    settings: ServerSettings
    executor: QueryExecutor
    knowledge_graphs: list[str]
    """The named graphs that hold the knowledge base (listed in the service description)."""


def server_state(request: Request) -> ServerState:
    return request.app.state.lbp
