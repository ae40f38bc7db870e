"""The knowledge base's terminology as FHIR R4 resources a terminology server can load: a
``ConceptMap`` of every SKOS mapping, and a ``ValueSet`` per finding category.

Why: the SKOS mappings inside the ontology are readable by RDF tools only; a FHIR user wants
``$translate`` from the project's terms to the standard terminologies the ontology maps them
to, and a value set to filter a patient's record on ("any code that means a finding of this
category").

**ConceptMap.** Its source is the ontology's own terms, because that is what the SKOS
mappings are stated on: the source system is the project namespace and a code is a term's
local name, so that ``system + code`` is the term's IRI (``lbp:X`` is
``https://w3id.org/lbp-imaging/`` | ``X``). (The project's CodeSystem is not the source:
it holds codes only for the case facts that have no standard code, so a map from it to a
standard terminology would be empty; it is a target like the others.) One ``group`` per ``lbp:CodeSystem``
that a mapping points into, with its ``lbp:fhirSystem`` as the target system. The
equivalence of a mapping is data too: the mapping property's ``lbp:fhirEquivalence``
(``ontology/mappings.ttl``), chosen by comparing the SKOS Reference's definitions of the
mapping properties (W3C SKOS Reference, section 10) with the R4 ConceptMapEquivalence
definitions (hl7.org/fhir/R4/codesystem-concept-map-equivalence.html; the FHIR
specification gives no SKOS table of its own): exactMatch is ``equivalent`` (usable
interchangeably across a wide range of applications: extensionally the same, not ``equal``,
which is identity of definition), closeMatch ``inexact`` (interchangeable in some
applications, same boundaries not asserted), broadMatch ``wider``, narrowMatch ``narrower``
(FHIR reads the equivalence from the target's side, as SKOS reads a match from the
subject's), relatedMatch ``relatedto``. A narrower or inexact target carries a comment, as
R4 requires (invariant cmd-1): the property's ``lbp:fhirEquivalenceComment``, then the
mapping's ``lbp:mappingConfidence``.

**ValueSets.** A finding category is a named subclass of ``lbp:ClinicalFinding`` at any
depth (the ontology's finding categories): its name, label and definition
come from the ontology. A category's value set holds every code that the FHIR input reads as
one of its findings (a finding typed with it or with a subclass), that is the targets of the
findings' exact, close and narrow matches (``mapping.INPUT_MATCHES``), one ``include`` per
code system: the standard codes and the project's own codes alike, since a finding without a
standard code can be recorded with the project's code only. A category none of whose
findings has a code has no value set (an include without codes would mean a whole system).

Canonical URLs follow the CodeSystem's layout, ``<project namespace><Type>/<id>``, so that
the server publishes each at its URL (``server/pages/fhir_files``); version, status,
publisher and copyright are the CodeSystem's (``mapping.publication``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from rdflib import OWL, RDFS, Graph, URIRef
from rdflib.namespace import SKOS

from ..knowledge import LBP
from .mapping import (
    INPUT_MATCHES,
    CodeSystemInfo,
    code_system_resource,
    code_systems,
    individuals,
    label_of,
    project_code_system,
    publication,
    split_concept,
)

URI_IDENTIFIER = "urn:ietf:rfc:3986"
"""The identifier system of a URI: a value set names the ontology class it is the codes of."""


@dataclass(frozen=True)
class Mapping:
    """One SKOS mapping: ``term kind <system prefix + code>``."""

    term: URIRef
    kind: URIRef
    system: CodeSystemInfo
    code: str


@dataclass(frozen=True)
class Equivalence:
    """What a SKOS mapping property becomes in a ConceptMap target."""

    code: str
    comment: str | None


def equivalences(graph: Graph) -> dict[URIRef, Equivalence]:
    """Each mapping property with its ``lbp:fhirEquivalence`` (and comment): the kinds of
    mapping the ConceptMap carries."""
    found = {}
    for prop, code in graph.subject_objects(LBP.fhirEquivalence):
        comment = graph.value(prop, LBP.fhirEquivalenceComment)
        found[prop] = Equivalence(str(code), str(comment) if comment is not None else None)
    return found


def mappings(graph: Graph, kinds: list[URIRef]) -> list[Mapping]:
    """Every mapping of a ``kinds`` property, sorted; raises ValueError, naming the mapping,
    for one stated on a term outside the project namespace or pointing into no code system."""
    systems = code_systems(graph)
    found = []
    for kind in kinds:
        for term, target in graph.subject_objects(kind):
            if not (isinstance(term, URIRef) and str(term).startswith(str(LBP))):
                raise ValueError(f"{term} {graph.qname(kind)} {target}: a mapping of a term outside {LBP}")
            split = split_concept(systems, str(target))
            if split is None:
                raise ValueError(
                    f"{graph.qname(term)} {graph.qname(kind)} <{target}>: the target is in no lbp:CodeSystem "
                    "(no lbp:conceptIriPrefix starts it)"
                )
            found.append(Mapping(term, kind, *split))
    return sorted(found, key=lambda m: (m.system.iri, str(m.term), m.code))


def _code(term: URIRef) -> str:
    """The term's code in the ConceptMap's source system (the project namespace)."""
    return str(term)[len(str(LBP)) :]


def _own_displays(graph: Graph) -> dict[str, str]:
    """The display of each code of the project's CodeSystem, as the CodeSystem gives it."""
    return {c["code"]: c["display"] for c in code_system_resource(graph)["concept"]}


