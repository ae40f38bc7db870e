"""The case facts the criteria read, as a FHIR R4 ``Questionnaire`` (SDC conventions).

Why generated: a clinician or an EHR answers questions about a case in FHIR Structured
Data Capture, and the questions must be exactly the facts the criteria read, so an author
who adds a red flag to the ontology gets its question without a code change. Everything
shown is read from the knowledge base: the facts from the compiled definitions (a
category closed by ``owl:oneOf`` asked member by member, as three-valued evaluation reads
it), labels, lay synonyms (``skos:altLabel``), codes (the SKOS mappings the FHIR output
reads), UCUM units, what each finding suggests (``lbp:suspectedCondition``) and the urgency
of the criteria it feeds, and the questionnaire's metadata from the ontology header.

Every other finding the ontology defines is asked too, since the closed-world outcomes
read it (a red flag no criterion reads still leads to clinical review).
A finding is a ``choice`` of yes / no; leaving it unanswered means unknown, never absent.
A case property is ``integer``, ``decimal`` or ``boolean`` by its range, with its UCUM
unit (SDC ``questionnaire-unit``). Findings are grouped by what they suggest (their own or
their category's ``lbp:suspectedCondition``, as ``questions`` groups questions), groups
most urgent first; the case properties come last, under the case class they describe.
A told type of the case is not asked: the input says what a case is.

``adaptive`` narrows the questionnaire to one assessed case: only the items the engine's
questions name, in their order (facts the case does not record, so none is pre-filled).
``populate`` pre-fills the questionnaire with what an assessed case records (SDC
``$populate`` into ``initial`` values), so that a form shows the known answers beside the
open questions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from rdflib import OWL, RDFS, Graph, URIRef
from rdflib.namespace import DCTERMS, SKOS, VANN

from .. import DISCLAIMER
from ..knowledge import LBP, KnowledgeBase
from ..pipeline.classify_fast import Taxonomy
from ..pipeline.definitions import INTEGER_FAMILY, Leaf, compile_definitions, leaves
from ..pipeline.explain import CaseResult, Vocabulary
from ..pipeline.questions import PRESENCE, fact_asked, suggested_group
from ..pipeline.three_valued import CaseFacts, expand
from .mapping import FhirMapping
from .output import UCUM_SYSTEM, URI_SYSTEM
from .sdc import HELP_CONTROL, ITEM_CONTROL_EXTENSION, NO, SDC_PROFILE, UNIT_EXTENSION, VALUE_TYPES, YES

XSD = "http://www.w3.org/2001/XMLSchema#"
INTEGER_TYPES = {str(t) for t in INTEGER_FAMILY}
ITEM_TYPES = {f"{XSD}decimal": "decimal", f"{XSD}boolean": "boolean"}


class QuestionnaireError(Exception):
    """The knowledge base reads a case fact the questionnaire cannot ask (named)."""


@dataclass
class _Asked:
    """One case fact the criteria read: a finding (present or absent) or a property value."""

    iri: str
    presence: bool
    criteria: set[str] = field(default_factory=set)


def _local(iri: str) -> str:
    return iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _members(taxonomy: Taxonomy, cls: str) -> list[str]:
    """The individuals told to be in ``cls`` (or a subclass): what an open category holds."""
    return sorted(n for n, types in taxonomy.types.items() if any(cls in taxonomy.supers(t) for t in types))


def _read(kb: KnowledgeBase, vocab: Vocabulary, mapping: FhirMapping) -> dict[str, _Asked]:
    """Every case fact some definition reads, with the defined classes that read it, and
    every other finding the ontology defines: the closed-world outcomes read those (a red
    flag that no criterion reads still calls for clinical review), so a form must ask them."""
    taxonomy = Taxonomy.from_graph(kb.ontology)
    facts = CaseFacts.from_ontology(kb.ontology, taxonomy)
    found: dict[str, _Asked] = {}
    for cls, formula in compile_definitions(kb.ontology).items():
        for leaf in leaves(expand(formula, facts)):
            if leaf.kind == "type":
                continue
            read = [leaf]
            if leaf.kind == "some" and not vocab.is_functional(str(leaf.on)):
                members = _members(taxonomy, str(leaf.cls))
                read = [Leaf("value", leaf.properties, leaf.on, value=URIRef(m)) for m in members]
            for one in read:
                _, asks, about, _ = fact_asked(vocab, one)
                found.setdefault(about, _Asked(about, asks == PRESENCE)).criteria.add(str(cls))
    for finding in sorted(mapping.findings - set(found)):
        found[finding] = _Asked(finding, True)  # read by the closed-world outcomes only
    return found


class _Writer:
    """Builds items from what the knowledge base says about each fact."""

    def __init__(self, kb: KnowledgeBase, vocab: Vocabulary):
        self.g: Graph = kb.ontology
        self.vocab = vocab
        self.mapping = FhirMapping.from_ontology(kb.ontology)

    def rank(self, asked: _Asked) -> int:
        return max((self.vocab.rank_of(c) for c in asked.criteria), default=0)

    def described(self, iri: str) -> dict:
        """linkId, definition, code and text of an ontology term."""
        item = {"linkId": _local(iri), "definition": iri}
        codes = [{"system": c["system"], "code": c["code"]} for c in self.mapping.codings.get(iri, ())]
        return {**item, **({"code": codes} if codes else {}), "text": self.vocab.label(iri)}

    def help(self, iri: str) -> list[dict]:
        """The lay synonyms of a term as an SDC help item, when the ontology gives any."""
        synonyms = self.vocab.annotation(iri, SKOS.altLabel)
        if not synonyms:
            return []
        return [
            {
                "extension": [
                    {
                        "url": ITEM_CONTROL_EXTENSION,
                        "valueCodeableConcept": {"coding": [HELP_CONTROL]},
                    }
                ],
                "linkId": f"{_local(iri)}.help",
                "text": "; ".join(synonyms),
                "type": "display",
            }
        ]

    def item(self, asked: _Asked) -> dict:
        item = self.described(asked.iri)
        if asked.presence:
            item.update(type="choice", answerOption=[{"valueCoding": YES}, {"valueCoding": NO}])
        else:
            prop = self.mapping.properties.get(asked.iri)
            if prop is None or (prop.datatype not in ITEM_TYPES and prop.datatype not in INTEGER_TYPES):
                raise QuestionnaireError(
                    f"{self.vocab.label(asked.iri)} ({asked.iri}): a criterion reads its value, but it is "
                    "not a case property with a number or yes/no range, so it cannot be asked"
                )
            item["type"] = "integer" if prop.datatype in INTEGER_TYPES else ITEM_TYPES[prop.datatype]
            if prop.unit:
                unit = {"system": UCUM_SYSTEM, "code": prop.unit, "display": prop.unit}
                item["extension"] = [{"url": UNIT_EXTENSION, "valueCoding": unit}]
        children = self.help(asked.iri)
        return {**item, **({"item": children} if children else {})}

    def group_of(self, asked: _Asked) -> str:
        """A finding's group: what it suggests, as ``questions`` groups a question about it;
        a property's: the class of cases it describes."""
        if not asked.presence:
            domain = self.g.value(URIRef(asked.iri), RDFS.domain)
            return str(domain) if domain is not None else asked.iri
        criteria = sorted(asked.criteria, key=lambda c: (-self.vocab.rank_of(c), self.vocab.label(c)))
        question = {"asks": PRESENCE, "about": {"iri": asked.iri}, "criteria": [{"iri": c} for c in criteria]}
        return suggested_group(self.vocab, question)

    def groups(self, read: dict[str, _Asked]) -> list[dict]:
        """Finding groups by the urgency of the criteria they feed, then the properties."""
        grouped: dict[tuple[bool, str], list[_Asked]] = {}
        for asked in read.values():
            grouped.setdefault((not asked.presence, self.group_of(asked)), []).append(asked)

        def order(key: tuple[bool, str]) -> tuple:
            last, iri = key
            return (last, -max(self.rank(a) for a in grouped[key]), self.vocab.label(iri))

        found = []
        for key in sorted(grouped, key=order):
            members = sorted(grouped[key], key=lambda a: (-self.rank(a), self.vocab.label(a.iri)))
            found.append({**self.described(key[1]), "type": "group", "item": [self.item(a) for a in members]})
        return found


