"""The terminology as FHIR (reasoner/fhir/terminology.py): the checked-in ConceptMap carries
every SKOS mapping of the ontology with the equivalence the standards align, each ValueSet
holds exactly the codes of its category's findings, both are valid R4 and served at their
canonical URLs, and an edit of the mappings (data) changes them and makes ``--check`` fail.

What is expected is read from the ontology here, with SPARQL, and the SKOS-to-FHIR alignment
is written out below: neither goes through the generator's own code."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fhir.resources.R4B.conceptmap import ConceptMap
from fhir.resources.R4B.valueset import ValueSet
from rdflib import Graph
from rdflib.namespace import SKOS
from sparql_server import EXAMPLES, running

from reasoner.fhir.artefacts import main
from reasoner.fhir.terminology import concept_map, value_sets
from reasoner.knowledge import LBP, KnowledgeBase
from tests.kb_copy import copy_kb, edit

ROOT = Path(__file__).resolve().parent.parent
FHIR = ROOT / "ontology" / "fhir"
CONCEPT_MAP = FHIR / "ConceptMap-lbp-imaging.json"
VALUE_SETS = sorted(FHIR.glob("ValueSet-*.json"))
CODE_SYSTEM = FHIR / "CodeSystem-lbp-imaging.json"
# The alignment of SKOS mapping properties (SKOS Reference, section 10) with the R4
# ConceptMapEquivalence codes (hl7.org/fhir/R4/codesystem-concept-map-equivalence.html).
EQUIVALENCE = {
    SKOS.exactMatch: "equivalent",
    SKOS.closeMatch: "inexact",
    SKOS.narrowMatch: "narrower",
    SKOS.broadMatch: "wider",
    SKOS.relatedMatch: "relatedto",
}
PREFIXES = (
    "PREFIX lbp: <https://w3id.org/lbp-imaging/>\nPREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
)
MAPPINGS = (
    PREFIXES
    + """
