"""The audit log: one JSON line (JSON Lines) for each attempt to write a stored case and
each CDS Hooks decision, saying who, when, what, which case, under which knowledge base,
and with what outcome; appended to a file given at start (``serve --audit-log FILE``)
and rotated by size.

Lines go through the standard library's ``logging`` (logger ``lbp_imaging.audit``) to a
``RotatingFileHandler``: the file is opened for appending, and when the next line would
take it past its size it is renamed ``FILE.1`` (``FILE.1`` to ``FILE.2``, and so on, the
oldest beyond the kept number deleted) and a new ``FILE`` is started. Other code may log
its own audit lines to the same logger (the CDS Hooks feedback does); they land in the
same file.

A line is written, and flushed to the operating system, on the thread that did the work
and before the answer is sent: a case write's line inside the case lock, after the store
has written the case to disk, so that the lines of the writes are in the order the writes
were applied and a write that was acknowledged has its line. Nothing is written on the
event loop.

Who: the token that updates need names no one, so a line says ``bearer token`` (the
server's token was presented) or ``anonymous``, with the client's address as uvicorn
reports it (the peer, or the ``X-Forwarded-For`` a proxy on 127.0.0.1 sent); for a CDS
Hooks call, the ``iss`` and ``sub`` of the client's JWT once it has been verified
(``jwt``), never the claims of a token nobody checked, which anyone can write.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from logging.handlers import RotatingFileHandler
from pathlib import Path

import orjson
from starlette.requests import Request

from ..cases.records import Recommendation

LOGGER = "lbp_imaging.audit"
BEARER_TOKEN = "bearer token"
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Actor:
    """Who asked, as far as the server can tell (see the module docstring)."""

    credential: str
    """``BEARER_TOKEN``, ``ANONYMOUS`` or, for a CDS client, ``bearer JWT``."""
    client: str | None
    """The client's address; ``None`` when the connection has none (a Unix socket)."""
    jwt: Mapping[str, str] | None = None
    """The verified JWT's ``iss``, ``sub`` and the like, for a CDS client."""

    @classmethod
    def of(cls, request: Request, credential: str, jwt: Mapping[str, str] | None = None) -> Actor:
        return cls(credential, request.client.host if request.client else None, jwt)


def _fields(recommendation: Recommendation) -> dict[str, str | None]:
    outcome, procedure, urgency = recommendation
    return {"outcome": outcome, "procedure": procedure, "urgency": urgency}


class AuditLog:
    """The server's audit log; one that writes nothing when no file was given."""

    def __init__(
        self, knowledge_base: Mapping[str, str | None], path: Path | None, max_bytes: int, backups: int
    ):
        """Open ``path`` for appending (``OSError`` when it cannot be opened: the server
        then does not start). ``knowledge_base`` (``KnowledgeBase.identity``) goes in
        every line."""
        self.knowledge_base = dict(knowledge_base)
        self.path = path
        self._logger = logging.getLogger(LOGGER)
        self._handler: RotatingFileHandler | None = None
        if path is not None:
            try:
                handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
            except OSError as exc:
                raise OSError(f"cannot open the audit log {path}: {exc.strerror or exc}") from None
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger.addHandler(handler)
            self._logger.setLevel(logging.INFO)
            self._logger.propagate = False  # not also on the server's console
            self._handler = handler

    def record(
        self,
        event: str,
        case: str,
        actor: Actor,
        status: int,
        *,
        version: str | None = None,
        previous: str | None = None,
        recommendation: Recommendation | None = None,
        **details: str,
    ) -> None:
        """Append one line: ``event`` (create, replace, delete, cds-decision) of ``case`` by
        ``actor``, answered with ``status``; the case's version after the event and before
        it (``None``: no case stored), the recommendation made, and ``details`` (a CDS
        call's service and hook instance). Blocks for a file write: call it off the event
        loop."""
        if self._handler is None:
            return
        line = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "event": event,
            "case": case,
            "credential": actor.credential,
            "client": actor.client,
            "jwt": dict(actor.jwt) if actor.jwt is not None else None,
            "knowledgeBase": self.knowledge_base,
            "status": status,
            "version": version,
            "previousVersion": previous,
            "recommendation": None if recommendation is None else _fields(recommendation),
            **details,
        }
        self._logger.info(orjson.dumps(line).decode("utf-8"))

    def close(self) -> None:
        """Stop writing to the file (when the server stops)."""
        if self._handler is not None:
            self._logger.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
