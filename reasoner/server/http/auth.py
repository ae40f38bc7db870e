"""Who may update: a bearer token (RFC 6750) on a server started with updates allowed.

The same rule guards every write a client asks for beyond submitting a new case: SPARQL
Update at ``/sparql``, replacing a stored case by posting its IRI again, and deleting a
case at ``/cases/{id}``.

Statuses follow HTTP semantics: a read-only server refuses every update with 403 (no
credential would help); a server that accepts updates answers 401 with a
``WWW-Authenticate: Bearer`` challenge when the token is missing or wrong (RFC 6750 §3.1
says an invalid token is 401 ``invalid_token``, not 403).
"""

from __future__ import annotations

import hmac

from ..settings import ServerSettings
from ..sparql.protocol import ProtocolError

REALM = "lbp-imaging"


def authorize_update(
    settings: ServerSettings, authorization: str | None, action: str = "SPARQL Update"
) -> None:
    """Raise a ``ProtocolError`` unless this request may update the store; ``action`` names
    what was asked for in the message."""
    if not settings.allow_update or not settings.token:
        raise ProtocolError(
            403,
            f"this server is read-only: {action} is refused (start it with --allow-update and --token)",
        )
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProtocolError(
            401,
            f"{action} needs a bearer token: send 'Authorization: Bearer <token>'",
            {"WWW-Authenticate": f'Bearer realm="{REALM}"'},
        )
    if not hmac.compare_digest(token.strip().encode("utf-8"), settings.token.encode("utf-8")):
        raise ProtocolError(
            401,
            "the bearer token is not valid",
            {"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'},
        )
