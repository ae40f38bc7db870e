"""The version of a stored case record: kept in the store with the record, given to
clients as the case's entity tag (``ETag``).

Every write of a case through ``POST /cases`` gives its record a new version, a random
UUID, stated in the case's own named graph on the record's recommendation:
``?recommendation pav:version "<uuid>"`` (PAV, the provenance, authoring and versioning
vocabulary that extends PROV-O; the recommendation is the record's ``prov:Entity``).

Why in the case graph rather than in a graph of versions: the version is written by the
same SPARQL update, one transaction, as the record it versions, and removed by the same
``DROP GRAPH`` that removes the record (``DELETE /cases/{id}``, or a token holder's SPARQL
Update), so a version can never outlive or miss its record, and an on-disk store keeps it
across restarts with nothing else to keep in step. Why random rather than a counter: a
case deleted and posted again starts afresh, and a counter would give the new record the
version a client may still hold for the old one, so that its ``If-Match`` would wrongly
succeed.

Records written otherwise (``serve --cases`` at start, or by a server from before versions)
carry no version; theirs is derived from their recommendation's IRI, which names the
assessment run (case, start time, engine), so it too changes when the case is written again.
"""

from __future__ import annotations

import re
import uuid

import pyoxigraph as ox

from .records import FOR_CASE

PAV_VERSION = ox.NamedNode("http://purl.org/pav/version")
_OPAQUE_TAG = re.compile(r"[\x21\x23-\x7e]+")
"""What an entity tag may hold (RFC 9110 ``etagc``, without obs-text)."""


def new_version() -> str:
    """A version no record had before."""
    return str(uuid.uuid4())


def _derived(text: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, text))


def stored_version(store: ox.Store, case: ox.NamedNode) -> str | None:
    """The version of the record stored for ``case``; ``None`` when no case is stored
    under that IRI. A version a token holder's SPARQL Update made unfit for an entity tag
    (quotes, spaces) is replaced by one derived from it."""
    found = next(store.quads_for_pattern(None, FOR_CASE, case, case), None)
    if found is None:
        return None
    recommendation = found.subject
    stated = next(store.quads_for_pattern(recommendation, PAV_VERSION, None, case), None)
    if stated is None:
        return _derived(str(recommendation))
    version = stated.object.value
    return version if _OPAQUE_TAG.fullmatch(version) else _derived(version)


def versioned(updates: tuple[str, ...], case: ox.NamedNode, version: str) -> str:
    """One SPARQL update request, applied as one transaction: ``updates`` (which store the
    case's record, ``case_graphs.case_updates``), then the statement of its version."""
    stamp = (
        f"INSERT {{ GRAPH {case} {{ ?recommendation {PAV_VERSION} {ox.Literal(version)} }} }} "
        f"WHERE {{ GRAPH {case} {{ ?recommendation {FOR_CASE} {case} }} }}"
    )
    return " ;\n".join([*updates, stamp])
