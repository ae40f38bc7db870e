"""The FHIR view of the ontology: which coding means which case fact, read from the
SKOS mappings, and the project's own CodeSystem, generated from the same mappings.

Nothing here names a clinical term or a code. A code system is a ``lbp:CodeSystem``
individual with its FHIR ``lbp:fhirSystem`` and its ``lbp:conceptIriPrefix``; a mapping
``term skos:exactMatch|closeMatch|narrowMatch <prefix + code>`` says that a FHIR coding
``system|code`` records ``term``. (A broadMatch target is wider than the term, so a
coding for it does not say the term holds; it is not read.) What a term becomes in a
case is read from the ontology too: an individual of ``lbp:ClinicalFinding`` is a
finding; a datatype property of ``lbp:PatientCase`` is a case property with its range
and ``lbp:ucumUnit``; ``lbp:measuredFromOnsetOf`` and ``lbp:includesPastOccurrence``
say how condition dates count. For FHIR output: the resource type a term names
(``lbp:fhirResourceType``), the imaging procedures, and the request priorities and PAMA
ratings read by the CDS Hooks service's own ``CdsKnowledge``, so that both say the same.

``python -m reasoner.fhir.mapping`` prints the project CodeSystem resource; the file
``ontology/fhir/CodeSystem-lbp-imaging.json`` is that output, and a test keeps them equal.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from rdflib import OWL, RDF, RDFS, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, SKOS

from ..knowledge import LBP, KnowledgeBase, KnowledgeBaseError
from ..pipeline.definitions import stated_numbers
from .ordering import CdsKnowledge

if TYPE_CHECKING:
    from .questionnaire_response import ResponseForm

INPUT_MATCHES = (SKOS.exactMatch, SKOS.closeMatch, SKOS.narrowMatch)
OUTPUT_MATCHES = (SKOS.exactMatch, SKOS.closeMatch)
CODE_SYSTEM_FILE = "fhir/CodeSystem-lbp-imaging.json"
# The resource types a question can be asked as, each with the element that says the
# answer either way as the FHIR input reads it: a Condition is present unless refuted; an
# Observation's valueBoolean true or false, or its valueQuantity in the property's unit; a
# MedicationStatement is taken unless its status is not-taken. (A Procedure or Device says
# only "yes", so an ontology that names one for lbp:fhirResourceType is refused.)
ANSWER_ELEMENT = {"Condition": "verificationStatus", "Observation": "value", "MedicationStatement": "status"}


@dataclass(frozen=True)
class CodeSystemInfo:
    """A ``lbp:CodeSystem`` individual: its IRI, FHIR system URI and concept IRI prefix."""

    iri: str
    fhir_system: str
    prefix: str


@dataclass(frozen=True)
class CaseProperty:
    """A datatype property of a patient case that FHIR data can give a value."""

    iri: str
    datatype: str
    unit: str | None
    onset_of: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FhirMapping:
    """The code -> term index and what each term means for a case, built once per
    knowledge base (``from_ontology``) and shared by every bundle read with it."""

    terms: dict[tuple[str, str], tuple[str, ...]]
    findings: frozenset[str]
    past_findings: frozenset[str]
    properties: dict[str, CaseProperty]
    sexes: dict[str, str]
    labels: dict[str, str]
    codings: dict[str, tuple[dict, ...]] = field(default_factory=dict)
    own_system: str | None = None  # the FHIR system of the project's own CodeSystem
    guidance_status: dict[str, str] = field(default_factory=dict)  # outcome IRI -> status code
    answer_resources: dict[str, str] = field(default_factory=dict)  # term -> lbp:fhirResourceType
    imaging_procedures: frozenset[str] = frozenset()  # what a PAMA rating rates
    orders: CdsKnowledge = field(default_factory=lambda: CdsKnowledge.from_ontology(Graph()))
    """Priorities and PAMA ratings, read as the CDS Hooks cards read them: orders agree."""
    form: ResponseForm | None = None
    """The generated questionnaire a ``QuestionnaireResponse`` answers (``with_form``)."""
    numbers: tuple[Decimal, ...] = ()
    """Every number the ontology (and, ``for_knowledge_base``, the case shapes) states, in
    order: a value read from FHIR is rounded only where it compares with each of them as
    before (``read._decimal_text``)."""

    @classmethod
    def from_ontology(cls, graph: Graph) -> FhirMapping:
        systems = code_systems(graph)
        terms: dict[tuple[str, str], list[str]] = defaultdict(list)
        codings: dict[str, list[dict]] = defaultdict(list)
        for prop in INPUT_MATCHES:
            for term, target in sorted(graph.subject_objects(prop)):
                found = split_concept(systems, str(target))
                if found is None or not isinstance(term, URIRef):
                    continue
                system, code = found
                if str(term) not in terms[(system.fhir_system, code)]:
                    terms[(system.fhir_system, code)].append(str(term))
                if prop in OUTPUT_MATCHES:
                    codings[str(term)].append({"system": system.fhir_system, "code": code})
        findings = _findings(graph)
        past = {str(s) for s in graph.subjects(LBP.includesPastOccurrence, Literal(True))} & findings
        properties = _case_properties(graph)
        used = {t for ts in terms.values() for t in ts} | {t for p in properties.values() for t in p.onset_of}
        return cls(
            terms={k: tuple(v) for k, v in terms.items()},
            findings=frozenset(findings),
            past_findings=frozenset(past),
            properties=properties,
            sexes=_sexes(graph),
            labels={iri: label_of(graph, URIRef(iri)) for iri in used | set(properties) | findings},
            codings={k: tuple(v) for k, v in codings.items()},
            own_system=next((s.fhir_system for s in _own(systems)), None),
            guidance_status={str(o): str(v) for o, v in graph.subject_objects(LBP.guidanceResponseStatus)},
            answer_resources=_answer_resources(graph),
            imaging_procedures=frozenset(individuals(graph, LBP.ImagingProcedure)),
            orders=CdsKnowledge.from_ontology(graph),
            numbers=tuple(stated_numbers(graph)),
        )

    @classmethod
    def for_knowledge_base(cls, kb: KnowledgeBase, shapes: Graph | None = None) -> FhirMapping:
        """The mapping of ``kb``'s ontology carrying its generated questionnaire, so that a
        ``QuestionnaireResponse`` can be read wherever a bundle can (unless the knowledge
        base gives no questionnaire: a criterion reads a fact no item can ask, or uses a
        construct the definition compiler refuses)."""
        from ..pipeline.definitions import UnsupportedConstruct
        from .questionnaire import QuestionnaireError, questionnaire  # it builds on this module
        from .questionnaire_response import ResponseForm

        try:
            form = ResponseForm.of(questionnaire(kb))
        except (QuestionnaireError, UnsupportedConstruct):  # HermiT may still assess such a base
            form = None
        mapping = cls.from_ontology(kb.ontology)
        try:  # the case shapes' bounds too: a value must not round onto a bound they state
            shape_numbers = stated_numbers(shapes if shapes is not None else kb.shapes("case-shapes"))
        except KnowledgeBaseError:
            shape_numbers = []
        return replace(mapping, form=form, numbers=tuple(sorted({*mapping.numbers, *shape_numbers})))

    def label(self, iri: str) -> str:
        return self.labels.get(iri) or iri.rsplit("/", 1)[-1]

    def read_codings(self, term: str) -> tuple[dict, ...]:
        """Every coding the input reads as ``term`` (its exact, close and narrow matches):
        what a request for data about the term filters on, so that any resource the input
        would read as the term is found (FHIR output's data requirements)."""
        return tuple({"system": s, "code": c} for (s, c), terms in self.terms.items() if term in terms)

    def onset_properties(self, term: str) -> list[CaseProperty]:
        """The duration properties measured from the onset of ``term``."""
        return [p for p in self.properties.values() if term in p.onset_of]


def code_systems(graph: Graph) -> list[CodeSystemInfo]:
    return [
        CodeSystemInfo(str(s), str(graph.value(s, LBP.fhirSystem)), str(prefix))
        for s, prefix in sorted(graph.subject_objects(LBP.conceptIriPrefix))
        if graph.value(s, LBP.fhirSystem) is not None
    ]


def split_concept(systems: list[CodeSystemInfo], concept: str) -> tuple[CodeSystemInfo, str] | None:
    """The code system (longest matching prefix) and code of a concept IRI."""
    matching = [s for s in systems if concept.startswith(s.prefix) and len(concept) > len(s.prefix)]
    if not matching:
        return None
    system = max(matching, key=lambda s: len(s.prefix))
    return system, concept[len(system.prefix) :]


def label_of(graph: Graph, node: URIRef) -> str:
    labels = [lb for lb in graph.objects(node, RDFS.label) if getattr(lb, "language", None) in ("en", None)]
    return str(labels[0]) if labels else str(node).rsplit("/", 1)[-1]


def _answer_resources(graph: Graph) -> dict[str, str]:
    """Each term's ``lbp:fhirResourceType``; raises KnowledgeBaseError, naming the term, for
    a type that cannot say every answer (see ``ANSWER_ELEMENT``)."""
    found = {str(t): str(v) for t, v in graph.subject_objects(LBP.fhirResourceType)}
    for term, kind in sorted(found.items()):
        if kind not in ANSWER_ELEMENT:
            raise KnowledgeBaseError(
                f"lbp:fhirResourceType of {term} is {kind!r}: a question can be asked as "
                f"{', '.join(sorted(ANSWER_ELEMENT))} only (a type that records the answer either way)"
            )
    return found


def _findings(graph: Graph) -> set[str]:
    return individuals(graph, LBP.ClinicalFinding)


def individuals(graph: Graph, cls: URIRef) -> set[str]:
    """The named individuals of ``cls`` and of its subclasses."""
    classes = set(graph.transitive_subjects(RDFS.subClassOf, cls))
    return {str(i) for c in classes for i in graph.subjects(RDF.type, c) if isinstance(i, URIRef)}


def _case_properties(graph: Graph) -> dict[str, CaseProperty]:
    found = {}
    for prop in graph.subjects(RDFS.domain, LBP.PatientCase):
        if (prop, RDF.type, OWL.DatatypeProperty) not in graph or graph.value(prop, RDFS.range) is None:
            continue
        unit = graph.value(prop, LBP.ucumUnit)
        found[str(prop)] = CaseProperty(
            str(prop),
            str(graph.value(prop, RDFS.range)),
            str(unit) if unit is not None else None,
            frozenset(str(t) for t in graph.objects(prop, LBP.measuredFromOnsetOf)),
        )
    return found


def _sexes(graph: Graph) -> dict[str, str]:
    """FHIR administrative-gender code -> the ontology's sex individual (its skos:notation)."""
    return {
        str(notation): str(sex)
        for sex in graph.subjects(RDF.type, LBP.AdministrativeSex)
        for notation in graph.objects(sex, SKOS.notation)
    }


# -- the project CodeSystem resource ------------------------------------------------------
def _own(systems: list[CodeSystemInfo]) -> list[CodeSystemInfo]:
    """The code systems whose concepts live in the project namespace: the project's own."""
    return [s for s in systems if s.prefix.startswith(str(LBP))]


def project_code_system(graph: Graph) -> CodeSystemInfo:
    """The code system whose concepts live in the project namespace: the project's own."""
    own = _own(code_systems(graph))
    if len(own) != 1:
        raise ValueError(f"expected one lbp:CodeSystem with concepts under {LBP}, found {len(own)}")
    return own[0]


def _root_ontology(graph: Graph) -> URIRef | None:
    """The ontology that imports the modules and is imported by none."""
    return next(
        (
            o
            for o in graph.subjects(RDF.type, OWL.Ontology)
            if isinstance(o, URIRef)
            and graph.value(o, OWL.imports) is not None
            and not list(graph.subjects(OWL.imports, o))
        ),
        None,
    )


def _concepts(graph: Graph, system: CodeSystemInfo) -> list[dict]:
    concepts: dict[str, dict] = {}
    for prop in OUTPUT_MATCHES:
        for term, target in graph.subject_objects(prop):
            if not str(target).startswith(system.prefix):
                continue
            code = str(target)[len(system.prefix) :]
            if code in concepts:
                raise ValueError(f"code {code!r} of {system.fhir_system} is mapped from two terms")
            axiom = next(
                (
                    a
                    for a in graph.subjects(OWL.annotatedSource, term)
                    if graph.value(a, OWL.annotatedTarget) == target
                ),
                None,
            )
            display = graph.value(axiom, RDFS.label) if axiom is not None else None
            concepts[code] = {
                "code": code,
                "display": str(display) if display is not None else label_of(graph, term),
                "definition": str(graph.value(term, SKOS.definition)),
                "property": [{"code": "ontology-term", "valueString": str(term)}],
            }
    return [concepts[c] for c in sorted(concepts)]


def publication(graph: Graph) -> dict[str, str | None]:
    """What every terminology resource the project publishes says of its publication, read
    from the root ontology's header so that they all agree: version, status, publisher and
    licence (``copyright``). None where the header does not say."""
    root = _root_ontology(graph)
    version = graph.value(root, OWL.versionInfo) if root is not None else None
    return {
        "version": str(version) if version is not None else None,
        "status": "draft",
        "publisher": str(graph.value(root, DCTERMS.creator)) if root is not None else None,
        "copyright": f"Licensed {graph.value(root, DCTERMS.license)}" if root is not None else None,
    }


def code_system_resource(graph: Graph) -> dict:
    """The project's code system as a FHIR R4 CodeSystem resource (JSON as a dict)."""
    system = project_code_system(graph)
    node, meta = URIRef(system.iri), publication(graph)
    concepts = _concepts(graph, system)
    resource = {
        "resourceType": "CodeSystem",
        "id": system.fhir_system.rstrip("/").rsplit("/", 1)[-1],
        "url": system.fhir_system,
        "version": meta["version"],
        "name": system.iri.rsplit("/", 1)[-1],
        "title": label_of(graph, node),
        "status": meta["status"],
        "publisher": meta["publisher"],
        "description": str(graph.value(node, SKOS.definition)),
        "copyright": meta["copyright"],
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "property": [
            {
                "code": "ontology-term",
                "description": "IRI of the lbp-imaging ontology term that this concept is mapped "
                "to (SKOS), and so of the case fact a coding with it records.",
                "type": "string",
            }
        ],
        "concept": concepts,
    }
    return {k: v for k, v in resource.items() if v is not None}


def main() -> None:
    """Print the project CodeSystem resource (redirect it into ontology/fhir/)."""
    resource = code_system_resource(KnowledgeBase.load().ontology)
    sys.stdout.write(json.dumps(resource, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":  # pragma: no cover
    main()
