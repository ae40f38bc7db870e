"""Check the JWT a CDS client sends with each call (CDS Hooks 2.0, "Trusting CDS Clients").

On when the server is started with ``--cds-trust FILE`` (``cds_trust``); off by default, so
that local use, the examples and the tests need no token. When on, a call to a service or
to its feedback endpoint is answered only if its ``Authorization: Bearer <JWT>``:

- has a header ``alg`` from the configured asymmetric algorithms (never ``none``, never
  HMAC) and a ``kid``;
- has an ``iss`` that is a configured issuer;
- is signed by the key ``kid`` of that issuer's JWK Set: the one its token's ``jku`` header
  names when that URL is allowed for the issuer (another ``jku`` is refused, not ignored),
  else its configured ``jwks_file`` or ``jwks_url``; a key whose own ``alg`` differs from the
  token's, whose type or curve does not fit it, or an RSA key under 2048 bits, does not verify;
- has ``aud`` equal to (or a list containing) the URL of the endpoint called, as the client
  calls it (``base_url`` of the trust file);
- has ``iss``, ``aud``, ``exp``, ``iat`` and ``jti``; is not expired and not issued in the
  future (with ``leeway``); expires no more than ``max_lifetime`` ahead;
- has a ``jti`` not seen before from that issuer while it is valid.

Anything else is 401 with a ``WWW-Authenticate: Bearer`` challenge and an OperationOutcome
saying which check failed, in these terms, never the token nor a library's message.

Replay protection keeps each accepted ``(iss, jti)`` in memory until the token expires
(``max_lifetime`` bounds how long): a restarted server has forgotten them, and a token
used before the restart is accepted once more until it expires. Several server processes
behind one address would each keep their own.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

import jwt
from fastapi.responses import JSONResponse
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidKeyError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from ..http.auth import REALM
from .fhir_servers import within
from .jwks import JwksError, JwksFetcher, Keys
from .request import HookError
from .trust import CdsTrust, IssuerTrust

REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
"""The claims CDS Hooks 2.0 makes REQUIRED (``tenant`` is optional)."""
FHIR_JSON = "application/fhir+json"
MALFORMED = (
    "the JWT's claims are malformed: exp, iat and nbf must be numbers, jti a non-empty string, "
    "aud a string or a list of strings"
)


@dataclass(frozen=True)
class CdsClient:
    """Who called, as the verified token says: for logs and audit."""

    issuer: str
    subject: str | None
    tenant: str | None
    token_id: str

    def as_log(self) -> dict[str, str]:
        fields = {"iss": self.issuer, "sub": self.subject, "tenant": self.tenant, "jti": self.token_id}
        return {k: v for k, v in fields.items() if v is not None}


class ClientAuthError(Exception):
    """A call refused because its JWT is missing or fails a check; ``presented`` says
    whether a token came at all (RFC 6750: the challenge then carries ``invalid_token``)."""

    def __init__(self, problem: str, presented: bool = True):
        self.problem, self.presented = problem, presented
        super().__init__(problem)

    def response(self) -> JSONResponse:
        """401 with a Bearer challenge and the problem as a FHIR OperationOutcome."""
        challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if self.presented else "")
        outcome = HookError(401, f"CDS client not trusted: {self.problem}", code="security").outcome()
        return JSONResponse(
            outcome, status_code=401, media_type=FHIR_JSON, headers={"WWW-Authenticate": challenge}
        )


class UsedTokens:
    """The ``(iss, jti)`` of accepted tokens, each kept until its ``exp`` plus the leeway
    (after that the token is refused as expired anyway). Used on the event loop only."""

    def __init__(self, leeway: float):
        self.leeway = leeway
        self._until: dict[tuple[str, str], float] = {}
        self._expiries: list[tuple[float, tuple[str, str]]] = []

    def first_use(self, issuer: str, token_id: str, expires: float) -> bool:
        """Record the token; False when it was recorded before (a replay)."""
        now = time.time()
        while self._expiries and self._expiries[0][0] + self.leeway < now:
            _, key = heapq.heappop(self._expiries)
            self._until.pop(key, None)
        key = (issuer, token_id)
        if key in self._until:
            return False
        self._until[key] = expires
        heapq.heappush(self._expiries, (expires, key))
        return True


class ClientVerifier:
    """Checks CDS clients' JWTs against a trust file (see the module docstring)."""

    def __init__(self, trust: CdsTrust):
        self.trust = trust
        self.fetcher = JwksFetcher(trust.jwks_cache, trust.jwks_timeout)
        self.used = UsedTokens(trust.leeway)

    async def verify(self, authorization: str | None, paths: tuple[str, ...]) -> CdsClient:
        """The client a call with this ``Authorization`` header comes from, if its token
        is for one of the endpoint ``paths`` (``/cds-services/...``); raises ``ClientAuthError``."""
        token = _bearer(authorization)
        header, claims = _unverified(token)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.trust.algorithms:
            accepted = ", ".join(self.trust.algorithms)
            raise ClientAuthError(f"the JWT's alg {_show(alg)} is not accepted; accepted: {accepted}")
        if not isinstance(kid, str) or not kid:
            raise ClientAuthError("the JWT header has no kid naming the key that signed it")
        iss = claims.get("iss")
        if not isinstance(iss, str) or not iss:
            raise ClientAuthError("the JWT has no iss claim naming its issuer")
        issuer = self.trust.issuers.get(iss)
        if issuer is None:
            raise ClientAuthError(f"the issuer (iss) {_show(iss)} is not one this service trusts")
        jwk = (await self._keys(issuer, iss, header.get("jku"), kid)).get(kid)
        if jwk is None:
            raise ClientAuthError(f"the JWK Set of issuer {_show(iss)} has no key with kid {_show(kid)}")
        if jwk.get("alg", alg) != alg:
            raise ClientAuthError(f"key {_show(kid)} of issuer {_show(iss)} is for {jwk['alg']}, not {alg}")
        audiences = [self.trust.endpoint(path) for path in paths]
        payload = self._decode(token, jwk, alg, iss, kid, audiences)
        exp, jti = payload["exp"], payload["jti"]
        if isinstance(exp, bool) or not isinstance(exp, int | float) or not jti:
            raise ClientAuthError(MALFORMED)
        if exp > time.time() + self.trust.max_lifetime:
            raise ClientAuthError(
                f"the JWT expires more than {self.trust.max_lifetime:g} s ahead (exp); "
                "this service accepts short-lived tokens only"
            )
        if not self.used.first_use(iss, jti, exp):
            raise ClientAuthError("the JWT has been used before (same jti): each call needs a new token")
        return CdsClient(iss, _text(payload.get("sub")), _text(payload.get("tenant")), jti)

    async def _keys(self, issuer: IssuerTrust, iss: str, jku: object, kid: str) -> Keys:
        """The JWK Set to verify with: the token's ``jku`` when allowed, else the configured one."""
        try:
            if jku is not None:
                allowed = isinstance(jku, str) and (
                    jku == issuer.jwks_url or any(within(jku, base) for base in issuer.allowed_jku)
                )
                if not allowed:
                    raise ClientAuthError(
                        f"the JWT's jku {_show(jku)} is not an allowed JWK Set URL for issuer {_show(iss)}"
                    )
                return await self.fetcher.keys(jku, kid)
            if issuer.keys is not None:
                return issuer.keys
            if issuer.jwks_url is not None:
                return await self.fetcher.keys(issuer.jwks_url, kid)
        except JwksError as exc:
            raise ClientAuthError(str(exc)) from None
        raise ClientAuthError(f"the JWT has no jku, and issuer {_show(iss)} has no configured JWK Set")

    def _decode(self, token: str, jwk: dict, alg: str, iss: str, kid: str, audiences: list[str]) -> dict:
        """The verified claims; each failure in the words of the check that failed."""
        key_name = f"key {_show(kid)} of issuer {_show(iss)}"
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
        except PyJWTError:
            raise ClientAuthError(f"{key_name} cannot verify {alg} signatures") from None
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=list(self.trust.algorithms),
                audience=audiences,
                issuer=iss,
                leeway=self.trust.leeway,
                options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
            )
        except InvalidSignatureError:
            problem = f"the JWT's signature does not verify with {key_name}"
        except InvalidKeyError:
            problem = f"{key_name} is too weak or does not fit {alg}"
        except MissingRequiredClaimError as exc:
            problem = f"the JWT has no {exc.claim} claim (required: {', '.join(REQUIRED_CLAIMS)})"
        except ExpiredSignatureError:
            problem = "the JWT has expired (exp is past)"
        except ImmatureSignatureError:
            problem = "the JWT is not valid yet (iat or nbf is in the future)"
        except InvalidAudienceError:
            problem = f"the JWT's aud is not the URL of the endpoint called: {' or '.join(audiences)}"
        except PyJWTError:
            problem = MALFORMED
        raise ClientAuthError(problem)


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ClientAuthError(
            "this service needs a JWT signed by a trusted CDS client: send 'Authorization: Bearer <JWT>'",
            presented=False,
        )
    return token.strip()


def _unverified(token: str) -> tuple[dict, dict]:
    """The token's header and claims, before any check: to choose the key that checks them."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except PyJWTError:
        raise ClientAuthError(
            "the bearer token is not a JWT (three base64url parts joined by dots)"
        ) from None
    return header, claims


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _show(value: object, limit: int = 120) -> str:
    """A value from the token, quoted and cut short for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
