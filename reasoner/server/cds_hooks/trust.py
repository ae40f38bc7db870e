"""Which CDS clients the CDS Hooks services trust: the file given to ``serve --cds-trust``.

CDS Hooks 2.0 ("Trusting CDS Clients") has every call carry a JWT signed by the client;
the service keeps an allowlist of issuers (``iss``) and of the URLs their JWK Sets may be
fetched from (``jku``). This file is that allowlist, in JSON::

    {
      "base_url": "https://cds.example.org",
      "issuers": {
        "https://ehr.example.com": {
          "jwks_url": "https://ehr.example.com/.well-known/jwks.json",
          "allowed_jku": ["https://ehr.example.com/jwks/"]
        },
        "https://other-ehr.example.net": {"jwks_file": "other-ehr.jwks.json"}
      }
    }

``base_url`` is the service's base URL as the clients call it (behind a proxy, the
proxy's): a token's ``aud`` must be ``{base_url}/cds-services/{id}``. It is configured,
not read from the request, because a ``Host`` header is the caller's to choose: a token
issued for another service could otherwise be replayed here with that service's host name.
Each issuer names where its keys are: ``jwks_url`` (fetched), ``jwks_file`` (a JWK Set file,
relative to this file; a single configured key is a set of one) and ``allowed_jku``
(URLs, or URL prefixes at a ``/`` boundary, that a token's ``jku`` header may name), at
least one of them. Optional: ``algorithms`` (a subset of ``SIGNING_ALGORITHMS``; default
all), ``leeway_seconds`` (clock skew allowed on ``exp``/``iat``/``nbf``, default 30),
``max_lifetime_seconds`` (how far ahead ``exp`` may be, default 3600: used tokens are
remembered until they expire), ``jwks_cache_seconds`` (default 300) and
``jwks_timeout_seconds`` (default 5).

Key URLs are https, or http on a loopback host (a test set-up): keys fetched in the clear
could be replaced on the way. Everything is checked when the server starts, jwks files
read then, so that a mistake stops ``serve`` with a message rather than failing calls.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..settings import SettingsError
from .jwks import SIGNING_ALGORITHMS, JwksError, Keys, parse_jwks

LOOPBACK_NAMES = frozenset({"localhost"})


class _IssuerFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jwks_url: str | None = None
    jwks_file: str | None = None
    allowed_jku: list[str] = []


class _TrustFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str
    issuers: dict[str, _IssuerFile] = Field(min_length=1)
    algorithms: list[str] = Field(default=list(SIGNING_ALGORITHMS), min_length=1)
    leeway_seconds: float = Field(default=30, ge=0, le=600)
    max_lifetime_seconds: float = Field(default=3600, gt=0)
    jwks_cache_seconds: float = Field(default=300, ge=0)
    jwks_timeout_seconds: float = Field(default=5, gt=0, le=60)


@dataclass(frozen=True)
class IssuerTrust:
    """Where the keys of one trusted issuer are."""

    jwks_url: str | None
    allowed_jku: tuple[str, ...]
    keys: Keys | None
    """The keys of its ``jwks_file``, read at start."""


@dataclass(frozen=True)
class CdsTrust:
    """The checked ``--cds-trust`` file (see the module docstring)."""

    base_url: str
    issuers: Mapping[str, IssuerTrust]
    algorithms: tuple[str, ...]
    leeway: float
    max_lifetime: float
    jwks_cache: float
    jwks_timeout: float

    def endpoint(self, path: str) -> str:
        """The URL a client calls for ``path`` (``/cds-services/...``): a token's ``aud``."""
        return self.base_url + path


def load_trust(path: Path) -> CdsTrust:
    """The trust file at ``path``; raises ``SettingsError`` naming the file and the field."""
    where = f"--cds-trust {path}"
    try:
        raw = _TrustFile.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise SettingsError(f"{where}: cannot read it ({exc.strerror})") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'the file'}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"{where}: {problems}") from None
    if problem := _url_problem(raw.base_url, "base_url", key_url=False):
        raise SettingsError(f"{where}: {problem}")
    if unknown := [a for a in raw.algorithms if a not in SIGNING_ALGORITHMS]:
        raise SettingsError(
            f"{where}: algorithms: {', '.join(map(repr, unknown))} not accepted; CDS Hooks allows "
            f"asymmetric signatures only: {', '.join(SIGNING_ALGORITHMS)}"
        )
    issuers = {iss: _issuer(iss, spec, path.parent, where) for iss, spec in raw.issuers.items()}
    return CdsTrust(
        base_url=raw.base_url.rstrip("/"),
        issuers=issuers,
        algorithms=tuple(raw.algorithms),
        leeway=raw.leeway_seconds,
        max_lifetime=raw.max_lifetime_seconds,
        jwks_cache=raw.jwks_cache_seconds,
        jwks_timeout=raw.jwks_timeout_seconds,
    )


def _issuer(iss: str, spec: _IssuerFile, folder: Path, where: str) -> IssuerTrust:
    field = f"issuers.{iss}"
    if not iss:
        raise SettingsError(f"{where}: issuers: an issuer cannot be the empty string")
    if not (spec.jwks_url or spec.jwks_file or spec.allowed_jku):
        raise SettingsError(f"{where}: {field}: give jwks_url, jwks_file or allowed_jku")
    urls = [("jwks_url", spec.jwks_url)] if spec.jwks_url else []
    urls += [(f"allowed_jku[{i}]", url) for i, url in enumerate(spec.allowed_jku)]
    for name, url in urls:
        if problem := _url_problem(url, f"{field}.{name}", key_url=True):
            raise SettingsError(f"{where}: {problem}")
    keys = None
    if spec.jwks_file:
        file = folder / spec.jwks_file
        try:
            keys = parse_jwks(file.read_bytes(), f"{field}.jwks_file {file}")
        except OSError as exc:
            raise SettingsError(f"{where}: {field}.jwks_file: cannot read {file} ({exc.strerror})") from None
        except JwksError as exc:
            raise SettingsError(f"{where}: {exc}") from None
    return IssuerTrust(spec.jwks_url, tuple(spec.allowed_jku), keys)


def _url_problem(text: str, field: str, key_url: bool) -> str | None:
    """Why ``text`` cannot be the URL ``field``; key URLs must be https unless on loopback."""
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host or url.fragment or url.userinfo:
        return f"{field}: {text!r} is not an http(s) URL with a host (and no user info or fragment)"
    if key_url and url.scheme == "http" and not _loopback(url.host):
        return f"{field}: {text!r}: keys are fetched over https only (http on a loopback host for tests)"
    if not key_url and url.query:
        return f"{field}: {text!r} must have no query"
    return None


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() in LOOPBACK_NAMES
