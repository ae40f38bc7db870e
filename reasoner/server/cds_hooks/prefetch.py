"""The patient's data for a hook call, as one FHIR Bundle: from the prefetch, or from the
client's FHIR server for each prefetch key the client did not send.

The prefetch templates ask for what the FHIR mapping reads (docs/fhir-mapping.md): the
Patient, and the patient's Conditions, Observations, Procedures, MedicationStatements (with
the Medications they reference) and Devices. The searches are not narrowed to the codes the
ontology maps: the mapping must see unknown codes to report them, never drop them silently.

A key the client sent is used as sent (``null`` means the patient has no such data). A
missing key is fetched from ``fhirServer`` with the ``fhirAuthorization`` bearer token,
following ``next`` links on that server only, up to ``MAX_PAGES``: data cut short could hide
a red flag, so a search that does not finish is a failure, not a partial answer. Only a
``fhirServer`` within the server's ``--fhir-server`` base URLs is fetched from
(``fhir_servers``); any other is refused before any request is made. When a key can be
neither read nor fetched the answer is 412 (CDS Hooks: the service cannot get the data it
needs); a prefetch value of the wrong kind is the client's error, 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx

from ...fhir.questionnaire_response import ResponseForm
from ...fhir.validation import FhirInputError, check_resource_types
from ...pipeline.input_text import TextError, json_document
from .fhir_servers import allowed, within
from .request import HookError, HookRequest

PATIENT = "patient"
TEMPLATES = {
    PATIENT: "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    "medications": "MedicationStatement?patient={{context.patientId}}"
    "&_include=MedicationStatement:medication",
    "devices": "Device?patient={{context.patientId}}",
}
RESPONSES = "responses"
"""The optional key: the patient's answers to the generated questionnaire (see ``templates``)."""
TOKEN = "{{context.patientId}}"
MAX_PAGES = 20
TIMEOUT = httpx.Timeout(10.0)


def templates(form: ResponseForm | None) -> dict[str, str]:
    """The prefetch templates the services declare: the required ones, and the patient's
    ``QuestionnaireResponse``s to the generated questionnaire (``form``). Those are read when
    the client sends them and never fetched: many FHIR servers do not search responses, and
    without them the answers are only unknown, so the call need not fail for their want."""
    if form is None:
        return dict(TEMPLATES)
    search = f"QuestionnaireResponse?subject=Patient/{TOKEN}&questionnaire={quote(form.url, safe=':/')}"
    return {**TEMPLATES, RESPONSES: search}


@dataclass(frozen=True)
class PatientData:
    """The patient's data as a collection Bundle, and the keys fetched from the FHIR server."""

    bundle: dict
    fetched: tuple[str, ...]


def gather(request: HookRequest, fhir_servers: tuple[str, ...]) -> PatientData:
    """The Bundle to assess for ``request``, fetching what the prefetch lacks from its
    ``fhirServer`` only if that is within ``fhir_servers``; raises ``HookError`` (400 or
    412)."""
    missing = [key for key in TEMPLATES if key not in request.prefetch]
    found = {key: request.prefetch[key] for key in TEMPLATES if key in request.prefetch}
    if missing:
        _check_server(request, missing, fhir_servers)
        with _Fetcher(request) as fetcher:
            found.update({key: fetcher.get(key) for key in missing})
    patient = _patient(found[PATIENT], request.patient_id)
    entries = [_patient_entry(patient, request.fhir_server)]
    seen = {("Patient", patient["id"])}
    for key in TEMPLATES:
        if key != PATIENT:
            entries += _search_entries(found[key], key, seen)
    entries += _search_entries(request.prefetch.get(RESPONSES), RESPONSES, seen)
    return PatientData({"resourceType": "Bundle", "type": "collection", "entry": entries}, tuple(missing))


def _check_server(request: HookRequest, missing: list[str], fhir_servers: tuple[str, ...]) -> None:
    """412 unless the request names a ``fhirServer`` the service may fetch ``missing`` from."""
    lacks = f"the prefetch lacks {', '.join(missing)}"
    if request.fhir_server is None:
        raise HookError(
            412, f"{lacks} and the request gives no fhirServer to fetch them from", "prefetch", "incomplete"
        )
    if not allowed(request.fhir_server, fhir_servers):
        raise HookError(
            412,
            f"{lacks}, and {request.fhir_server} is not a FHIR server this service may fetch from "
            "(only those it was started with: lbp-imaging serve --fhir-server): send the prefetch",
            "fhirServer",
            "forbidden",
        )


