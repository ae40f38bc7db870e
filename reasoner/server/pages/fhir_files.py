"""The FHIR artefacts of ``ontology/fhir/`` at their canonical URLs, negotiated as FHIR's
RESTful API says (``_format`` overrides ``Accept``).

A FHIR canonical URL ends in ``<resourceType>/<id>``, and ``fhir_artefacts`` writes each
resource as ``<resourceType>-<id>.json``. So ``/lbp-imaging/…/<Type>/<id>`` is the file
``ontology/fhir/<Type>-<id>.json`` when that file's own ``url`` is
``https://w3id.org/lbp-imaging/…/<Type>/<id>``: each file says where it is published, and
no name is listed in code. The file is served as it is on disk, since it is what the
project publishes (the test suite keeps it equal to what the knowledge base generates).

Offered: ``application/fhir+json`` (also to ``application/json`` and ``_format=json``,
always with the FHIR media type). XML is not offered: the published form is JSON, and
writing XML would need lxml and be a conversion rather than the published file, so
``application/fhir+xml``, ``application/xml`` and ``_format=xml`` are 406, which says what
is offered. A resource type with a page for people (the Questionnaire: the case page,
whose form is generated from it) answers ``text/html`` with 303 to that page; for the
others a browser, which accepts anything, gets the JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ...fhir.artefacts import file_name
from ..http.negotiation import choose

FHIR_JSON = "application/fhir+json"
HTML = "text/html"
PAGES = {"Questionnaire": "/case"}
"""The page of this server that shows a resource of the type to a person."""
FORMAT_ALIASES = {"json": FHIR_JSON, "xml": "application/fhir+xml", "ttl": "text/turtle", "html": HTML}
"""FHIR's short ``_format`` values; any other value is read as a media type."""
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR's id datatype


@dataclass(frozen=True)
class Published:
    """A FHIR artefact published at the requested canonical URL."""

    file: Path
    resource_type: str

    @property
    def offered(self) -> list[str]:
        """The media types this resource is served in, the default first."""
        return [FHIR_JSON, "application/json"] + ([HTML] if self.resource_type in PAGES else [])

    @property
    def page(self) -> str | None:
        return PAGES.get(self.resource_type)


def published(fhir_dir: Path, namespace: str, path: str) -> Published | None:
    """The artefact whose canonical URL is ``namespace + path``, or None."""
    *_, resource_type, resource_id = ["", "", *path.split("/")]
    if not (_TYPE.fullmatch(resource_type) and _ID.fullmatch(resource_id)):
        return None
    file = fhir_dir / file_name(resource_type, resource_id)
    try:
        resource = json.loads(file.read_bytes())
    except (OSError, ValueError):  # no such artefact; a broken one is the currency check's to report
        return None
    says = [resource.get(k) for k in ("resourceType", "id", "url")] if isinstance(resource, dict) else []
    return Published(file, resource_type) if says == [resource_type, resource_id, namespace + path] else None


def negotiate(artefact: Published, accept: str | None, format_: str | None) -> str | None:
    """The media type to answer in (``_format`` first, then ``Accept``), None when none is offered."""
    wanted = FORMAT_ALIASES.get(format_.strip().lower(), format_) if format_ else accept
    return choose(wanted, artefact.offered)


def not_offered(artefact: Published, url: str) -> str:
    """Why a 406: what is offered, and that XML is not."""
    offered = f"{FHIR_JSON} (JSON)" + (f" and {HTML} (the page {artefact.page})" if artefact.page else "")
    return f"{url} is offered as {offered}; FHIR XML and other formats are not offered"
