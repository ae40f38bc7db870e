"""JSON Web Key Sets (RFC 7517) of the CDS clients: read from a file or fetched over HTTP.

A CDS client signs its JWT with a key of its JWK Set; the service finds the key by the
token's ``kid``. A set is read whole and kept as ``{kid: JWK}``: keys that cannot sign
(``use`` other than ``sig``, symmetric ``oct`` keys, key types PyJWT does not know) are left
out, a set with no usable key, more than ``MAX_KEYS`` keys, two keys with one ``kid`` or a
private key is refused.

Fetching never stalls the server: it runs on the event loop with httpx's async client,
bounded in time (``asyncio.timeout`` over the whole exchange, so that a server that
trickles bytes cannot hold a request) and in size (``MAX_JWKS_BYTES``), follows no
redirect (an allowed URL must not lead elsewhere), and its outcome is kept: a set for
``ttl`` seconds, a failure for ``RETRY_AFTER`` seconds, so that a JWK Set server that is down
does not make every call wait for its own timeout. Concurrent calls that need the same
URL wait for one fetch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWTError

MAX_KEYS = 20
"""Most keys a JWK Set may hold; a client publishes a few (the current key and the next)."""
MAX_JWKS_BYTES = 64 * 1024
"""Largest JWK Set accepted (20 RSA-4096 public keys take about 16 KiB)."""
RETRY_AFTER = 10.0
"""Seconds a failed fetch is remembered before the URL is tried again."""
REFRESH_AFTER = 60.0
"""Seconds after which a token naming a key the cached set lacks fetches the set again
(the client may have rotated its keys); sooner, the cached set answers."""
SIGNING_ALGORITHMS = (
    *("ES256", "ES384", "ES512"),
    *("RS256", "RS384", "RS512"),
    *("PS256", "PS384", "PS512"),
    "EdDSA",
)
"""The asymmetric JWS algorithms (RFC 7518, RFC 8037) a CDS client's JWT may be signed with:
never ``none`` (no signature) nor HMAC (``HS*``, a shared secret), which CDS Hooks forbids."""
PUBLIC_KEY_TYPES = frozenset({"EC", "RSA", "OKP"})
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
"""JWK members that only private or symmetric keys have (RFC 7518 §6)."""

log = logging.getLogger("lbp_imaging.cds")
Keys = dict[str, dict]
"""A JWK Set as the service keeps it: each usable key by its ``kid``."""


class JwksError(Exception):
    """A JWK Set that cannot be used, with the reason in the words of its owner."""


def parse_jwks(text: bytes | str, where: str) -> Keys:
    """The usable keys of the JWK Set ``text``; ``where`` names it in messages (a file, a URL)."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep for the parser
        raise JwksError(f"{where} is not JSON, or is nested too deep") from None
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise JwksError(f"{where} is not a JWK Set: a JSON object with a 'keys' list")
    if len(keys) > MAX_KEYS:
        raise JwksError(f"{where} has {len(keys)} keys; at most {MAX_KEYS} are accepted")
    usable: Keys = {}
    for jwk in keys:
        if not isinstance(jwk, dict):
            raise JwksError(f"{where}: every key must be a JSON object")
        if PRIVATE_MEMBERS & jwk.keys():
            raise JwksError(f"{where} holds a private or symmetric key: publish public keys only")
        kid = jwk.get("kid")
        if not isinstance(kid, str) or jwk.get("use", "sig") != "sig" or not _readable(jwk):
            continue  # cannot be named by a token, or cannot verify a signature
        if kid in usable:
            raise JwksError(f"{where} has two keys with kid {kid!r}")
        usable[kid] = jwk
    if not usable:
        raise JwksError(f"{where} has no public signing key with a kid")
    return usable


def _readable(jwk: dict) -> bool:
    if jwk.get("kty") not in PUBLIC_KEY_TYPES or jwk.get("alg", "ES256") not in SIGNING_ALGORITHMS:
        return False
    try:
        PyJWK(jwk)
    except PyJWTError:
        return False
    return True


@dataclass
class _Fetched:
    keys: Keys | None
    error: str | None
    at: float
    """``time.monotonic()`` when fetched."""


class JwksFetcher:
    """JWK Sets fetched over HTTP and kept for ``ttl`` seconds; each fetch takes at most
    ``timeout`` seconds. Used on the event loop only (not thread-safe)."""

    def __init__(self, ttl: float, timeout: float):
        self.ttl, self.timeout = ttl, timeout
        self._cache: dict[str, _Fetched] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def keys(self, url: str, kid: str) -> Keys:
        """The keys of the JWK Set at ``url``, fetched again when the kept copy is older
        than ``ttl``, or older than ``REFRESH_AFTER`` and without ``kid``. Raises
        ``JwksError``."""
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            kept = self._cache.get(url)
            if kept is None or self._stale(kept, kid):
                kept = self._cache[url] = await self._fetch(url)
        if kept.error is not None:
            raise JwksError(kept.error)
        assert kept.keys is not None
        return kept.keys

    def _stale(self, kept: _Fetched, kid: str) -> bool:
        age = time.monotonic() - kept.at
        if kept.error is not None:
            return age >= RETRY_AFTER
        assert kept.keys is not None
        return age >= self.ttl or (kid not in kept.keys and age >= REFRESH_AFTER)

    async def _fetch(self, url: str) -> _Fetched:
        try:
            keys = parse_jwks(await self._download(url), f"the JWK Set at {url}")
        except JwksError as exc:
            log.warning("%s; calls that need it get 401 for the next %g s", exc, RETRY_AFTER)
            return _Fetched(None, str(exc), time.monotonic())
        return _Fetched(keys, None, time.monotonic())

    async def _download(self, url: str) -> bytes:
        where = f"the JWK Set at {url}"
        body = bytearray()
        try:
            async with (
                asyncio.timeout(self.timeout),
                httpx.AsyncClient(timeout=self.timeout) as client,
                client.stream("GET", url, headers={"Accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    raise JwksError(f"{where} could not be fetched: HTTP status {response.status_code}")
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksError(f"{where} is larger than {MAX_JWKS_BYTES // 1024} KiB")
        except TimeoutError:
            raise JwksError(f"{where} could not be fetched within {self.timeout:g} s") from None
        except httpx.HTTPError:
            raise JwksError(f"{where} could not be fetched: no answer from its server") from None
        return bytes(body)