def _patient(value: object, patient_id: str) -> dict:
    field = f"prefetch.{PATIENT}"
    if value is None:
        raise HookError(412, "is null: there is no Patient to assess", field, code="not-found")
    if not isinstance(value, dict) or value.get("resourceType") != "Patient":
        raise HookError(400, "must be a FHIR Patient resource", field)
    if value.get("id") != patient_id:
        raise HookError(400, f"is Patient {value.get('id')!r}, not context.patientId {patient_id!r}", field)
    _known_types(value, field)
    return value


def _known_types(resource: dict, where: str) -> None:
    """400 when a prefetched resource, or one it contains, has a ``resourceType`` that is not
    FHIR's: said here, where the prefetch key and entry can be named."""
    try:
        check_resource_types(resource, where, "prefetch")
    except FhirInputError as exc:
        raise HookError(400, exc.problem, exc.resource) from None


def _patient_entry(patient: dict, server: str | None) -> dict:
    """The Patient entry; with a server its fullUrl there, so that the case is named by it."""
    entry: dict = {"resource": patient}
    if server:
        entry["fullUrl"] = f"{server.rstrip('/')}/Patient/{patient['id']}"
    return entry


def _search_entries(value: object, key: str, seen: set[tuple[str, str]]) -> list[dict]:
    """The resources of a searchset (or any) Bundle, once each: not search outcomes, and not
    the Patient again (an ``_include`` may repeat it)."""
    if value is None:
        return []
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        raise HookError(400, "must be a FHIR Bundle (the search result) or null", f"prefetch.{key}")
    listed = value.get("entry") or []
    if not isinstance(listed, list):
        raise HookError(400, "entry must be a list of entries", f"prefetch.{key}")
    entries = []
    for i, entry in enumerate(listed):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not isinstance(resource, dict | None):
            raise HookError(400, "must be an entry with a FHIR resource", f"prefetch.{key}.entry[{i}]")
        search = entry.get("search")
        if resource is None or (isinstance(search, dict) and search.get("mode") == "outcome"):
            continue
        _known_types(resource, f"prefetch.{key}.entry[{i}].resource")
        identity = (resource.get("resourceType"), resource.get("id"))
        if all(isinstance(part, str) for part in identity):  # else the FHIR reader refuses it
            if identity in seen:
                continue
            seen.add(identity)
        entries.append({k: v for k, v in (("fullUrl", entry.get("fullUrl")), ("resource", resource)) if v})
    return entries


class _Fetcher:
    """GETs prefetch queries from the client's FHIR server with its bearer token."""

    def __init__(self, request: HookRequest):
        self.base = (request.fhir_server or "").rstrip("/")
        self.patient_id = request.patient_id
        headers = {"Accept": "application/fhir+json"}
        if request.access_token:
            headers["Authorization"] = f"Bearer {request.access_token}"
        self.client = httpx.Client(headers=headers, timeout=TIMEOUT, follow_redirects=False)

    def __enter__(self) -> _Fetcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def get(self, key: str) -> object:
        url = f"{self.base}/{TEMPLATES[key].replace(TOKEN, quote(self.patient_id, safe=''))}"
        if key == PATIENT:
            return self._json(url, key)
        bundle = self._json(url, key)
        pages = [bundle]
        while (url := _next_link(pages[-1])) is not None:
            if not within(url, self.base, query=True):
                raise HookError(
                    412, f"the next page {url!r} is not on fhirServer", f"prefetch.{key}", "incomplete"
                )
            if len(pages) == MAX_PAGES:
                raise HookError(
                    412, f"{key} has more than {MAX_PAGES} pages", f"prefetch.{key}", "too-costly"
                )
            pages.append(self._json(url, key))
        return {**bundle, "entry": [e for page in pages for e in (page.get("entry") or [])]}

    def _json(self, url: str, key: str) -> object:
        field = f"prefetch.{key}"
        try:
            response = self.client.get(url)
        except httpx.HTTPError as exc:
            raise HookError(412, f"GET {url} failed: {exc}", field, code="transient") from None
        if response.status_code != 200:
            raise HookError(412, f"GET {url} answered {response.status_code}", field, code="incomplete")
        try:
            found = json_document(response.content)
        except TextError:
            raise HookError(412, f"GET {url} did not answer JSON", field, code="incomplete") from None
        expected = "Patient" if key == PATIENT else "Bundle"
        if not isinstance(found, dict) or found.get("resourceType") != expected:
            raise HookError(412, f"GET {url} did not answer a {expected}", field, code="incomplete")
        if expected == "Bundle" and not all(isinstance(found.get(k) or [], list) for k in ("entry", "link")):
            raise HookError(
                412, f"GET {url} answered a Bundle whose entry or link is not a list", field, "incomplete"
            )
        return found


def _next_link(bundle: dict) -> str | None:
    return next(
        (
            link.get("url")
            for link in bundle.get("link") or []
            if isinstance(link, dict) and link.get("relation") == "next"
        ),
        None,
    )
