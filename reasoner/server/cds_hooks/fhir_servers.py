"""Which FHIR servers the CDS Hooks service may fetch patient data from.

A hook request names its ``fhirServer``. Fetching from whatever a caller names would let
anyone who can reach this service make it send requests, with a bearer token of the
caller's choosing, to any host the service can reach: its own loopback interface, the
internal network, a cloud metadata endpoint (server-side request forgery). So the
service fetches only from the base URLs the server was started with (``lbp-imaging
serve --fhir-server URL``, repeatable); started without any, it fetches from no server,
and a request whose prefetch is incomplete gets 412.

A URL is *within* a base URL when, as httpx (which makes the requests) reads them, both
have the same scheme, host and port (a default port written or not), and the URL's path
is the base's path or below it at a ``/`` boundary (``/fhir`` allows ``/fhir/r4``, not
``/fhir-admin``). A URL with user info or a fragment, or a path segment that decodes to
``.`` or ``..``, is never within: each could make a request go elsewhere than the URL
appears to say. Base URLs (``--fhir-server``, ``fhirServer``) have no query either; the
``next`` links of a search, which do, are checked with ``query=True``.
"""

from __future__ import annotations

from urllib.parse import unquote

import httpx

DEFAULT_PORTS = {"http": 80, "https": 443}


def _segments(url: httpx.URL, query: bool = False) -> list[str] | None:
    """The URL's path segments; None for a URL that is not a plain http(s) URL."""
    if url.scheme not in ("http", "https") or not url.host:
        return None
    if url.userinfo or url.fragment or (url.query and not query):
        return None
    segments = [s for s in url.raw_path.decode("ascii").split("?")[0].split("/") if s]
    if any(unquote(s) in (".", "..") for s in segments):
        return None
    return segments


def _parse(text: str) -> httpx.URL | None:
    try:
        return httpx.URL(text)
    except httpx.InvalidURL:
        return None


def base_url_problem(text: str) -> str | None:
    """Why ``text`` cannot be an allowed base URL, or None when it can."""
    url = _parse(text)
    if url is None or _segments(url) is None:
        return (
            f"{text!r} is not a FHIR base URL: http(s) with a host, and no user info, query, "
            "fragment or dot segments"
        )
    return None


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, url.port or DEFAULT_PORTS[url.scheme]


def within(text: str, base: str, query: bool = False) -> bool:
    """Whether the URL ``text`` (with a query if ``query``) is ``base`` or below it (see
    the module docstring)."""
    url, root = _parse(text), _parse(base)
    if url is None or root is None:
        return False
    segments, root_segments = _segments(url, query), _segments(root)
    if segments is None or root_segments is None:
        return False
    same_origin = _origin(url) == _origin(root)
    return same_origin and segments[: len(root_segments)] == root_segments


def allowed(text: str, bases: tuple[str, ...]) -> bool:
    """Whether the service may fetch from the FHIR server at ``text``: within one of
    ``bases`` (none when the tuple is empty)."""
    return any(within(text, base) for base in bases)
