"""Which IRIs may name a case.

A case IRI is shown and linked wherever its case goes: the server's case pages and
``Location`` headers, the linked-data pages, CDS Hooks cards, FHIR output, provenance. A
``javascript:`` or ``data:`` IRI there is a script or a document a click would run, a
``file:`` IRI names a file of the machine (and a relative IRI in a case file is resolved
against the file's own location into one). So only the schemes that name a record and
nothing else are accepted: ``http``, ``https`` and ``urn`` (``urn:uuid:``, as FHIR
bundles name their entries, among them). Every reader refuses any other case IRI, the
case alone (the rest of the input goes on).
"""

from __future__ import annotations

import re

CASE_IRI_SCHEMES = ("http", "https", "urn")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
SHOWN = 120
"""The most characters of a refused IRI that a message repeats."""


def case_iri_problem(iri: str, base: str | None = None) -> str | None:
    """Why ``iri`` cannot name a case, naming it, or None when it can. ``base`` is the
    folder the file was read from: an IRI under it was written relative in the file, and is
    shown as written (a relative IRI, never the folder: a server's temporary one, say)."""
    must = f"a case IRI must be an absolute {', '.join(s + ':' for s in CASE_IRI_SCHEMES[:-1])} or urn: IRI"
    if base and iri.startswith(base):
        return f"case <{_cut(iri[len(base) :])}> is a relative IRI: {must}"
    match = _SCHEME.match(iri)
    scheme = match.group(1).lower() if match else None
    if scheme in CASE_IRI_SCHEMES:
        return None
    said = f"has the scheme {scheme}:" if scheme else "has no scheme"
    return f"case <{_cut(iri)}> {said}, but {must}, since it is shown and linked wherever the case goes"


def _cut(iri: str) -> str:
    return iri if len(iri) <= SHOWN else f"{iri[:SHOWN]}… ({len(iri):,} characters)"
