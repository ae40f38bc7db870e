"""Security headers on the server's answers: what a browser may do with a page.

Every answer says ``X-Content-Type-Options: nosniff``, so that a browser never reads a
query answer or a plain-text error (which may echo what a client sent) as HTML or script.
Every answer other than HTML gets ``OTHER_POLICY``: a browser that opens one as a document
(RDF/XML is rendered as XML, which could hold markup from a stored case) loads nothing
for it and runs no script in it. Every HTML answer (the pages, the term pages, the API
page) carries instead:

* ``Content-Security-Policy`` (``PAGE_POLICY``): scripts, styles, images, fetches and form
  submissions from this server only, no plugins, no ``<base>``, no framing. The pages load
  their stylesheet and script as files (``assets``) rather than inline, so no
  ``'unsafe-inline'`` is needed; the API page allows its one inline script by hash
  (``api_docs``). An answer that already has a policy keeps it.
* ``X-Frame-Options: DENY``, for browsers older than ``frame-ancestors``.
* ``Referrer-Policy: same-origin``: links to other sites (the licence, the sources) do not
  tell them which page, case or query they were followed from.

A pure ASGI middleware, not Starlette's ``BaseHTTPMiddleware``: it only adds headers to
the message that starts the answer and passes every body message through as it comes,
so streamed query answers stay streamed (``BaseHTTPMiddleware`` runs the endpoint in a
separate task and relays its body through a stream of its own). One middleware rather
than headers set by each route, so that no page, present or added later, can forget them.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_DIRECTIVES: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "object-src": "'none'",
    "base-uri": "'none'",
}
"""The pages' policy by directive. ``img-src`` allows ``data:`` URLs: the pages' empty
favicon and the icons inside Swagger UI's stylesheet. ``form-action`` is listed because
it does not fall back to ``default-src``."""


def content_security_policy(script_hashes: Iterable[str] = ()) -> str:
    """``PAGE_DIRECTIVES`` as a header value, allowing also the inline scripts whose CSP
    source expressions (``'sha256-…'``) are given."""
    directives = dict(PAGE_DIRECTIVES)
    directives["script-src"] = " ".join([directives["script-src"], *script_hashes])
    return "; ".join(f"{name} {value}" for name, value in directives.items())


PAGE_POLICY = content_security_policy()
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
HTML_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
"""Headers every HTML answer gets (unless its route set them)."""


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP answer (keeping any that
    the answer has already)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)  # a copy of the headers, set on the message
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if headers.get("content-type", "").lower().startswith("text/html"):
                    for name, value in HTML_HEADERS.items():
                        headers.setdefault(name, value)
                else:
                    headers.setdefault("Content-Security-Policy", OTHER_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)
