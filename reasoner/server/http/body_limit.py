"""Refuse request bodies larger than the server accepts, on every endpoint (413).

An ASGI middleware, so that no route can forget it: a declared ``Content-Length`` over
the limit is refused before any byte of the body is read; otherwise the body is read
here, counting, and refused as soon as it passes the limit (a chunked body declares no
length), so the server never holds more than the limit for one request. A body within
the limit is handed to the application as one piece. Endpoints may have lower limits of
their own (a posted case: ``case_upload.MAX_BODY_BYTES``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyLimit:
    """Wraps an ASGI application; ``max_bytes`` is the largest body it lets through."""

    def __init__(self, app: Callable[[Message, Receive, Send], Awaitable[None]], max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the application see it
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    async def _refuse(self, send: Send) -> None:
        text = (
            f"the request body is larger than this server accepts ({self.max_bytes:,} bytes; "
            "see the server's --max-body-mb)"
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(text)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": text})


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` first, then waits on the real one (for a
    disconnect)."""
    queued = list(messages)

    async def replayed() -> Message:
        return queued.pop(0) if queued else await receive()

    return replayed