SELECT ?term ?kind ?target ?system ?prefix WHERE {
  VALUES ?kind { skos:exactMatch skos:closeMatch skos:narrowMatch skos:broadMatch skos:relatedMatch }
  ?term ?kind ?target .
  ?codes a lbp:CodeSystem ; lbp:conceptIriPrefix ?prefix ; lbp:fhirSystem ?system .
  FILTER(STRSTARTS(STR(?target), ?prefix))
}"""
)
CATEGORY_CODES = (
    PREFIXES
    + """
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?category ?label ?system ?target ?prefix WHERE {
  ?category rdfs:subClassOf+ lbp:ClinicalFinding ; rdfs:label ?label .
  ?finding a/rdfs:subClassOf* ?category ; skos:exactMatch|skos:closeMatch|skos:narrowMatch ?target .
  ?codes a lbp:CodeSystem ; lbp:conceptIriPrefix ?prefix ; lbp:fhirSystem ?system .
  FILTER(STRSTARTS(STR(?target), ?prefix) && isIRI(?category))
}"""
)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _code(target, prefix) -> str:
    return str(target)[len(str(prefix)) :]


def map_rows(resource: dict) -> list[tuple[str, str, str, str]]:
    """(source IRI, target system, target code, equivalence) of every target of a ConceptMap."""
    return [
        (group["source"] + element["code"], group["target"], target["code"], target["equivalence"])
        for group in resource["group"]
        for element in group["element"]
        for target in element["target"]
    ]


def test_every_skos_mapping_is_in_the_concept_map_with_the_aligned_equivalence(onto: Graph):
    expected = [
        (str(r.term), str(r.system), _code(r.target, r.prefix), EQUIVALENCE[r.kind])
        for r in onto.query(MAPPINGS)
    ]
    assert len(expected) >= 60 and {e[1] for e in expected} >= {"http://snomed.info/sct", "http://loinc.org"}
    rows = map_rows(load(CONCEPT_MAP))
    assert sorted(rows) == sorted(expected)
    assert len(set(rows)) == len(rows)
    targets = [t for g in load(CONCEPT_MAP)["group"] for e in g["element"] for t in e["target"]]
    # R4 invariant cmd-1: a narrower or inexact mapping says in what sense.
    assert all(t.get("comment") for t in targets if t["equivalence"] in ("narrower", "inexact"))
    assert {t["equivalence"] for t in targets} >= {"equivalent", "inexact", "narrower", "wider"}


def test_every_value_set_holds_exactly_the_codes_of_its_categorys_findings(onto: Graph):
    expected: dict[str, set[tuple[str, str]]] = {}
    labels = {}
    for r in onto.query(CATEGORY_CODES):
        expected.setdefault(str(r.category), set()).add((str(r.system), _code(r.target, r.prefix)))
        labels[str(r.category)] = str(r.label)
    found = {}
    for path in VALUE_SETS:
        resource = load(path)
        category = resource["identifier"][0]["value"]
        found[category] = {
            (i["system"], c["code"]) for i in resource["compose"]["include"] for c in i["concept"]
        }
        assert resource["title"] == labels[category]
        assert len({i["system"] for i in resource["compose"]["include"]}) == len(
            resource["compose"]["include"]
        )
    assert found == expected
    assert {str(LBP.RedFlag), str(LBP.CaudaEquinaSign)} <= set(found)
    own = load(CODE_SYSTEM)["url"]
    assert any({own, "http://snomed.info/sct"} <= {s for s, _ in codes} for codes in found.values())


def test_the_artefacts_are_valid_r4_published_like_the_code_system():
    code_system = load(CODE_SYSTEM)
    for path in [CONCEPT_MAP, *VALUE_SETS]:
        resource = load(path)
        model = {"ConceptMap": ConceptMap, "ValueSet": ValueSet}[resource["resourceType"]]
        model.model_validate(resource)
        assert path.name == f"{resource['resourceType']}-{resource['id']}.json"
        assert resource["url"] == f"{LBP}{resource['resourceType']}/{resource['id']}"
        for key in ("version", "status", "publisher", "copyright"):
            assert resource[key] == code_system[key], (path.name, key)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    case = EXAMPLES / "30-infection-with-cauda-equina.ttl"
    with running(["--cases", str(case)], tmp_path_factory.mktemp("logs")) as server:
        yield server


def test_the_concept_map_and_value_sets_are_served_at_their_canonical_urls(server):
    for path in [CONCEPT_MAP, *VALUE_SETS]:
        resource = load(path)
        response = httpx.get(server.url + urlsplit(resource["url"]).path, timeout=30)
        assert response.status_code == 200, path.name
        assert response.headers["content-type"] == "application/fhir+json"
        assert response.content == path.read_bytes()
    assert httpx.get(server.url + "/lbp-imaging/ValueSet/NoSuchCategory", timeout=30).status_code == 404


def test_an_edited_mapping_changes_the_concept_map_and_value_sets_and_check_flags_them(
    tmp_path: Path, capsys
):
    root = copy_kb(tmp_path, ("ontology", "shapes", "queries"))
    # Fever's SNOMED CT code becomes a broad match (a wider code): no longer read as fever.
    edit(root, "ontology/mappings.ttl", "lbp:Fever skos:exactMatch", "lbp:Fever skos:broadMatch")
    # The alignment is data too: close matches become "related to".
    edit(root, "ontology/mappings.ttl", 'lbp:fhirEquivalence "inexact"', 'lbp:fhirEquivalence "relatedto"')
    graph = KnowledgeBase.load(root).ontology
    rows = map_rows(concept_map(graph))
    assert (str(LBP.Fever), "http://snomed.info/sct", "386661006", "wider") in rows
    assert (str(LBP.Fever), "http://snomed.info/sct", "386661006", "equivalent") not in rows
    assert "inexact" not in {r[3] for r in rows} and "relatedto" in {r[3] for r in rows}
    infection = next(v for v in value_sets(graph) if v["id"] == "InfectionRiskFactor")
    assert "386661006" not in {c["code"] for i in infection["compose"]["include"] for c in i["concept"]}

    assert main(["--check", "--kb", str(root)]) == 1
    stale = {line.split(":")[0] for line in capsys.readouterr().err.splitlines()}
    assert stale == {  # and the questionnaire, whose fever item no longer carries the code
        "ontology/fhir/ConceptMap-lbp-imaging.json",
        "ontology/fhir/Questionnaire-lbp-PatientCase.json",
        "ontology/fhir/ValueSet-InfectionRiskFactor.json",
        "ontology/fhir/ValueSet-RedFlag.json",
    }
    assert main(["--kb", str(root)]) == 0 and main(["--check", "--kb", str(root)]) == 0


def test_a_mapping_into_no_code_system_is_named(tmp_path: Path, capsys):
    root = copy_kb(tmp_path, ("ontology", "shapes", "queries"))
    with (root / "ontology/mappings.ttl").open("a", encoding="utf-8") as f:
        f.write("\nlbp:Fever skos:closeMatch <http://example.org/codes/fever> .\n")
    assert main(["--check", "--kb", str(root)]) == 2
    err = capsys.readouterr().err
    assert "lbp:Fever skos:closeMatch <http://example.org/codes/fever>" in err and "no lbp:CodeSystem" in err
    assert "Traceback" not in err
