"""How the server and its query processes talk: one message is a JSON header and a byte body.

A frame is the header's length and the body's length (two unsigned 32-bit big-endian
integers), then the header (UTF-8 JSON) and the body. JSON, not pickle, because a query
process evaluates text sent by clients: whatever it answers is read as data, never as
objects to rebuild. Used over Unix stream sockets, blocking in the query processes and
with asyncio streams in the server.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import orjson

_LENGTHS = struct.Struct(">II")
MAX_HEADER = 64 * 1024 * 1024
"""A header longer than this is a broken peer, not a message (bodies carry the answers)."""


class PeerGone(Exception):
    """The other end closed the connection (or sent something that is not a frame)."""


def frame(header: dict[str, Any], body: bytes = b"") -> bytes:
    head = orjson.dumps(header)
    return _LENGTHS.pack(len(head), len(body)) + head + body


def _header(data: bytes) -> dict[str, Any]:
    try:
        header = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise PeerGone("the peer sent a header that is not JSON") from None
    if not isinstance(header, dict):
        raise PeerGone("the peer sent a header that is not an object")
    return header


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise PeerGone("the peer closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def send(sock: socket.socket, header: dict[str, Any], body: bytes = b"") -> None:
    sock.sendall(frame(header, body))


def receive(sock: socket.socket) -> tuple[dict[str, Any], bytes]:
    head_size, body_size = _LENGTHS.unpack(_recv_exactly(sock, _LENGTHS.size))
    if head_size > MAX_HEADER:
        raise PeerGone("the peer sent a header too long to be one")
    header = _header(_recv_exactly(sock, head_size))
    return header, _recv_exactly(sock, body_size)


async def read(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    try:
        head_size, body_size = _LENGTHS.unpack(await reader.readexactly(_LENGTHS.size))
        if head_size > MAX_HEADER:
            raise PeerGone("the peer sent a header too long to be one")
        header = _header(await reader.readexactly(head_size))
        return header, await reader.readexactly(body_size)
    except (asyncio.IncompleteReadError, ConnectionError):
        raise PeerGone("the peer closed the connection") from None


def parse(data: bytes) -> tuple[dict[str, Any], bytes]:
    """A whole frame received in one piece (a datagram)."""
    if len(data) < _LENGTHS.size:
        raise PeerGone("the peer sent a message too short to be a frame")
    head_size, body_size = _LENGTHS.unpack_from(data)
    end = _LENGTHS.size + head_size
    if len(data) != end + body_size:
        raise PeerGone("the peer sent a message of another length than it says")
    return _header(data[_LENGTHS.size : end]), data[end:]
