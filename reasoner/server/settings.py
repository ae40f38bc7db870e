"""The server's settings: what it allows and how much one query may cost.

Everything is refused unless switched on: the endpoint is read-only, makes no outgoing
requests and reads no files for a client; limits have safe defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from .fhir_servers import base_url_problem
from .sparql_text import DEFAULT_MAX_DEPTH

TOKEN_ENV = "LBP_IMAGING_TOKEN"


class SettingsError(ValueError):
    """The settings contradict each other (for example updates allowed without a token)."""


@dataclass(frozen=True)
class ServerSettings:
    """How the server behaves; see README "SPARQL endpoint" for each setting."""

    timeout: float = 5.0
    """Seconds a query may take, from arrival (waiting for a worker thread counts)."""
    max_rows: int = 10_000
    """Most solutions (SELECT) or triples (CONSTRUCT/DESCRIBE) one answer may hold."""
    allow_update: bool = False
    """Accept SPARQL Update, from clients that present ``token``."""
    token: str | None = None
    """The bearer token updates need; required when ``allow_update`` is on."""
    allow_service: bool = False
    """Let queries call other endpoints with ``SERVICE`` (the server makes the request)."""
    allow_load: bool = False
    """Let updates ``LOAD`` a URL or file (the server fetches or reads it)."""
    cors_origins: tuple[str, ...] = ()
    """Origins whose browser scripts may call the server (``*`` for any)."""
    fhir_servers: tuple[str, ...] = ()
    """Base URLs of the FHIR servers the CDS Hooks service may fetch patient data from
    (``fhir_servers``); none by default, so that no caller can make it send requests."""
    query_threads: int = 4
    """Queries evaluated at once; more wait (their wait counts towards ``timeout``)."""
    case_workers: int = 1
    """Processes that assess posted cases (off the server's GIL); more posts wait."""
    answer_cache_bytes: int = 64 * 1024 * 1024
    """Most bytes of query answers kept until the next write (0: none kept)."""
    max_query_depth: int = DEFAULT_MAX_DEPTH
    """The deepest nesting of brackets a query or update may have; deeper ones are refused
    (400) before they are parsed (see ``sparql_text.DEFAULT_MAX_DEPTH``)."""

    def __post_init__(self) -> None:
        if self.allow_update and not self.token:
            raise SettingsError(f"updates need a bearer token: give --token or set ${TOKEN_ENV}")
        if self.timeout <= 0:
            raise SettingsError("the query timeout must be positive")
        if self.max_rows < 1:
            raise SettingsError("the row cap must be at least 1")
        if self.query_threads < 1:
            raise SettingsError("at least one query thread is needed")
        if self.case_workers < 1:
            raise SettingsError("at least one case worker is needed")
        if self.max_query_depth < 1:
            raise SettingsError("the query depth limit must be at least 1")
        if self.answer_cache_bytes < 0:
            raise SettingsError("the answer cache size cannot be negative")
        for url in self.fhir_servers:
            if problem := base_url_problem(url):
                raise SettingsError(problem)
