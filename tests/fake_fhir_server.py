"""A small FHIR server for the CDS Hooks tests: a real HTTP server on a thread that serves
one Bundle's resources to the prefetch queries, only with the expected bearer token.

It answers ``Patient/{id}`` and ``{Type}?patient={id}`` searches (with
``_include=MedicationStatement:medication``) as searchset Bundles of ``PAGE_SIZE`` entries
with ``next`` links, so that the service's paging is exercised; every request is recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

PAGE_SIZE = 1
SUBJECT = {"Device": "patient"}  # the element that names the patient, where it is not ``subject``


@dataclass
class FakeFhirServer:
    base: str
    token: str
    requests: list[dict] = field(default_factory=list)


def _resources(bundle_path: Path) -> list[dict]:
    return [e["resource"] for e in json.loads(bundle_path.read_text())["entry"]]


def _handler(resources: list[dict], server: FakeFhirServer) -> type[BaseHTTPRequestHandler]:
    by_key = {f"{r['resourceType']}/{r['id']}": r for r in resources}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:  # quiet: the test reports what matters
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            server.requests.append({"path": self.path, "authorization": self.headers.get("Authorization")})
            if self.headers.get("Authorization") != f"Bearer {server.token}":
                return self._send(401, {"resourceType": "OperationOutcome", "issue": [{"code": "login"}]})
            path = url.path.removeprefix("/fhir/")
            if "/" in path:
                found = by_key.get(path)
                return self._send(200 if found else 404, found or {"resourceType": "OperationOutcome"})
            return self._send(200, self._search(path, parse_qs(url.query)))

        def _search(self, kind: str, query: dict[str, list[str]]) -> dict:
            patient = f"Patient/{query['patient'][0]}"
            element = SUBJECT.get(kind, "subject")
            matches = [
                r
                for r in resources
                if r["resourceType"] == kind and r.get(element, {}).get("reference") == patient
            ]
            entries = [{"resource": r, "search": {"mode": "match"}} for r in matches]
            if "MedicationStatement:medication" in query.get("_include", []):
                refs = {r.get("medicationReference", {}).get("reference") for r in matches}
                entries += [
                    {"resource": by_key[ref], "search": {"mode": "include"}} for ref in refs if ref in by_key
                ]
            page = int(query.get("_page", ["1"])[0])
            bundle = {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(matches),
                "entry": [
                    {"fullUrl": f"{server.base}/{e['resource']['resourceType']}/{e['resource']['id']}", **e}
                    for e in entries[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
                ],
            }
            if page * PAGE_SIZE < len(entries):
                params = {k: v[0] for k, v in query.items()} | {"_page": str(page + 1)}
                bundle["link"] = [{"relation": "next", "url": f"{server.base}/{kind}?{urlencode(params)}"}]
            return bundle

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def serving(bundle_path: Path, token: str, port: int = 0) -> Iterator[FakeFhirServer]:
    """Serve the resources of ``bundle_path`` at ``http://127.0.0.1:{port}/fhir`` until exit
    (on a free port by default; a given one lets the service under test be started with
    ``--fhir-server`` for it first)."""
    server = FakeFhirServer("", token)
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(_resources(bundle_path), server))
    server.base = f"http://127.0.0.1:{httpd.server_address[1]}/fhir"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
