"""The server's settings: what it allows and how much one query may cost.

Everything is refused unless switched on: the endpoint is read-only, makes no outgoing
requests and reads no files for a client; limits have safe defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .cds_hooks.fhir_servers import base_url_problem
from .sparql.text import DEFAULT_MAX_DEPTH

if TYPE_CHECKING:  # cds_trust reports its errors as SettingsError, so it imports this module
    from .cds_hooks.trust import CdsTrust

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
    cds_trust: CdsTrust | None = None
    """The CDS clients whose signed JWTs the CDS Hooks services require (``serve
    --cds-trust FILE``, see ``cds_trust``); None by default: calls need no token."""
    query_processes: int = 8
    """Query processes, so queries evaluated at once; more wait (their wait counts towards
    ``timeout``). More than the cores, so that a few long queries leave processes free for
    short ones (the operating system shares the cores among them). See ``query_pool``."""
    max_query_memory_mb: int = 512
    """MiB by which one query may grow its process; past that it fails (503)."""
    store_threads: int = 4
    """Threads for the store reads and writes of cases, pages and CDS Hooks (never queued
    behind SPARQL queries, which run in the query processes)."""
    max_body_bytes: int = 16 * 1024 * 1024
    """The largest request body any endpoint reads; larger ones get 413."""
    case_workers: int = 1
    """Processes that assess posted cases (off the server's GIL); more posts wait."""
    answer_cache_bytes: int = 64 * 1024 * 1024
    """Most bytes of query answers kept until the next write (0: none kept)."""
    max_query_depth: int = DEFAULT_MAX_DEPTH
    """The deepest nesting of brackets a query or update may have; deeper ones are refused
    (400) before they are parsed (see ``sparql_text.DEFAULT_MAX_DEPTH``)."""
    audit_log: Path | None = None
    """The file the audit log of case writes and CDS Hooks decisions is appended to
    (``audit_log``); none by default, so that the server writes no file it was not given."""
    audit_log_max_bytes: int = 10 * 1024 * 1024
    """The size past which the audit log is rotated (renamed ``FILE.1``, and so on)."""
    audit_log_backups: int = 5
    """How many rotated audit log files are kept (``FILE.1`` … ``FILE.N``)."""
    form_link_seconds: float = 15 * 60
    """How long the link of an undetermined order's CDS card to its pre-filled form lives
    (``form_links``): the clinician follows it while ordering."""
    public_url: str | None = None
    """The server's base URL as clients reach it, for the links in CDS cards; None: the
    URL each request came to (right unless a proxy rewrites it)."""

    def __post_init__(self) -> None:
        if self.allow_update and not self.token:
            raise SettingsError(f"updates need a bearer token: give --token or set ${TOKEN_ENV}")
        if self.timeout <= 0:
            raise SettingsError("the query timeout must be positive")
        if self.max_rows < 1:
            raise SettingsError("the row cap must be at least 1")
        if self.query_processes < 1:
            raise SettingsError("at least one query process is needed")
        if self.max_query_memory_mb < 16:
            raise SettingsError("a query needs at least 16 MiB of memory")
        if self.store_threads < 1:
            raise SettingsError("at least one store thread is needed")
        if self.max_body_bytes < 1024:
            raise SettingsError("the body size limit must be at least 1024 bytes")
        if self.case_workers < 1:
            raise SettingsError("at least one case worker is needed")
        if self.max_query_depth < 1:
            raise SettingsError("the query depth limit must be at least 1")
        if self.answer_cache_bytes < 0:
            raise SettingsError("the answer cache size cannot be negative")
        if self.audit_log_max_bytes < 1:
            raise SettingsError("the audit log's rotation size must be positive")
        if self.audit_log_backups < 1:
            raise SettingsError("at least one rotated audit log file must be kept")
        for url in self.fhir_servers:
            if problem := base_url_problem(url):
                raise SettingsError(problem)
        if self.form_link_seconds <= 0:
            raise SettingsError("the form links' lifetime must be positive")
        if self.public_url is not None and (problem := base_url_problem(self.public_url)):
            raise SettingsError(f"--public-url: {problem}")
