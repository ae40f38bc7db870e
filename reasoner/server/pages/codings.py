"""The codes of a term as people read them: code system, code, kind of match and how the
code was checked, and the term's coding status when it has no verified code.

Read from the SKOS mappings the FHIR view reads (``fhir_mapping``: a code system is the
``lbp:CodeSystem`` whose concept IRI prefix the target starts with), but every kind of
match is listed with its kind, since a broader or related code is still worth showing
to a reader, and each with the confidence its OWL axiom annotation gives
(``lbp:mappingConfidence``). Shared by the criteria browser and the documentation site.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdflib import OWL, Graph, URIRef
from rdflib.namespace import SKOS

from ...fhir.mapping import code_systems, split_concept
from ...knowledge import LBP
from ...pipeline.explain import Vocabulary
from .labels import property_label

MATCHES = (SKOS.exactMatch, SKOS.closeMatch, SKOS.broadMatch, SKOS.narrowMatch, SKOS.relatedMatch)


@dataclass(frozen=True)
class Coding:
    system: str
    """The code system's label (``SNOMED CT``)."""
    code: str
    match: str
    """The SKOS match as words (``exact match``)."""
    confidence: str | None


@dataclass(frozen=True)
class Concept:
    """A term (or a literal value, with no IRI) with its codes and coding status."""

    iri: str | None
    label: str
    codes: tuple[Coding, ...] = ()
    status: str | None = None


class Codings:
    """Codes and coding status of any term of one knowledge base."""

    def __init__(self, graph: Graph, vocab: Vocabulary):
        self.g = graph
        self.vocab = vocab
        self.systems = code_systems(graph)

    def _confidence(self, term: URIRef, prop: URIRef, target: URIRef) -> str | None:
        for axiom in self.g.subjects(OWL.annotatedSource, term):
            if (axiom, OWL.annotatedProperty, prop) in self.g and (
                axiom,
                OWL.annotatedTarget,
                target,
            ) in self.g:
                value = self.g.value(axiom, LBP.mappingConfidence)
                return str(value) if value is not None else None
        return None

    def codes(self, iri: str) -> tuple[Coding, ...]:
        term = URIRef(iri)
        found = []
        for prop in MATCHES:
            for target in sorted(self.g.objects(term, prop)):
                split = split_concept(self.systems, str(target))
                if split is None or not isinstance(target, URIRef):
                    continue
                system, code = split
                found.append(
                    Coding(
                        self.vocab.label(system.iri),
                        code,
                        property_label(self.vocab, str(prop)),
                        self._confidence(term, prop, target),
                    )
                )
        return tuple(found)

    def status(self, iri: str) -> str | None:
        value = self.g.value(URIRef(iri), LBP.codingStatus)
        return str(value) if value is not None else None

    def concept(self, term: object) -> Concept:
        """``term`` (an IRI or a literal) as a ``Concept``; a literal has no codes."""
        if isinstance(term, URIRef):
            iri = str(term)
            return Concept(iri, self.vocab.label(iri), self.codes(iri), self.status(iri))
        return Concept(None, str(term))
