"""What an operation may do on this server, decided before it runs.

``SERVICE`` makes the server send a request to another endpoint and ``LOAD`` makes it
fetch a URL or read a file on the client's behalf; both are refused unless switched on
(``--allow-service``, ``--allow-load``), since either turns the endpoint into a proxy
into whatever network or file system the server can reach. pyoxigraph would carry them
out (it has an HTTP client), so the refusal cannot be left to it.
"""

from __future__ import annotations

from ..settings import ServerSettings
from .protocol import Operation, ProtocolError
from .text import Scan, depth_problem


def check_operation(operation: Operation, scan: Scan, settings: ServerSettings) -> None:
    """Raise a ``ProtocolError`` (400) for what the settings do not allow."""
    if problem := depth_problem(scan, settings.max_query_depth):
        raise ProtocolError(400, problem)
    if scan.has("SERVICE") and not settings.allow_service:
        raise ProtocolError(
            400, "SERVICE (federated query) is not allowed on this server: it does not query other endpoints"
        )
    if operation.kind != "update":
        return
    if scan.has("LOAD") and not settings.allow_load:
        raise ProtocolError(400, "LOAD is not allowed on this server: it does not fetch URLs or read files")
    if (operation.default_graphs or operation.named_graphs) and scan.has("USING", "WITH"):
        raise ProtocolError(
            400,
            "using-graph-uri/using-named-graph-uri conflict with the update's own USING or WITH "
            "(SPARQL 1.1 Protocol §2.2.3): give the dataset one way",
        )