def _header(kb: KnowledgeBase) -> dict:
    """Metadata from the ontology header: canonical URL, version, name, title, publisher."""
    g = kb.ontology
    top = URIRef(kb.identity["ontology"] or LBP)
    base = str(g.value(top, VANN.preferredNamespaceUri) or LBP)
    prefix = str(g.value(top, VANN.preferredNamespacePrefix) or _local(base))
    case_class = _local(_case_class(g))
    title = g.value(top, DCTERMS.title)
    fields = {
        "resourceType": "Questionnaire",
        "id": f"{prefix}-{case_class}",
        "meta": {"profile": [SDC_PROFILE]},
        "url": f"{base}fhir/Questionnaire/{prefix}-{case_class}",
        "version": _text(g.value(top, OWL.versionInfo)),
        "name": f"{prefix[:1].upper()}{prefix[1:]}{case_class}",
        "title": _text(title),
        "status": "draft",
        "subjectType": ["Patient"],
        "date": _text(g.value(top, DCTERMS.issued)),
        "publisher": _text(g.value(top, DCTERMS.creator)),
        "description": f"The facts of a {Vocabulary(g).label(_case_class(g))} that the criteria of "
        f"{_text(title) or prefix} read. {DISCLAIMER}",
    }
    return {k: v for k, v in fields.items() if v is not None}


