"""Who may update: a bearer token (RFC 6750) on a server started with updates allowed.

Statuses follow HTTP semantics: a read-only server refuses every update with 403 (no
credential would help); a server that accepts updates answers 401 with a
``WWW-Authenticate: Bearer`` challenge when the token is missing or wrong (RFC 6750 §3.1
says an invalid token is 401 ``invalid_token``, not 403).
"""

from __future__ import annotations

import hmac

from .protocol import ProtocolError
from .settings import ServerSettings

REALM = "lbp-imaging"


def authorize_update(settings: ServerSettings, authorization: str | None) -> None:
    """Raise a ``ProtocolError`` unless this request may update the store."""
    if not settings.allow_update or not settings.token:
        raise ProtocolError(
            403,
            "this server is read-only: SPARQL Update is refused (start it with --allow-update and --token)",
        )
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProtocolError(
            401,
            "SPARQL Update needs a bearer token: send 'Authorization: Bearer <token>'",
            {"WWW-Authenticate": f'Bearer realm="{REALM}"'},
        )
    if not hmac.compare_digest(token.strip().encode("utf-8"), settings.token.encode("utf-8")):
        raise ProtocolError(
            401,
            "the bearer token is not valid",
            {"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'},
        )
