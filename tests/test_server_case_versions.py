"""Stored cases as versioned resources, and the audit log (reasoner/server/cases/versions.py,
conditional_requests.py, http/audit_log.py, cds_hooks/audit.py), against real server processes:
replacing a stored case needs the bearer token as DELETE does; every write gives the case
a new ETag, kept in the store across a restart; ``If-Match`` and ``If-None-Match`` make
writes conditional (412, and nothing changed); every write, refused or done, and every CDS
Hooks decision (with the ``iss`` and ``sub`` of the client's verified JWT) is one JSON line
in the audit log, in the order of the writes, and the log rotates by size keeping the
number of files it was told."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sparql_server import EXAMPLES, ROOT, TOKEN, running, start, stop

LBP = "https://w3id.org/lbp-imaging/"
TEMPLATE = (EXAMPLES / "05-known-cancer.ttl").read_text()
TEMPLATE_IRI = "https://example.org/case/05-known-cancer"
AUTHORIZED = {"authorization": f"Bearer {TOKEN}"}
CDS_EXAMPLES = ROOT / "examples" / "cds-hooks"
CDS_ISSUER, CDS_BASE_URL = "https://ehr.test.example", "https://cds.test.example"
CDS_KEY = ec.generate_private_key(ec.SECP384R1())


def case_iri(name: str) -> str:
    return f"https://example.org/case/versions-{name}"


def body(name: str, age: int = 62) -> bytes:
    """The known-cancer example under its own case IRI (each test its own case), at ``age``."""
    text = TEMPLATE.replace(TEMPLATE_IRI, case_iri(name)).replace(
        "lbp:ageInYears 62", f"lbp:ageInYears {age}"
    )
    return text.encode()


def url(server, name: str) -> str:
    return server.url + "/cases/" + quote(case_iri(name), safe="")


def post(server, data: bytes, **headers: str) -> httpx.Response:
    headers = {"content-type": "text/turtle", **headers}
    return httpx.post(server.url + "/cases", content=data, headers=headers, timeout=60)


def age_of(response: httpx.Response) -> int:
    (result,) = response.json()["results"]
    return next(f["value"]["value"] for f in result["facts"] if f["property"]["iri"] == f"{LBP}ageInYears")


def audit_lines(path: Path) -> list[dict]:
    """Every line of the audit log at ``path`` and its rotated files, oldest first."""
    rotated = sorted(path.parent.glob(path.name + ".*"), key=lambda p: -int(p.suffix[1:]))
    return [json.loads(line) for p in [*rotated, path] for line in p.read_text().splitlines()]


@pytest.fixture(scope="module")
def audit(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def cds_trust(tmp_path_factory) -> Path:
    """A CDS Hooks trust file naming one client, whose key signs ``cds_token``'s tokens."""
    folder = tmp_path_factory.mktemp("trust")
    public = json.loads(jwt.get_algorithm_by_name("ES384").to_jwk(CDS_KEY.public_key()))
    (folder / "ehr.jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "k1", "alg": "ES384"}]}))
    trust = {"base_url": CDS_BASE_URL, "issuers": {CDS_ISSUER: {"jwks_file": "ehr.jwks.json"}}}
    (folder / "cds-trust.json").write_text(json.dumps(trust))
    return folder / "cds-trust.json"


def cds_token(service: str) -> str:
    now = int(time.time())
    claims = {
        "iss": CDS_ISSUER,
        "sub": "clinician-7",
        "aud": f"{CDS_BASE_URL}/cds-services/{service}",
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, CDS_KEY, algorithm="ES384", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def server(tmp_path_factory, audit, cds_trust):
    args = ["--allow-update", "--token", TOKEN, "--audit-log", str(audit), "--cds-trust", str(cds_trust)]
    with running(args, tmp_path_factory.mktemp("logs")) as server:
        yield server


def test_a_stored_case_is_not_replaced_without_the_token(server):
    created = post(server, body("no-token"))
    assert created.status_code == 201, created.text
    etag = created.headers["etag"]
    for headers in ({}, {"authorization": "Bearer wrong"}):
        refused = post(server, body("no-token", age=70), **headers)
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")
    stored = httpx.get(url(server, "no-token"), timeout=30)
    assert stored.headers["etag"] == etag and age_of(stored) == 62
    assert stored.json() == created.json()


def test_with_the_token_a_case_is_replaced_with_a_new_etag(server):
    created = post(server, body("replaced"))
    fetched = httpx.get(url(server, "replaced"), timeout=30)
    assert fetched.headers["etag"] == created.headers["etag"]
    assert created.headers["etag"].startswith('"') and created.headers["etag"].endswith('"')
    replaced = post(server, body("replaced", age=70), **AUTHORIZED)
    assert replaced.status_code == 200, replaced.text
    assert replaced.headers["etag"] != created.headers["etag"]
    assert replaced.headers["content-location"] == replaced.headers["location"]
    again = httpx.get(url(server, "replaced"), timeout=30)
    assert again.headers["etag"] == replaced.headers["etag"] and age_of(again) == 70
    # The same case again, unchanged, is still a new write: a new version.
    same = post(server, body("replaced", age=70), **AUTHORIZED)
    assert same.status_code == 200 and same.headers["etag"] not in (
        created.headers["etag"],
        again.headers["etag"],
    )
    turtle = httpx.get(url(server, "replaced"), headers={"accept": "text/turtle"}, timeout=30)
    assert turtle.headers["etag"] == same.headers["etag"]  # one version, every representation


def test_if_match_replaces_only_the_version_read(server):
    etag = post(server, body("if-match")).headers["etag"]
    current = post(server, body("if-match", age=63), **AUTHORIZED, **{"if-match": etag})
    assert current.status_code == 200, current.text
    for stale in (etag, f"W/{current.headers['etag']}", '"not-a-version"'):
        refused = post(server, body("if-match", age=80), **AUTHORIZED, **{"if-match": stale})
        assert refused.status_code == 412, refused.text
        assert "If-Match" in refused.text and current.headers["etag"] in refused.text
    stored = httpx.get(url(server, "if-match"), timeout=30)
    assert stored.headers["etag"] == current.headers["etag"] and age_of(stored) == 63
    listed = f'"other", {current.headers["etag"]}'
    assert post(server, body("if-match", age=64), **AUTHORIZED, **{"if-match": listed}).status_code == 200
    assert post(server, body("if-match", age=65), **AUTHORIZED, **{"if-match": "*"}).status_code == 200
    assert age_of(httpx.get(url(server, "if-match"), timeout=30)) == 65


def test_if_match_on_a_case_not_stored_is_412_and_creates_nothing(server):
    for condition in ('"anything"', "*"):
        refused = post(server, body("absent"), **{"if-match": condition})
        assert refused.status_code == 412, refused.text
    assert httpx.get(url(server, "absent"), timeout=30).status_code == 404


def test_if_none_match_star_creates_only(server):
    created = post(server, body("create-only"), **{"if-none-match": "*"})
    assert created.status_code == 201, created.text
    refused = post(server, body("create-only", age=70), **AUTHORIZED, **{"if-none-match": "*"})
    assert refused.status_code == 412 and "already stored" in refused.text
    stored = httpx.get(url(server, "create-only"), timeout=30)
    assert stored.headers["etag"] == created.headers["etag"] and age_of(stored) == 62


def test_the_token_is_checked_before_the_conditions(server):
    """RFC 9110 §13.2.1: a request refused without its conditions is refused the same with them."""
    etag = post(server, body("order")).headers["etag"]
    assert post(server, body("order", age=70), **{"if-match": etag}).status_code == 401
    assert post(server, body("order", age=70), **{"if-none-match": "*"}).status_code == 401


def test_a_malformed_condition_is_400(server):
    for value in ("not-quoted", '"a" "b"', '"a"x', ","):
        response = post(server, body("malformed"), **{"if-match": value})
        assert response.status_code == 400 and "If-Match" in response.text, (value, response.text)
    assert httpx.get(url(server, "malformed"), timeout=30).status_code == 404


def test_delete_honours_if_match(server):
    etag = post(server, body("delete")).headers["etag"]
    stale = httpx.delete(url(server, "delete"), headers={**AUTHORIZED, "if-match": '"stale"'})
    assert stale.status_code == 412
    assert httpx.get(url(server, "delete"), timeout=30).status_code == 200
    deleted = httpx.delete(url(server, "delete"), headers={**AUTHORIZED, "if-match": etag})
    assert deleted.status_code == 204
    assert httpx.get(url(server, "delete"), timeout=30).status_code == 404
    # Posted again, it is a new case with a new version: the old ETag names nothing.
    again = post(server, body("delete"))
    assert again.status_code == 201 and again.headers["etag"] != etag
    assert post(server, body("delete"), **AUTHORIZED, **{"if-match": etag}).status_code == 412


def test_the_audit_log_has_a_line_per_write_in_order_and_only_grows(server, audit):
    before = audit.read_bytes()
    created = post(server, body("audited"))
    refused = post(server, body("audited", age=70))
    replaced = post(server, body("audited", age=70), **AUTHORIZED)
    deleted = httpx.delete(url(server, "audited"), headers=AUTHORIZED)
    assert [r.status_code for r in (created, refused, replaced, deleted)] == [201, 401, 200, 204]
    after = audit.read_bytes()
    assert after.startswith(before)  # appended to, never rewritten
    lines = [json.loads(line) for line in after[len(before) :].decode().splitlines()]
    assert [(x["event"], x["status"], x["credential"]) for x in lines] == [
        ("create", 201, "anonymous"),
        ("replace", 401, "anonymous"),
        ("replace", 200, "bearer token"),
        ("delete", 204, "bearer token"),
    ]
    first_version, second_version = created.headers["etag"].strip('"'), replaced.headers["etag"].strip('"')
    assert [(x["previousVersion"], x["version"]) for x in lines] == [
        (None, first_version),
        (first_version, first_version),
        (first_version, second_version),
        (second_version, None),
    ]
    assert {x["case"] for x in lines} == {case_iri("audited")}
    assert {x["client"] for x in lines} == {"127.0.0.1"} and all(x["jwt"] is None for x in lines)
    assert [x["time"] for x in lines] == sorted(x["time"] for x in lines)
    assert all(x["time"].endswith("+00:00") for x in lines)
    assert {x["knowledgeBase"]["versionIRI"] for x in lines} == {
        created.json()["knowledgeBase"]["versionIRI"]
    }
    (result,) = created.json()["results"]
    assert lines[0]["recommendation"] == {
        "outcome": result["outcome"]["iri"],
        "procedure": result["recommendation"]["procedure"]["iri"],
        "urgency": result["recommendation"]["urgency"]["iri"],
    }
    assert lines[1]["recommendation"] is None and lines[3]["recommendation"] is None


def test_concurrent_replacements_are_logged_in_the_order_they_were_applied(server, audit):
    post(server, body("concurrent"))
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda age: post(server, body("concurrent", age), **AUTHORIZED), range(30, 38))
        )
    assert all(a.status_code == 200 for a in answers)
    lines = [x for x in audit_lines(audit) if x["case"] == case_iri("concurrent")]
    assert len(lines) == 1 + len(answers)
    # Each write's line names, as the version it replaced, the one the line before wrote.
    assert all(later["previousVersion"] == earlier["version"] for earlier, later in itertools.pairwise(lines))
    final = httpx.get(url(server, "concurrent"), timeout=30).headers["etag"]
    assert final.strip('"') == lines[-1]["version"]


