"""CDS Hooks 2.0 security and feedback (reasoner/server/cds_hooks/auth.py, trust.py, jwks.py,
feedback.py) against real ``lbp-imaging serve`` processes.

One server is started with ``--cds-trust`` naming three issuers: one whose EC P-384 key is
in a JWK Set file, one whose RSA key a small HTTP server in this module serves (as its
``jwks_url`` and under an allowed ``jku`` prefix), and one whose JWK Set URL nobody answers.
The tokens are made here with PyJWT from keys generated here. Each check of the JWT has a
token that fails it alone, and must get 401 with a Bearer challenge and a message naming
that check. A second server, started without ``--cds-trust``, needs no token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sparql_server import ROOT, free_port, running

from reasoner.server.cds_hooks.feedback import AUDIT_LOGGER, log_feedback, parse_feedback
from reasoner.server.cds_hooks.request import HookError
from reasoner.server.cds_hooks.trust import load_trust
from reasoner.server.http.audit_log import Actor
from reasoner.server.settings import SettingsError

BASE_URL = "https://cds.test.example"
"""The service's URL as the clients call it (a proxy's, say): not the test server's."""
SIGN, SELECT = "lbp-imaging-order-sign", "lbp-imaging-order-select"
EC_ISSUER, RSA_ISSUER, DOWN_ISSUER = (
    "https://ehr-a.test.example",
    "https://ehr-b.test.example",
    "https://ehr-c.test",
)
SLOW_ISSUER = "https://ehr-d.test.example"
EXAMPLES = ROOT / "examples" / "cds-hooks"
NON_LUMBAR = (EXAMPLES / "09-non-lumbar-orders.request.json").read_bytes()
"""A call answered without assessing anyone: {"cards": []}."""


def public_jwk(key, kid: str, alg: str) -> dict:
    algorithm = jwt.get_algorithm_by_name(alg)
    return {**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, "alg": alg, "use": "sig"}


class Keys:
    """The clients' key pairs, made once for the module."""

    ec_key = ec.generate_private_key(ec.SECP384R1())
    other_ec_key = ec.generate_private_key(ec.SECP384R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class JwksHandler(BaseHTTPRequestHandler):
    """Serves the RSA issuer's JWK Set at ``/keys/jwks.json``, and at ``/slow/jwks.json`` once
    ``release`` is set; records every path asked for."""

    jwks: bytes = b""
    asked: list[str] = []  # noqa: RUF012  (one list for the module's server)
    arrived, release = threading.Event(), threading.Event()

    def do_GET(self) -> None:
        self.asked.append(self.path)
        if self.path == "/slow/jwks.json":
            self.arrived.set()
            self.release.wait(30)
        found = self.path in ("/keys/jwks.json", "/slow/jwks.json")
        body = self.jwks if found else b"{}"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def jwks_server():
    JwksHandler.jwks = json.dumps({"keys": [public_jwk(Keys.rsa_key, "rsa-1", "RS384")]}).encode()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), JwksHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def trust_file(tmp_path_factory, jwks_server):
    folder = tmp_path_factory.mktemp("trust")
    (folder / "ehr-a.jwks.json").write_text(json.dumps({"keys": [public_jwk(Keys.ec_key, "ec-1", "ES384")]}))
    trust = {
        "base_url": BASE_URL + "/",
        "issuers": {
            EC_ISSUER: {"jwks_file": "ehr-a.jwks.json"},
            RSA_ISSUER: {
                "jwks_url": f"{jwks_server}/keys/jwks.json",
                "allowed_jku": [f"{jwks_server}/keys/"],
            },
            DOWN_ISSUER: {"jwks_url": f"http://127.0.0.1:{free_port()}/jwks.json"},
            SLOW_ISSUER: {"jwks_url": f"{jwks_server}/slow/jwks.json"},
        },
        "algorithms": ["ES384", "RS384"],
    }
    path = folder / "cds-trust.json"
    path.write_text(json.dumps(trust))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory, trust_file):
    with running(["--cds-trust", str(trust_file)], tmp_path_factory.mktemp("logs")) as server:
        yield server


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    with running([], tmp_path_factory.mktemp("logs")) as server:
        yield server


def claims(service: str = SELECT, **changes) -> dict:
    now = int(time.time())
    base = {
        "iss": EC_ISSUER,
        "aud": f"{BASE_URL}/cds-services/{service}",
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        "tenant": "clinic-1",
    }
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def ec_token(payload: dict | None = None, kid: str = "ec-1", key=None, **headers) -> str:
    return jwt.encode(
        payload or claims(), key or Keys.ec_key, algorithm="ES384", headers={"kid": kid, **headers}
    )


