"""Terminology mappings: well-formed codes (check digits), known code systems, a
confidence on every mapping, and no code that the terminology reference does not list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rdflib import OWL, RDF, RDFS, URIRef
from rdflib.namespace import SKOS

from reasoner.knowledge import LBP

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "terminology.md"
MATCHES = (SKOS.exactMatch, SKOS.closeMatch, SKOS.narrowMatch, SKOS.broadMatch, SKOS.relatedMatch)

_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
# Permutation table: row i is the i-th power of the Verhoeff permutation (row 1).
_P = [list(range(10)), [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]]
for _ in range(6):
    _P.append([_P[-1][_P[1][j]] for j in range(10)])


def verhoeff_valid(number: str) -> bool:
    """SNOMED CT identifiers end in a Verhoeff check digit."""
    c = 0
    for i, digit in enumerate(reversed(number)):
        c = _D[c][_P[i % 8][int(digit)]]
    return c == 0


def loinc_valid(code: str) -> bool:
    """LOINC codes end in a mod-10 check digit after the hyphen."""
    body, check = code.split("-")
    total = 0
    for i, digit in enumerate(reversed(body)):
        d = int(digit) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return (10 - total % 10) % 10 == int(check)


def test_check_digit_functions_reject_corrupted_codes():
    assert verhoeff_valid("386661006") and not verhoeff_valid("386661007")
    assert loinc_valid("4537-7") and not loinc_valid("4537-8")


def _systems(onto) -> dict[str, str]:
    return {
        str(onto.value(s, LBP.conceptIriPrefix)): str(s) for s in onto.subjects(LBP.conceptIriPrefix, None)
    }


def _mappings(onto):
    for prop in MATCHES:
        for subject, target in onto.subject_objects(prop):
            if str(subject).startswith(str(LBP)):
                yield subject, prop, target


def _code(systems: dict[str, str], target: URIRef) -> tuple[str, str]:
    for prefix, system in systems.items():
        if str(target).startswith(prefix):
            return system, str(target)[len(prefix) :]
    raise AssertionError(f"{target} is in no declared code system")


def test_every_mapping_targets_a_declared_code_system_with_a_well_formed_code(onto):
    systems = _systems(onto)
    assert len(list(_mappings(onto))) >= 30
    for _, _, target in _mappings(onto):
        system, code = _code(systems, target)
        name = system.rsplit("/", 1)[1]
        if name == "SNOMEDCT":
            assert code.isdigit() and 6 <= len(code) <= 18 and verhoeff_valid(code), code
        elif name == "LOINC":
            assert re.fullmatch(r"\d{1,7}-\d", code) and loinc_valid(code), code
        elif name == "RadLexPlaybook":
            assert re.fullmatch(r"RPID\d+", code), code
        elif name == "CPT":
            assert re.fullmatch(r"\d{5}", code), code
        else:  # the project's own code system: lower-case words joined by hyphens
            assert system == str(LBP.LBPImagingCodeSystem), system
            assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", code), code


def _is_external(external: dict[str, str], target: URIRef) -> bool:
    return any(str(target).startswith(prefix) for prefix in external)


def test_every_mapping_carries_its_confidence_as_an_axiom_annotation(onto):
    for subject, prop, target in _mappings(onto):
        axioms = [
            a
            for a in onto.subjects(OWL.annotatedSource, subject)
            if onto.value(a, OWL.annotatedProperty) == prop and onto.value(a, OWL.annotatedTarget) == target
        ]
        assert len(axioms) == 1 and onto.value(axioms[0], LBP.mappingConfidence), (subject, target)


@pytest.mark.skipif(not REFERENCE.is_file(), reason="shared/reference not beside the repository")
def test_no_code_is_invented_and_every_verified_code_is_mapped(onto):
    rows = [ln for ln in REFERENCE.read_text(encoding="utf-8").splitlines() if ln.startswith("|")]
    listed: set[str] = set()
    verified: set[str] = set()
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        codes = {c for cell in cells for c in re.findall(r"\b(?:\d{6,18}|\d{3,7}-\d|RPID\d+|\d{5})\b", cell)}
        listed |= codes
        if cells[-1].startswith(("V", "C")):
            verified |= codes
    systems = _systems(onto)
    # The reference lists external codes; the project's own code system (concept IRIs in
    # the project namespace) is checked against ontology/fhir/ in test_fhir.py.
    external = {prefix: s for prefix, s in systems.items() if not prefix.startswith(str(LBP))}
    assert len(external) < len(systems), "the project's own code system is missing"
    mapped = {_code(systems, t)[1] for _, _, t in _mappings(onto) if _is_external(external, t)}
    assert mapped <= listed, f"codes not in the terminology reference: {sorted(mapped - listed)}"
    # Every verified or corroborated code is mapped, except those deliberately left out
    # with a codingStatus note (pacemaker: related, not equivalent) and ICD-10-CM codes.
    unmapped = verified - mapped - {"441509002"}
    assert unmapped == set(), f"verified codes without a mapping: {sorted(unmapped)}"


def test_every_finding_procedure_and_condition_has_a_code_or_says_why_not(onto):
    kinds = (LBP.ClinicalFinding, LBP.DiagnosticProcedure, LBP.UnderlyingCondition)
    concepts = {
        ind
        for kind in kinds
        for cls in onto.transitive_subjects(RDFS.subClassOf, kind)
        for ind in onto.subjects(RDF.type, cls)
    }
    assert len(concepts) >= 40
    silent = [
        str(c)
        for c in concepts
        if not any(onto.value(c, p) is not None for p in MATCHES) and onto.value(c, LBP.codingStatus) is None
    ]
    assert silent == [], "concepts with neither a mapping nor a codingStatus"