def _case_class(g: Graph) -> str:
    """The class of the cases the criteria classify: the domain of the finding property."""
    return str(g.value(LBP.hasFinding, RDFS.domain) or LBP.hasFinding)


def _text(value) -> str | None:
    return str(value) if value is not None else None


def questionnaire(kb: KnowledgeBase, vocab: Vocabulary | None = None) -> dict:
    """The questionnaire of every case fact the knowledge base's criteria read (FHIR R4 JSON)."""
    vocab = vocab or Vocabulary(kb.ontology)
    writer = _Writer(kb, vocab)
    items = writer.groups(_read(kb, vocab, writer.mapping))
    linkids = [i["linkId"] for g in items for i in (g, *g["item"])]
    clashes = sorted({x for x in linkids if linkids.count(x) > 1})
    if clashes:
        raise QuestionnaireError(f"two terms share the local name {', '.join(clashes)}: linkIds must differ")
    return {**_header(kb), "item": items}


def known_answers(result: CaseResult) -> dict[str, dict]:
    """What the case records, as the ``initial`` answer of each item (keyed by the item's
    ``definition``): a finding recorded present is yes, one recorded absent is no, a
    property's value is its value. The facts are the ones the result reports."""
    found: dict[str, dict] = {}
    for fact in result.facts:
        prop, value = fact["property"]["iri"], fact["value"]
        if prop in (str(LBP.hasFinding), str(LBP.hasAbsentFinding)) and "iri" in value:
            found[value["iri"]] = {"valueCoding": YES if prop == str(LBP.hasFinding) else NO}
        elif "value" in value:
            found.setdefault(prop, {"value": value["value"]})
    return found


def populate(full: dict, result: CaseResult) -> dict:
    """The questionnaire with the answers ``result``'s case records as ``initial`` values
    (SDC ``$populate``): a form generated from it opens with those answers filled in and
    every other item unanswered (unknown)."""
    known = known_answers(result)

    def filled(item: dict) -> dict:
        out = dict(item)
        if "item" in item:
            out["item"] = [filled(i) for i in item["item"]]
        answer = known.get(item.get("definition", ""))
        if answer is not None and item["type"] == "choice" and "valueCoding" in answer:
            out["initial"] = [answer]
        elif answer is not None and item["type"] in VALUE_TYPES and "value" in answer:
            out["initial"] = [{VALUE_TYPES[item["type"]]: answer["value"]}]
        return out

    return {**full, "item": [filled(g) for g in full["item"]]}


def adaptive(full: dict, result: CaseResult) -> dict:
    """The questionnaire narrowed to one assessed case: the items its questions name, in
    their order, under the groups the engine gives them for this case (``suggests``: a
    property's value can suggest a condition through the criteria still open for it).
    The engine asks only about facts the case does not record, so nothing here has an
    ``initial`` value (pre-populating the full questionnaire, SDC ``$populate``, is left for
    the form). Derived from the full questionnaire, so it names it."""
    items = {i["definition"]: i for g in full["item"] for i in g["item"]}
    described = {g["definition"]: {k: v for k, v in g.items() if k != "item"} for g in full["item"]}
    groups: list[dict] = []
    seen: set[str] = set()
    for question in result.questions:
        iri, suggests = question["about"]["iri"], question["suggests"]
        if iri in seen or iri not in items:
            continue
        seen.add(iri)
        if not groups or groups[-1]["definition"] != suggests["iri"]:
            group = described.get(suggests["iri"]) or {
                "linkId": _local(suggests["iri"]),
                "definition": suggests["iri"],
                "text": suggests["label"],
                "type": "group",
            }
            groups.append({**group, "item": []})
        groups[-1]["item"].append(items[iri])
    header = {k: v for k, v in full.items() if k not in ("url", "item", "id", "name")}
    return {
        **header,
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{full['id']}|{result.case}")),
        "identifier": [{"system": URI_SYSTEM, "value": result.case}],
        "derivedFrom": [f"{full['url']}|{full['version']}" if "version" in full else full["url"]],
        "title": f"{full.get('title', full['name'])}: {_local(result.case)}",
        "item": groups,
    }