def rsa_token(payload: dict | None = None, **headers) -> str:
    payload = payload or claims(iss=RSA_ISSUER)
    return jwt.encode(payload, Keys.rsa_key, algorithm="RS384", headers={"kid": "rsa-1", **headers})


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def call(
    server, token: str | None, service: str = SELECT, body: bytes = NON_LUMBAR, path: str = ""
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{server.url}/cds-services/{service}{path}", content=body, headers=headers, timeout=60)


def refused(response: httpx.Response, words: str) -> None:
    """401, a Bearer challenge, and an OperationOutcome whose message contains ``words``."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith('Bearer realm="lbp-imaging"')
    issue = response.json()["issue"][0]
    assert issue["code"] == "security"
    assert words in issue["diagnostics"], issue["diagnostics"]
    assert "Traceback" not in response.text


# -- accepted ---------------------------------------------------------------------------------
def test_valid_tokens_are_accepted(server, jwks_server):
    assert call(server, ec_token()).json() == {"cards": []}
    as_list = claims(aud=[f"{BASE_URL}/cds-services/{SELECT}", "https://elsewhere.example"])
    assert call(server, ec_token(as_list)).status_code == 200
    # authenticated first, then read: an order-select request sent to order-sign is a 400
    assert call(server, ec_token(claims(SIGN)), SIGN).status_code == 400
    JwksHandler.asked.clear()
    assert call(server, rsa_token()).status_code == 200  # jwks_url
    assert call(server, rsa_token(jku=f"{jwks_server}/keys/jwks.json")).status_code == 200  # allowed jku
    assert JwksHandler.asked.count("/keys/jwks.json") == 1  # fetched once, then kept


# -- refused: one check each ------------------------------------------------------------------
def test_no_token(server):
    response = call(server, None)
    refused(response, "send 'Authorization: Bearer <JWT>'")
    assert "invalid_token" not in response.headers["www-authenticate"]  # RFC 6750 §3.1: no token, no error
    refused(call(server, "not-a-jwt"), "not a JWT")


def test_wrong_issuer(server):
    refused(call(server, ec_token(claims(iss="https://evil.example"))), "issuer (iss) 'https://evil.example'")


def test_wrong_audience(server):
    refused(call(server, ec_token(claims(aud="https://evil.example/cds-services/x"))), "aud")
    # the test server's own URL is not the configured one: a Host header cannot choose it
    own = f"{server.url}/cds-services/{SELECT}"
    refused(call(server, ec_token(claims(aud=own))), f"{BASE_URL}/cds-services/{SELECT}")
    refused(call(server, ec_token(claims(SIGN))), "aud")  # a token for the other service


def test_expired_and_not_yet_valid(server):
    now = int(time.time())
    refused(call(server, ec_token(claims(exp=now - 120, iat=now - 400))), "expired")
    refused(call(server, ec_token(claims(iat=now + 600, exp=now + 900))), "not valid yet")
    refused(call(server, ec_token(claims(exp=now + 86_400))), "expires more than 3600 s ahead")


@pytest.mark.parametrize("claim", ["exp", "jti", "iat", "aud"])
def test_missing_claim(server, claim):
    refused(call(server, ec_token(claims(**{claim: None}))), f"no {claim} claim")


def test_malformed_claims(server):
    refused(call(server, ec_token(claims(exp=str(int(time.time()) + 60)))), "malformed")
    refused(call(server, ec_token(claims(jti=""))), "malformed")


def test_replayed_token(server):
    token = ec_token()
    assert call(server, token).status_code == 200
    refused(call(server, token), "used before (same jti)")
    # the same jti from another issuer is another token
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert call(server, rsa_token(claims(iss=RSA_ISSUER, jti=jti))).status_code == 200


def test_bad_signature(server):
    refused(call(server, ec_token(key=Keys.other_ec_key)), "signature does not verify with key 'ec-1'")
    header = ec_token().split(".")[0]
    forged = b64(claims(iss=EC_ISSUER, tenant="someone-else"))
    refused(call(server, f"{header}.{forged}.{ec_token().split('.')[2]}"), "signature does not verify")


def test_unsigned_and_symmetric_algorithms(server):
    none = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'ec-1'})}.{b64(claims())}."
    refused(call(server, none), "alg 'none' is not accepted")
    # HS384 "signed" with the issuer's public key as the secret: the classic key confusion
    secret = json.dumps(public_jwk(Keys.ec_key, "ec-1", "ES384")).encode()
    signing_input = f"{b64({'alg': 'HS384', 'typ': 'JWT', 'kid': 'ec-1'})}.{b64(claims())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha384).digest()
    refused(call(server, f"{signing_input}.{b64(mac)}"), "alg 'HS384' is not accepted")
    # an allowed alg that does not fit the key: RS384 claimed over the EC key's kid
    refused(call(server, rsa_token(claims(), kid="ec-1")), "key 'ec-1'")


def test_unknown_kid(server):
    refused(call(server, ec_token(kid="ec-2")), "has no key with kid 'ec-2'")
    refused(call(server, jwt.encode(claims(), Keys.ec_key, algorithm="ES384")), "no kid")


def test_jku_not_allowed_is_never_fetched(server, jwks_server):
    JwksHandler.asked.clear()
    for jku in (
        f"{jwks_server}/other/jwks.json",
        f"{jwks_server}/keys-admin/jwks.json",
        "https://evil.example/jwks",
    ):
        refused(call(server, rsa_token(jku=jku)), "is not an allowed JWK Set URL for issuer")
    refused(call(server, ec_token(jku=f"{jwks_server}/keys/jwks.json")), "not an allowed JWK Set URL")
    assert JwksHandler.asked == []


def test_unreachable_jwks_is_401_and_the_server_stays_up(server):
    refused(call(server, ec_token(claims(iss=DOWN_ISSUER))), "could not be fetched")
    assert call(server, ec_token()).status_code == 200


def test_a_slow_jwks_server_holds_only_its_own_calls(server):
    """While one call waits for a JWK Set, others are answered: the fetch holds no thread
    and does not block the event loop."""
    slow: list[httpx.Response] = []
    waiting = threading.Thread(target=lambda: slow.append(call(server, rsa_token(claims(iss=SLOW_ISSUER)))))
    waiting.start()
    try:
        assert JwksHandler.arrived.wait(30)
        assert call(server, ec_token()).status_code == 200
        assert httpx.get(f"{server.url}/cds-services", timeout=30).status_code == 200
        assert slow == []  # still waiting for its keys
    finally:
        JwksHandler.release.set()
        waiting.join(60)
    assert slow[0].status_code in (200, 401)  # keys arrived, or the fetch's time ran out first


# -- feedback ---------------------------------------------------------------------------------
FEEDBACK = {
    "feedback": [
        {
            "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
            "outcomeTimestamp": "2020-12-11T00:00:00Z",
        },
        {
            "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
            "outcome": "overridden",
            "overrideReason": {
                "reason": {"code": "clinical-judgement", "system": "https://example.org/override"},
                "userComment": "Patient John Doe prefers to wait",
            },
            "outcomeTimestamp": "2020-12-11T01:00:00+01:00",
        },
    ]
}


def feedback(server, body: object, token: str | None, service: str = SIGN) -> httpx.Response:
    return call(server, token, service, json.dumps(body).encode(), "/feedback")


def test_feedback_accepted_with_a_token(server):
    token = ec_token(claims(aud=f"{BASE_URL}/cds-services/{SIGN}/feedback"))
    response = feedback(server, FEEDBACK, token)
    assert (response.status_code, response.content) == (200, b"")
    logged = [line for line in server.log.read_text().splitlines() if '"event": "cds-feedback"' in line]
    assert len(logged) == 2 and FEEDBACK["feedback"][1]["card"] in logged[1]
    assert f'"iss": "{EC_ISSUER}"' in logged[0] and "John Doe" not in logged[1]
    refused(feedback(server, FEEDBACK, token), "used before")
    refused(feedback(server, FEEDBACK, None), "Bearer <JWT>")
    refused(feedback(server, FEEDBACK, ec_token(claims(SELECT))), "aud")


def test_feedback_off_by_default_and_checked(open_server):
    response = feedback(open_server, FEEDBACK, None)
    assert (response.status_code, response.content) == (200, b"")
    assert feedback(open_server, FEEDBACK, None, "no-such-service").status_code == 404
    bad = {"feedback": [{**FEEDBACK["feedback"][0], "outcome": "ignored"}]}
    response = feedback(open_server, bad, None)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["feedback[0].outcome"]


def test_hook_calls_need_no_token_by_default(open_server):
    assert call(open_server, None).json() == {"cards": []}
    assert call(open_server, "anything").json() == {"cards": []}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[1, 2", None),
        (b"[" * 50_000 + b"]" * 50_000, None),
        ({"feedback": {}}, "feedback"),
        ({"feedback": [{**FEEDBACK["feedback"][0], "card": "card-1"}]}, "feedback[0].card"),
        (
            {"feedback": [{**FEEDBACK["feedback"][0], "acceptedSuggestions": []}]},
            "feedback[0].acceptedSuggestions",
        ),
        (
            {"feedback": [{**FEEDBACK["feedback"][0], "acceptedSuggestions": [{"id": 7}]}]},
            "feedback[0].acceptedSuggestions[0].id",
        ),
        (
            {"feedback": [{**FEEDBACK["feedback"][1], "acceptedSuggestions": []}]},
            "feedback[0].acceptedSuggestions",
        ),
        (
            {"feedback": [{**FEEDBACK["feedback"][1], "overrideReason": {"reason": {"code": "x"}}}]},
            "feedback[0].overrideReason.reason.system",
        ),
        (
            {"feedback": [{**FEEDBACK["feedback"][0], "outcomeTimestamp": "2020-12-11T00:00:00"}]},
            "feedback[0].outcomeTimestamp",
        ),
        (
            {"feedback": [{**FEEDBACK["feedback"][0], "outcomeTimestamp": 1607644800}]},
            "feedback[0].outcomeTimestamp",
        ),
    ],
)
def test_malformed_feedback(body, field):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(HookError) as caught:
        parse_feedback(raw)
    assert caught.value.status == 400
    assert caught.value.field == field


def test_feedback_is_logged_one_json_line_each(caplog):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    log_feedback(SIGN, parse_feedback(json.dumps(FEEDBACK).encode()), Actor("anonymous", "127.0.0.1"))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == AUDIT_LOGGER]
    assert [(x["event"], x["service"], x["outcome"]) for x in lines] == [
        ("cds-feedback", SIGN, "accepted"),
        ("cds-feedback", SIGN, "overridden"),
    ]
    assert (lines[0]["credential"], lines[0]["client"], lines[0]["jwt"]) == ("anonymous", "127.0.0.1", None)
    assert lines[0]["acceptedSuggestions"] == ["e56e1945-20b3-4393-8503-a1a20fd73152"]
    assert lines[1]["overrideReason"] == {
        "code": "clinical-judgement",
        "system": "https://example.org/override",
    }
    assert lines[1]["outcomeTimestamp"] == "2020-12-11T00:00:00+00:00"  # in UTC
    assert "John Doe" not in caplog.text  # the free-text comment is not logged


# -- the trust file ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("trust", "words"),
    [
        ({"issuers": {EC_ISSUER: {"jwks_url": "https://a.example/j"}}}, "base_url"),
        ({"base_url": BASE_URL, "issuers": {}}, "issuers"),
        ({"base_url": BASE_URL, "issuers": {EC_ISSUER: {}}}, "give jwks_url, jwks_file or allowed_jku"),
        ({"base_url": BASE_URL, "issuers": {EC_ISSUER: {"jwks_uri": "https://a.example/j"}}}, "jwks_uri"),
        (
            {"base_url": BASE_URL, "issuers": {EC_ISSUER: {"jwks_url": "http://ehr.example/j"}}},
            "over https only",
        ),
        ({"base_url": BASE_URL, "issuers": {EC_ISSUER: {"jwks_file": "missing.json"}}}, "cannot read"),
        (
            {
                "base_url": BASE_URL,
                "issuers": {EC_ISSUER: {"jwks_url": "https://a.example/j"}},
                "algorithms": ["HS256"],
            },
            "'HS256' not accepted",
        ),
        (
            {
                "base_url": BASE_URL,
                "issuers": {EC_ISSUER: {"jwks_url": "https://a.example/j"}},
                "algorithms": ["none"],
            },
            "'none' not accepted",
        ),
    ],
)
def test_trust_file_mistakes_stop_the_server(tmp_path, trust, words):
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(trust))
    with pytest.raises(SettingsError, match=words.replace("(", r"\(")):
        load_trust(path)


def test_a_private_key_in_a_jwks_file_is_refused(tmp_path):
    private = json.loads(jwt.get_algorithm_by_name("ES384").to_jwk(Keys.ec_key)) | {"kid": "ec-1"}
    (tmp_path / "keys.json").write_text(json.dumps({"keys": [private]}))
    (tmp_path / "trust.json").write_text(
        json.dumps({"base_url": BASE_URL, "issuers": {EC_ISSUER: {"jwks_file": "keys.json"}}})
    )
    with pytest.raises(SettingsError, match="private or symmetric key"):
        load_trust(tmp_path / "trust.json")


def test_serve_reports_a_bad_trust_file(cli, tmp_path):
    (tmp_path / "trust.json").write_text("{not json")
    result = cli("serve", "--cds-trust", tmp_path / "trust.json", "--port", str(free_port()))
    assert result.returncode != 0
    assert "--cds-trust" in result.stderr and "Traceback" not in result.stderr