def test_a_cds_hooks_decision_is_logged_with_the_verified_client(server, audit):
    request = json.loads((CDS_EXAMPLES / "01-matching-order-radiculopathy.request.json").read_text())
    service = f"lbp-imaging-{request['hook']}"
    count = len(audit_lines(audit))

    def call(service: str, body: dict, token: str | None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.post(f"{server.url}/cds-services/{service}", json=body, headers=headers, timeout=60)

    assert call(service, request, None).status_code == 401  # refused: decided nothing
    answered = call(service, request, cds_token(service))
    assert answered.status_code == 200 and answered.json()["cards"]
    no_order = json.loads((CDS_EXAMPLES / "09-non-lumbar-orders.request.json").read_text())
    other = f"lbp-imaging-{no_order['hook']}"
    nothing = call(other, no_order, cds_token(other))
    assert nothing.status_code == 200 and nothing.json() == {"cards": []}
    (line,) = audit_lines(audit)[count:]  # the call without a lumbar imaging order decided nothing
    assert line["event"] == "cds-decision" and line["status"] == 200
    assert (line["service"], line["hookInstance"]) == (service, request["hookInstance"])
    assert line["credential"] == "bearer JWT" and line["client"] == "127.0.0.1"
    assert (line["jwt"]["iss"], line["jwt"]["sub"]) == (CDS_ISSUER, "clinician-7")
    assert line["case"] and line["recommendation"]["outcome"].startswith(LBP)
    assert line["knowledgeBase"]["versionIRI"]


def test_an_order_assessed_again_from_its_form_link_is_logged_as_a_decision(server, audit):
    """The pre-filled form an undetermined order's card links to: submitting answers is a
    decision of the same service for the same hook instance, logged (the page has no JWT)."""
    request = json.loads((CDS_EXAMPLES / "07-more-information-needed.request.json").read_text())
    service = f"lbp-imaging-{request['hook']}"
    answered = httpx.post(
        f"{server.url}/cds-services/{service}",
        json=request,
        headers={"authorization": f"Bearer {cds_token(service)}"},
        timeout=60,
    )
    (link,) = answered.json()["cards"][0]["links"]
    count = len(audit_lines(audit))
    page = httpx.post(link["url"], data={"SignificantTrauma": "N"}, timeout=60)
    assert page.status_code == 200 and 'class="card-summary"' in page.text
    (line,) = audit_lines(audit)[count:]
    assert line["event"] == "cds-decision" and line["credential"] == "form link"
    assert (line["service"], line["hookInstance"]) == (service, request["hookInstance"])
    assert line["recommendation"]["outcome"] == f"{LBP}OutcomeMoreInformationNeeded"


ROTATE_MB = 0.001
"""The restarted server's audit log size: about two lines a file."""


@pytest.fixture(scope="module")
def restarted(tmp_path_factory):
    """A server on an on-disk store, restarted read-only with a small audit log: the second
    server, and the ETags the first gave (a case posted, and one stored by ``--cases``)."""
    logs = tmp_path_factory.mktemp("restart")
    store, at_start = logs / "store", logs / "at-start.ttl"
    at_start.write_bytes(body("at-start"))
    first = start(["--store", str(store), "--cases", str(at_start)], logs)
    try:
        posted = post(first, body("restart"))
        assert posted.status_code == 201, posted.text
        etags = {
            name: httpx.get(url(first, name), timeout=30).headers["etag"] for name in ("restart", "at-start")
        }
    finally:
        stop(first)
    audit = logs / "audit.jsonl"
    args = ["--store", str(store), "--audit-log", str(audit), "--audit-log-max-mb", str(ROTATE_MB)]
    second = start([*args, "--audit-log-backups", "2"], logs)
    try:
        yield second, etags, audit
    finally:
        stop(second)


def test_the_etag_is_kept_across_a_restart(restarted):
    server, etags, _ = restarted
    assert {name: httpx.get(url(server, name), timeout=30).headers["etag"] for name in etags} == etags


def test_replacing_on_a_read_only_server_is_403_and_creating_stays_open(restarted):
    server, etags, _ = restarted
    refused = post(server, body("restart", age=70), **AUTHORIZED)
    assert refused.status_code == 403 and "read-only" in refused.text
    assert httpx.get(url(server, "restart"), timeout=30).headers["etag"] == etags["restart"]
    assert post(server, body("new-after-restart")).status_code == 201


def test_the_audit_log_rotates_by_size_and_keeps_the_backups_it_was_told(restarted):
    server, _, audit = restarted
    names = [f"urn:uuid:{uuid.UUID(int=i)}" for i in range(10)]
    for name in names:  # refused (read-only server), each one line
        assert httpx.delete(server.url + "/cases/" + quote(name, safe=""), timeout=30).status_code == 403
    files = sorted(p.name for p in audit.parent.glob("audit.jsonl*"))
    assert files == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all(0 < (audit.parent / f).stat().st_size <= ROTATE_MB * 1024 * 1024 for f in files)
    kept = [x["case"] for x in audit_lines(audit)]
    assert kept == names[-len(kept) :] and len(kept) < len(names)  # the newest, in order; the oldest gone
