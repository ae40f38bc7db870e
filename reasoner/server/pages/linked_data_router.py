"""Dereference the knowledge base's IRIs on this server, following recipe 5 of the W3C
"Best Practice Recipes for Publishing RDF Vocabularies" (a slash namespace, one
description per term, content negotiation with 303 redirects).

``https://w3id.org/lbp-imaging/X`` is served at ``/lbp-imaging/X`` (see
``linked_data``). A term's IRI names the thing (a class, a finding, a source
statement), not a document, so ``GET /lbp-imaging/X`` answers ``303 See Other`` to the
document that describes it in the format ``Accept`` prefers, with ``Vary: Accept``:
``X.html`` for browsers (and clients that accept anything), ``X.ttl``, ``X.jsonld``,
``X.rdf`` or ``X.nt`` for RDF clients; 406 when none is acceptable. Those documents
answer 200 in their one format. An IRI the knowledge base says nothing about is 404.
The namespace itself redirects to the ontology. Published files are served as they
are: the JSON-LD context of cases, and the FHIR artefacts of ``ontology/fhir/`` (the
project's CodeSystem, the Questionnaire) at their canonical URLs under the namespace,
negotiated as FHIR says (``fhir_files``). An IRI under the namespace that names a stored
case (the FHIR reader mints such IRIs for patients without one) redirects to the case.
"""

from __future__ import annotations

from functools import partial

import pyoxigraph as ox
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse

from ...fhir.artefacts import FHIR_DIR
from ..cases.records import is_case
from ..cases.router import case_location
from ..http.negotiation import choose
from ..http.rdf_output import content_type, serialize
from ..state import State
from .fhir_files import FHIR_JSON, HTML, Published, negotiate, not_offered, published
from .linked_data import NAMESPACE, PATH_PREFIX, Description, describe, is_described, local_path
from .term_page import page

router = APIRouter(tags=["linked data"])
EXTENSIONS = {
    HTML: ".html",
    "text/turtle": ".ttl",
    "application/ld+json": ".jsonld",
    "application/rdf+xml": ".rdf",
    "application/n-triples": ".nt",
}
MEDIA_TYPES = {ext: media for media, ext in EXTENSIONS.items()}
PUBLISHED_FILES = {"context.jsonld": ("ontology/context.jsonld", "application/ld+json")}
"""Local names of the namespace served as files: knowledge-base path and media type (the
FHIR artefacts are found by their canonical URL: ``fhir_files``)."""


def _document(description: Description, media: str) -> Response:
    if media == HTML:
        here = local_path(description.iri)
        alternates = {m: f"{here}{e}" for m, e in EXTENSIONS.items() if m != HTML}
        return Response(page(description, alternates), media_type=content_type(HTML))
    return Response(serialize(description.triples, media), media_type=content_type(media))


def _fhir(artefact: Published, path: str, request: Request) -> Response:
    vary = {"Vary": "Accept"}
    media = negotiate(artefact, request.headers.get("accept"), request.query_params.get("_format"))
    if media is None:
        return PlainTextResponse(not_offered(artefact, NAMESPACE + path), 406, headers=vary)
    if media == HTML and artefact.page:
        return RedirectResponse(artefact.page, 303, headers=vary)
    return FileResponse(artefact.file, media_type=FHIR_JSON, headers=vary)


def _case_redirect(store: ox.Store, iri: str) -> str | None:
    try:
        return case_location(iri) if is_case(store, ox.NamedNode(iri)) else None
    except ValueError:
        return None


@router.get(
    PATH_PREFIX + "{path:path}",
    name="dereference",
    summary="Dereference an IRI of the knowledge base",
    description=f"`{NAMESPACE}X` is served here as `{PATH_PREFIX}X`: 303 to `X.html`, `X.ttl`, "
    "`X.jsonld`, `X.rdf` or `X.nt` by Accept (W3C recipe 5 for RDF vocabularies); those documents "
    "answer 200. Ontology modules and shapes files are described by their whole graph. The FHIR "
    "artefacts of `ontology/fhir/` answer at their canonical URLs: `application/fhir+json` (also for "
    "`application/json` and `_format=json`), 303 to the form for a browser's Questionnaire request, "
    "406 for XML.",
    response_class=Response,
    responses={
        303: {"description": "See the document describing the term, in the format Accept prefers."},
        404: {"description": "The knowledge base says nothing about this IRI."},
        406: {
            "description": "The Accept header allows none of HTML, Turtle, JSON-LD, RDF/XML, N-Triples "
            "(for a FHIR artefact: neither FHIR JSON nor, where it has a page, HTML)."
        },
    },
)
async def dereference(path: str, request: Request, state: State) -> Response:
    if path in PUBLISHED_FILES and (state.assessor.kb.root / PUBLISHED_FILES[path][0]).is_file():
        file, media = PUBLISHED_FILES[path]
        return FileResponse(state.assessor.kb.root / file, media_type=media)
    if not path:
        return RedirectResponse(PATH_PREFIX + "ontology", 303)
    if artefact := published(state.assessor.kb.ontology_dir / FHIR_DIR, NAMESPACE, path):
        return _fhir(artefact, path, request)
    if await state.executor.run(partial(is_described, state.store, state.knowledge_graphs, NAMESPACE + path)):
        media = choose(request.headers.get("accept"), list(EXTENSIONS))
        if media is None:
            offered = ", ".join(EXTENSIONS)
            return PlainTextResponse(f"{path} is described as {offered}", 406, headers={"Vary": "Accept"})
        return RedirectResponse(PATH_PREFIX + path + EXTENSIONS[media], 303, headers={"Vary": "Accept"})
    stem, dot, extension = path.rpartition(".")
    if dot and f".{extension}" in MEDIA_TYPES:
        description = await state.executor.run(
            partial(describe, state.store, state.knowledge_graphs, NAMESPACE + stem)
        )
        if description is not None:
            return _document(description, MEDIA_TYPES[f".{extension}"])
    if location := await state.executor.run(partial(_case_redirect, state.store, NAMESPACE + path)):
        return RedirectResponse(location, 303)
    return PlainTextResponse(f"{NAMESPACE}{path} is not a term of this knowledge base", 404)