def _confidence(graph: Graph, m: Mapping) -> str | None:
    axioms = [
        a
        for a in graph.subjects(OWL.annotatedSource, m.term)
        if graph.value(a, OWL.annotatedProperty) == m.kind
        and str(graph.value(a, OWL.annotatedTarget)) == m.system.prefix + m.code
    ]
    value = next((graph.value(a, LBP.mappingConfidence) for a in axioms), None)
    return str(value) if value is not None else None


def _target(graph: Graph, m: Mapping, how: Equivalence, own_displays: dict[str, str] | None) -> dict:
    """A ConceptMap target; ``own_displays`` when ``m`` points into the project's CodeSystem."""
    confidence = _confidence(graph, m)
    comment = " ".join(
        part for part in (how.comment, f"Mapping confidence: {confidence}." if confidence else None) if part
    )
    target = {
        "code": m.code,
        "display": own_displays.get(m.code) if own_displays is not None else None,
        "equivalence": how.code,
        "comment": comment or None,
    }
    return {k: v for k, v in target.items() if v is not None}


def _pascal(identifier: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in identifier.split("-"))


def concept_map(graph: Graph) -> dict:
    """Every SKOS mapping of the ontology as one FHIR R4 ConceptMap (JSON as a dict)."""
    own, meta = project_code_system(graph), publication(graph)
    kinds = equivalences(graph)
    displays = _own_displays(graph)
    grouped: dict[CodeSystemInfo, dict[URIRef, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for m in mappings(graph, sorted(kinds)):
        mine = displays if m.system == own else None
        grouped[m.system][m.term].append(_target(graph, m, kinds[m.kind], mine))
    groups = []
    for system, terms in grouped.items():
        group = {
            "source": str(LBP),
            "sourceVersion": meta["version"],
            "target": system.fhir_system,
            "targetVersion": meta["version"] if system == own else None,
            "element": [
                {"code": _code(term), "display": label_of(graph, term), "target": targets}
                for term, targets in sorted(terms.items(), key=lambda t: _code(t[0]))
            ],
        }
        groups.append({k: v for k, v in group.items() if v is not None})
    identifier = own.fhir_system.rstrip("/").rsplit("/", 1)[-1]
    targets = ", ".join(label_of(graph, URIRef(s.iri)) for s in grouped)
    how = ", ".join(f"{graph.qname(kind)} {kinds[kind].code}" for kind in sorted(kinds))
    resource = {
        "resourceType": "ConceptMap",
        "id": identifier,
        "url": f"{LBP}ConceptMap/{identifier}",
        "version": meta["version"],
        "name": f"{_pascal(identifier)}ConceptMap",
        "title": f"{identifier} terms to {targets}",
        "status": meta["status"],
        "publisher": meta["publisher"],
        "description": f"The SKOS mappings of the {identifier} ontology's terms. The source system is the "
        f"ontology namespace ({LBP}) and a source code is a term's local name, so that system and code "
        f"together are the term's IRI. The equivalence follows the mapping kind ({how}); each target's "
        "comment gives the mapping confidence. Generated from the ontology.",
        "copyright": meta["copyright"],
        "group": groups,
    }
    return {k: v for k, v in resource.items() if v is not None}


def categories(graph: Graph) -> list[URIRef]:
    """The finding categories: the named subclasses of ``lbp:ClinicalFinding``, at any depth."""
    below = set(graph.transitive_subjects(RDFS.subClassOf, LBP.ClinicalFinding)) - {LBP.ClinicalFinding}
    return sorted(c for c in below if isinstance(c, URIRef))


def category_codes(graph: Graph, category: URIRef) -> list[Mapping]:
    """The codes the FHIR input reads as one of the category's findings, sorted."""
    members = {URIRef(i) for i in individuals(graph, category)}
    return [m for m in mappings(graph, list(INPUT_MATCHES)) if m.term in members]


def value_set(graph: Graph, category: URIRef) -> dict | None:
    """The category's codes as a FHIR R4 ValueSet (JSON as a dict); None when it has none."""
    codes = category_codes(graph, category)
    if not codes:
        return None
    own, meta = project_code_system(graph), publication(graph)
    displays = _own_displays(graph)
    by_system: dict[CodeSystemInfo, list[dict]] = defaultdict(list)
    for m in codes:
        concept = {"code": m.code, "display": displays.get(m.code) if m.system == own else None}
        if concept["code"] not in {c["code"] for c in by_system[m.system]}:
            by_system[m.system].append({k: v for k, v in concept.items() if v is not None})
    includes = [
        {k: v for k, v in include.items() if v is not None}
        for include in (
            {
                "system": system.fhir_system,
                "version": meta["version"] if system == own else None,
                "concept": sorted(concepts, key=lambda c: c["code"]),
            }
            for system, concepts in by_system.items()
        )
    ]
    name = _code(category)
    matches = ", ".join(graph.qname(p) for p in INPUT_MATCHES)
    definition = graph.value(category, SKOS.definition)
    resource = {
        "resourceType": "ValueSet",
        "id": name,
        "url": f"{LBP}ValueSet/{name}",
        "identifier": [{"system": URI_IDENTIFIER, "value": str(category)}],
        "version": meta["version"],
        "name": name,
        "title": label_of(graph, category),
        "status": meta["status"],
        "publisher": meta["publisher"],
        "description": (f"{definition} " if definition is not None else "")
        + f"The codes that record a finding of this category ({category}): the targets of its findings' "
        f"{matches}, standard codes and the project's own. Generated from the ontology.",
        "copyright": meta["copyright"],
        "compose": {"include": includes},
    }
    return {k: v for k, v in resource.items() if v is not None}


def value_sets(graph: Graph) -> list[dict]:
    """A ValueSet per finding category that has codes, in the order of the category IRIs."""
    return [vs for vs in (value_set(graph, c) for c in categories(graph)) if vs is not None]
