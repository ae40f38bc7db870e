"""The fast engine gives the same answers as the reference: HermiT (OWL 2 DL) for
criterion membership and indicated procedures, pyshacl for case validation, on seeded
generated cases that probe the criteria's numeric boundaries; and on whole numbers,
which are valid wherever a decimal is (sh:or over the xsd:decimal family)."""

from __future__ import annotations

import random
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyoxigraph as ox
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from outcomes import observed
from rdflib import RDF, RDFS, Graph, URIRef
from rdflib import XSD as XSD_NS

from reasoner.knowledge import LBP
from reasoner.pipeline import classify_fast, classify_hermit
from reasoner.pipeline.assess import Assessor
from reasoner.pipeline.cases import CaseBatch, group_by_subject, to_rdflib
from reasoner.pipeline.definitions import DECIMAL_FAMILY, UnsupportedConstruct, compile_definitions
from reasoner.pipeline.explain import Vocabulary
from reasoner.pipeline.validate import INTEGER_RANGES, SH, FastValidator, validate_reference
from reasoner.synthetic import CASE_NS, CaseGenerator

N_CASES = 2000
XSD = "http://www.w3.org/2001/XMLSchema#"
FAMILY = {str(d) for d in DECIMAL_FAMILY}


def _store(kb, ntriples: str) -> ox.Store:
    store = ox.Store()
    store.bulk_extend(
        ox.parse(kb.ontology.serialize(format="nt", encoding="utf-8"), format=ox.RdfFormat.N_TRIPLES)
    )
    store.bulk_extend(ox.parse(ntriples, format=ox.RdfFormat.N_TRIPLES))
    return store


@pytest.mark.hermit
def test_fast_engine_matches_hermit_on_2000_generated_cases(kb):
    ntriples = CaseGenerator(kb, seed=2026).ntriples(N_CASES)
    cases = [f"{CASE_NS}{i}" for i in range(N_CASES)]
    formulas = compile_definitions(kb.ontology)
    batch = CaseBatch.from_quads(group_by_subject(ox.parse(ntriples, format=ox.RdfFormat.N_TRIPLES))).facts
    fast = classify_fast.FastClassifier(formulas, kb.ontology).classify(batch, cases)

    graph = Graph().parse(data=ntriples, format="nt")
    per_case: dict[URIRef, Graph] = {URIRef(c): Graph() for c in cases}
    for triple in graph:
        per_case[triple[0]].add(triple)
    # Batches of 50: HermiT's time per case grows with its batch, and with the tests' JVM
    # options (conftest.SHORT_RUN_JVM) a JVM costs little, so 50 took the least CPU on
    # 600 of these cases (34.9 s; 41.5 s in batches of 75, 41.3 s of 40).
    reference = classify_hermit.classify(kb.ontology, per_case, batch_size=50)
    assert reference.inconsistent == []

    vocab = Vocabulary(kb.ontology)
    defined = {str(c) for c in formulas}
    mismatches = []
    for case in cases:
        ref = reference.classified[URIRef(case)]
        ref_classes = {str(c) for c in ref.classes} & defined
        fast_classes = set(fast[case].classes)
        ref_procedures = {str(p) for p in ref.values.get(LBP.indicatesProcedure, ())}
        fast_procedures = {
            str(vocab.restrictions(c)[str(LBP.indicatesProcedure)])
            for c in fast_classes
            if str(LBP.indicatesProcedure) in vocab.restrictions(c)
        }
        if ref_classes != fast_classes or ref_procedures != fast_procedures:
            mismatches.append((case, ref_classes ^ fast_classes, ref_procedures ^ fast_procedures))
    assert mismatches == [], mismatches[:5]
    # The generated cases exercise every defined class and leave some cases in none.
    hits = {c for case in cases for c in fast[case].classes}
    assert hits == defined
    assert any(not fast[c].classes for c in cases)


MUTATIONS = {
    "age-decimal": lambda case: [
        f'<{case}> <{LBP.ageInYears}> "51.5"^^<http://www.w3.org/2001/XMLSchema#decimal> .'
    ],
    "age-too-high": lambda case: [
        f'<{case}> <{LBP.ageInYears}> "130"^^<http://www.w3.org/2001/XMLSchema#integer> .'
    ],
    "age-ill-typed": lambda case: [
        f'<{case}> <{LBP.ageInYears}> "fifty"^^<http://www.w3.org/2001/XMLSchema#integer> .'
    ],
    "negative-weeks": lambda case: [
        f'<{case}> <{LBP.symptomDurationWeeks}> "-1.0"^^<http://www.w3.org/2001/XMLSchema#decimal> .'
    ],
    "double-weeks": lambda case: [
        f'<{case}> <{LBP.conservativeTreatmentWeeks}> "6.0e0"^^<http://www.w3.org/2001/XMLSchema#double> .'
    ],
    "unknown-finding": lambda case: [f"<{case}> <{LBP.hasFinding}> <{LBP}NotAFinding> ."],
    "present-and-absent": lambda case: [
        f"<{case}> <{LBP.hasFinding}> <{LBP.Fever}> .",
        f"<{case}> <{LBP.hasAbsentFinding}> <{LBP.Fever}> .",
    ],
    "bad-boolean": lambda case: [
        f'<{case}> <{LBP.surgicalCandidate}> "maybe"^^<http://www.w3.org/2001/XMLSchema#boolean> .'
    ],
    "bad-sex": lambda case: [f"<{case}> <{LBP.administrativeSex}> <{LBP.Fever}> ."],
    "untyped": lambda case: [
        f'<{case}-untyped> <{LBP.ageInYears}> "40"^^<http://www.w3.org/2001/XMLSchema#integer> .'
    ],
}


def _key(r) -> tuple:
    """A validation result, its value compared as a number where it is one: pyoxigraph
    stores numbers in canonical form ("-1.0" as "-1") and every XSD integer type as
    xsd:integer ("5"^^xsd:int as "5"^^xsd:integer)."""
    value = r.value
    if value and value.startswith('"') and "^^" in value:
        lexical, datatype = value[1:].split('"^^', 1)
        kind = "decimal family" if datatype.strip("<>") in FAMILY else datatype
        try:
            value = (kind, Decimal(lexical).normalize())
        except InvalidOperation:
            value = (kind, lexical)
    return (r.focus, r.path, r.component, str(value), r.message)


def test_fast_validator_matches_pyshacl_on_valid_and_mutated_cases(kb):
    rng = random.Random(11)
    gen = CaseGenerator(kb, seed=11)
    lines = []
    for i in range(300):
        lines += list(gen.triples(i))
        if rng.random() < 0.5:
            lines += rng.choice(list(MUTATIONS.values()))(f"{CASE_NS}{i}")
    ntriples = "\n".join(lines) + "\n"
    shapes = kb.shapes("case-shapes")
    fast = FastValidator(shapes).validate(_store(kb, ntriples))
    reference = validate_reference(kb.ontology + to_rdflib(ntriples), shapes)

    assert sorted(map(_key, fast)) == sorted(map(_key, reference))
    assert len({r.focus for r in fast}) > 100  # the mutations were caught


def test_generated_cases_are_valid(kb):
    ntriples = CaseGenerator(kb, seed=3).ntriples(500)
    assert FastValidator(kb.shapes("case-shapes")).validate(_store(kb, ntriples)) == []


# -- whole numbers are numbers: sh:or over the xsd:decimal family -------------------------
@pytest.fixture(scope="module")
def case_shapes(kb) -> Graph:
    return kb.shapes("case-shapes")


@pytest.fixture(scope="module")
def decimal_properties(kb, case_shapes) -> dict[str, str]:
    """Every case property whose range is xsd:decimal, with the message of its value shape."""
    onto, found = kb.ontology, {}
    for prop in onto.subjects(RDFS.range, XSD_NS.decimal):
        if (prop, RDFS.domain, LBP.PatientCase) in onto:
            (shape,) = [s for s in case_shapes.subjects(SH.path, prop) if (s, SH["or"], None) in case_shapes]
            found[str(prop)] = str(case_shapes.value(shape, SH.message))
    return found


@pytest.fixture(scope="module")
def validate_both(kb, case_shapes):
    """Both validators on one case per (property, N-Triples object) pair."""
    validator = FastValidator(case_shapes)
    ontology = list(
        ox.parse(kb.ontology.serialize(format="nt", encoding="utf-8"), format=ox.RdfFormat.N_TRIPLES)
    )

    def run(values: list[tuple[str, str]]) -> tuple[list, list]:
        lines = []
        for i, (prop, obj) in enumerate(values):
            case = f"<{CASE_NS}numbers/{i}>"
            lines += [
                f"{case} <{RDF.type}> <{LBP.PatientCase}> .",
                f'{case} <{LBP.ageInYears}> "40"^^<{XSD}integer> .',
                f"{case} <{prop}> {obj} .",
            ]
        quads = list(ox.parse("\n".join(lines) + "\n", format=ox.RdfFormat.N_TRIPLES))
        store = ox.Store()
        store.bulk_extend(ontology)
        store.bulk_extend(quads)
        return validator.validate(store, quads), validate_reference(
            kb.ontology + to_rdflib(quads), case_shapes
        )

    return run


def _spellings(number: Decimal, datatype: str) -> list[str]:
    """Lexical forms of a number in a datatype: canonical, with a sign, leading zeros and,
    for xsd:decimal, trailing zeros, a point without fraction digits (6.) or without an
    integer part (.5)."""
    sign = "-" if number < 0 else ""
    digits = f"{abs(number):f}"
    forms = [f"{sign}{digits}", f"{sign or '+'}{digits}", f"{sign}00{digits}"]
    if datatype == f"{XSD}decimal":
        whole, _, fraction = digits.partition(".")
        forms.append(f"{sign}{whole}.{fraction}00")
        if not fraction:
            forms.append(f"{sign}{whole}.")
        elif whole == "0":
            forms.append(f"{sign}.{fraction}")
    return forms


@st.composite
def decimal_family_literals(draw) -> str:
    """A well-formed literal of any type of the xsd:decimal family, within its type's range."""
    datatype = str(draw(st.sampled_from(DECIMAL_FAMILY)))
    if datatype == f"{XSD}decimal":
        number = draw(st.decimals(-1000, 1000, places=draw(st.integers(0, 3)), allow_nan=False))
    else:
        low, high = INTEGER_RANGES.get(datatype.removeprefix(XSD), (None, None))
        low = -(10**6) if low is None else max(low, -(10**6))
        high = 10**6 if high is None else min(high, 10**6)
        number = Decimal(draw(st.integers(low, high)))
    return f'"{draw(st.sampled_from(_spellings(number, datatype)))}"^^<{datatype}>'


def _number(obj: str) -> Decimal:
    return Decimal(obj[1:].split('"^^', 1)[0])


def _assert_decimal_family_accepted(values, fast, reference) -> None:
    """Identical results; a value zero or more is accepted, a negative one is rejected only
    where the shapes ask for zero or more (sh:minInclusive)."""
    assert sorted(map(_key, fast)) == sorted(map(_key, reference))
    for r in fast:
        assert r.component == str(SH.MinInclusiveConstraintComponent), r
        assert _number(values[int(r.focus.rsplit("/", 1)[1])][1]) < 0, r


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_decimal_family_literal_is_accepted_by_both_validators(decimal_properties, validate_both, data):
    value = st.tuples(st.sampled_from(sorted(decimal_properties)), decimal_family_literals())
    values = data.draw(st.lists(value, max_size=30))
    _assert_decimal_family_accepted(values, *validate_both(values))


def test_each_decimal_family_type_is_accepted_on_each_decimal_property(decimal_properties, validate_both):
    """Every (property, datatype) pair once, with a whole number in the type's range."""
    values = []
    for prop in sorted(decimal_properties):
        for datatype in DECIMAL_FAMILY:
            low, high = INTEGER_RANGES.get(datatype.removeprefix(XSD), (None, None))
            number = min(max(6, low if low is not None else 6), high if high is not None else 6)
            values.append((prop, f'"{number}"^^<{datatype}>'))
    fast, reference = validate_both(values)
    _assert_decimal_family_accepted(values, fast, reference)
    rejected = {int(r.focus.rsplit("/", 1)[1]) for r in fast}
    assert {values[i][1] for i in rejected} == {f'"-1"^^<{XSD}negativeInteger>'}  # below zero


# -- numbers pyoxigraph cannot hold (64-bit integers, 18 decimals below about 1.7e20) ------
BEYOND_THE_STORE = [
    f'"12.0000000000000000001"^^<{XSD}decimal>',
    f'"0.0000000000000000000001"^^<{XSD}decimal>',
    f'"-5.00000000000000000001"^^<{XSD}decimal>',
    f'"1000000000000000000000.0"^^<{XSD}decimal>',
    f'"-170141183460469231732"^^<{XSD}decimal>',
    f'"9223372036854775808"^^<{XSD}integer>',
    f'"-9223372036854775809"^^<{XSD}integer>',
    f'"18446744073709551615"^^<{XSD}unsignedLong>',
    f'"18446744073709551616"^^<{XSD}unsignedLong>',
    f'"100000000000000000000000"^^<{XSD}nonNegativeInteger>',
    f'"-100000000000000000000000"^^<{XSD}negativeInteger>',
]


def test_numbers_the_store_cannot_hold_are_validated_as_pyshacl_does(decimal_properties, validate_both):
    """A number past pyoxigraph's 64-bit integers or 18-decimal decimals fails every SPARQL
    comparison; its case is validated by pyshacl instead, so that both agree: valid when
    zero or more (on properties that ask for that), refused when below zero."""
    values = [(prop, obj) for prop in sorted(decimal_properties) for obj in BEYOND_THE_STORE]
    fast, reference = validate_both(values)
    assert sorted(map(_key, fast)) == sorted(map(_key, reference))
    refused = {int(r.focus.rsplit("/", 1)[1]) for r in fast}
    assert {values[i][1] for i in refused} == {
        f'"-5.00000000000000000001"^^<{XSD}decimal>',
        f'"-170141183460469231732"^^<{XSD}decimal>',
        f'"-9223372036854775809"^^<{XSD}integer>',
        f'"-100000000000000000000000"^^<{XSD}negativeInteger>',
    }


@st.composite
def long_numbers(draw) -> str:
    """A well-formed literal of the xsd:decimal family of 15 to 40 digits (around where the
    store's 64-bit integers and 18-decimal decimals end), up to 25 of them after the point,
    within its type's range."""
    datatype = str(draw(st.sampled_from(DECIMAL_FAMILY)))
    digits = draw(st.integers(15, 40))
    magnitude = draw(st.integers(1, 9)) * 10 ** (digits - 1) + draw(st.integers(0, 10 ** (digits - 1) - 1))
    number = Decimal(magnitude if draw(st.booleans()) else -magnitude)
    if datatype == f"{XSD}decimal":
        number = number.scaleb(-draw(st.integers(0, min(digits, 25))))
    else:
        low, high = INTEGER_RANGES.get(datatype.removeprefix(XSD), (None, None))
        number = max(number, Decimal(low)) if low is not None else number
        number = min(number, Decimal(high)) if high is not None else number
    return f'"{draw(st.sampled_from(_spellings(number, datatype)))}"^^<{datatype}>'


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_long_numbers_are_validated_by_both_validators_alike(decimal_properties, validate_both, data):
    values = data.draw(
        st.lists(st.tuples(st.sampled_from(sorted(decimal_properties)), long_numbers()), max_size=20)
    )
    fast, reference = validate_both(values)
    assert sorted(map(_key, fast)) == sorted(map(_key, reference))


NOT_DECIMALS = {
    "double": f'"6.0e0"^^<{XSD}double>',
    "float": f'"6"^^<{XSD}float>',
    "string": '"6"',
    "language string": '"6"@en',
    "ill-formed integer": f'"abc"^^<{XSD}integer>',
    "decimal written as integer": f'"1.5"^^<{XSD}integer>',
    "decimal written as int": f'"1.5"^^<{XSD}int>',
    "ill-formed decimal": f'"abc"^^<{XSD}decimal>',
    "empty decimal": f'""^^<{XSD}decimal>',
    "IRI": f"<{LBP.Fever}>",
}


def test_values_that_are_not_decimals_are_rejected_by_both_with_the_fields_message(
    decimal_properties, validate_both
):
    values = [(prop, obj) for prop in sorted(decimal_properties) for obj in NOT_DECIMALS.values()]
    fast, reference = validate_both(values)
    for name, results in (("fast", fast), ("reference", reference)):
        for i, (prop, obj) in enumerate(values):
            mine = [r for r in results if r.focus == f"{CASE_NS}numbers/{i}"]
            assert str(SH.OrConstraintComponent) in {r.component for r in mine}, (name, prop, obj)
            assert {r.message for r in mine} == {decimal_properties[prop]}, (name, prop, obj, mine)


# -- sh:or in the fast validator: what it evaluates, what it refuses ----------------------
SHAPES_PREFIXES = f"""@prefix sh: <{SH}> .
@prefix xsd: <{XSD}> .
@prefix ex: <http://example.org/> .
"""
# A property shape with three sh:or constraints whose members use every value constraint
# the fast validator evaluates inside sh:or, nested sh:or and a deactivated member included.
OR_SHAPES = (
    SHAPES_PREFIXES
    + """
ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property ex:P .
ex:P sh:path ex:p ; sh:message "p"@en ;
    sh:or ( [ sh:datatype xsd:string ; sh:in ( "a" "b" ) ]
            [ sh:nodeKind sh:IRI ]
            [ sh:datatype xsd:integer ; sh:minInclusive 1 ; sh:maxExclusive 10 ]
            [ sh:or ( [ sh:datatype xsd:boolean ]
                      [ sh:datatype xsd:decimal ; sh:minExclusive 0.5 ; sh:maxInclusive 2.5 ] ) ]
            [ sh:name "a date" ; sh:deactivated false ; sh:datatype xsd:date ] ) ;
    sh:or ( [ sh:nodeKind sh:Literal ] [ sh:in ( ex:ok ) ] ) ;
    sh:or ( [ sh:deactivated true ; sh:nodeKind sh:BlankNode ] ) .
"""
)
OR_VALUES = [
    '"a"', '"b"', '"c"', '"a"@en', "<http://example.org/ok>", "<http://example.org/other>",
    *(f'"{n}"^^<{XSD}integer>' for n in (0, 1, 5, 9, 10)),
    f'"abc"^^<{XSD}integer>', f'"true"^^<{XSD}boolean>', f'"maybe"^^<{XSD}boolean>',
    *(f'"{d}"^^<{XSD}decimal>' for d in ("0.5", "0.6", "2.5", "2.6")),
    f'"2026-01-01"^^<{XSD}date>', f'"2026-13"^^<{XSD}date>', f'"5"^^<{XSD}double>',
]  # fmt: skip


def test_fast_validator_evaluates_sh_or_of_value_constraints_as_pyshacl_does():
    shapes = Graph().parse(data=OR_SHAPES, format="turtle")
    lines = []
    for i, value in enumerate(OR_VALUES):
        lines += [f"<http://example.org/n{i}> <{RDF.type}> <http://example.org/C> .",
                  f"<http://example.org/n{i}> <http://example.org/p> {value} ."]  # fmt: skip
    quads = list(ox.parse("\n".join(lines) + "\n", format=ox.RdfFormat.N_TRIPLES))
    store = ox.Store()
    store.bulk_extend(quads)
    fast = FastValidator(shapes).validate(store)
    reference = validate_reference(to_rdflib(quads), shapes)
    assert sorted(map(_key, fast)) == sorted(map(_key, reference))
    rejected = {OR_VALUES[int(r.focus.rsplit("n", 1)[1])] for r in fast}
    accepted = set(OR_VALUES) - rejected
    assert {'"a"', "<http://example.org/ok>", f'"5"^^<{XSD}integer>', f'"0.6"^^<{XSD}decimal>'} <= accepted
    assert {'"c"', "<http://example.org/other>", f'"10"^^<{XSD}integer>', f'"0.5"^^<{XSD}decimal>'} <= (
        rejected
    )


REFUSED_OR_MEMBERS = {
    "sh:class": ("[ sh:class ex:C ]", "SHACL feature http://www.w3.org/ns/shacl#class inside sh:or"),
    "sh:node": ("[ sh:node ex:Other ]", "SHACL feature http://www.w3.org/ns/shacl#node inside sh:or"),
    "nested sh:property": (
        "[ sh:property [ sh:path ex:q ; sh:minCount 1 ] ]",
        "SHACL feature http://www.w3.org/ns/shacl#property inside sh:or",
    ),
    "a property shape": ("[ sh:path ex:q ; sh:minCount 1 ]", "inside sh:or is not implemented"),
    "sh:not": ("[ sh:not [ sh:datatype xsd:string ] ]", "SHACL feature http://www.w3.org/ns/shacl#not"),
    "sh:hasValue": ("[ sh:hasValue ex:a ]", "SHACL feature http://www.w3.org/ns/shacl#hasValue"),
    "sh:class in a nested sh:or": (
        "[ sh:or ( [ sh:class ex:C ] ) ]",
        "SHACL feature http://www.w3.org/ns/shacl#class inside sh:or",
    ),
    "a literal": ('"x"', "sh:or member x is not a shape"),
}


@pytest.mark.parametrize("where", ["property shape", "node shape"])
@pytest.mark.parametrize("member", sorted(REFUSED_OR_MEMBERS))
def test_fast_validator_refuses_sh_or_it_cannot_evaluate_exactly(member, where):
    text, message = REFUSED_OR_MEMBERS[member]
    or_list = f"sh:or ( [ sh:datatype xsd:string ] {text} )"
    body = f"sh:property [ sh:path ex:p ; {or_list} ]" if where == "property shape" else or_list
    shapes = Graph().parse(
        data=f"{SHAPES_PREFIXES}ex:S a sh:NodeShape ; sh:targetClass ex:C ; {body} .", format="turtle"
    )
    with pytest.raises(UnsupportedConstruct, match=re.escape(message)):
        FastValidator(shapes)


# -- whole numbers end to end: both engines ----------------------------------------------
# Each case is assessed twice, its numbers ({20}) written as integers (20) and as decimals
# (20.0), with the criteria it must meet.
WHOLE_NUMBER_CASES = {
    "cauda-equina-esr": (
        "lbp:ageInYears 50 ; lbp:esrMmPerHour {20} ; lbp:symptomDurationWeeks {1} ;"
        " lbp:hasFinding lbp:SaddleAnaesthesia , lbp:NewUrinaryDysfunction",
        {"SuspectedCaudaEquinaSyndrome"},
    ),
    "night-pain-esr-20": (
        "lbp:ageInYears 60 ; lbp:esrMmPerHour {20} ; lbp:hasFinding lbp:NightOrRestPain",
        {"MalignancyRiskFactorsWithAbnormalFirstLineTest"},
    ),
    "night-pain-esr-19": (
        "lbp:ageInYears 60 ; lbp:esrMmPerHour {19} ; lbp:hasFinding lbp:NightOrRestPain",
        set(),
    ),
    "radiculopathy-6-weeks": (
        "lbp:ageInYears 45 ; lbp:symptomDurationWeeks {8} ; lbp:conservativeTreatmentWeeks {6} ;"
        " lbp:surgicalCandidate true ; lbp:crpMgPerL {3} ;"
        " lbp:hasFinding lbp:PainRadiatingBelowKnee , lbp:MyotomalWeakness , lbp:DermatomalSensoryLoss",
        {"PersistentRadiculopathyInCandidate"},
    ),
    "radiculopathy-5-weeks": (
        "lbp:ageInYears 45 ; lbp:symptomDurationWeeks {5} ; lbp:conservativeTreatmentWeeks {5} ;"
        " lbp:surgicalCandidate true ; lbp:hasFinding lbp:PainRadiatingBelowKnee , lbp:MyotomalWeakness",
        set(),
    ),
}
FORMS = {"integer": r"\1", "decimal": r"\1.0"}


@pytest.fixture(scope="module")
def whole_number_cases(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("whole-numbers")
    for name, (body, _) in WHOLE_NUMBER_CASES.items():
        for form, spelling in FORMS.items():
            (folder / f"{name}-{form}.ttl").write_text(
                f"@prefix lbp: <{LBP}> .\n<https://example.org/case/{name}-{form}> a lbp:PatientCase ; "
                + re.sub(r"\{(\d+)\}", spelling, body)
                + " .\n",
                encoding="utf-8",
            )
    return folder


@pytest.mark.parametrize("engine", ["fast", pytest.param("hermit", marks=pytest.mark.hermit)])
def test_whole_numbers_assess_as_the_equal_decimals(kb, decimal_properties, whole_number_cases, engine):
    run = Assessor(kb, engine).assess([whole_number_cases])
    assert run.input_errors == [] and [r.errors for r in run.results if r.status != "assessed"] == []
    results = {r.case.rsplit("/", 1)[1]: r.to_dict() for r in run.results}
    assert len(results) == len(WHOLE_NUMBER_CASES) * len(FORMS)
    for name, (_, criteria) in WHOLE_NUMBER_CASES.items():
        integer, decimal = results[f"{name}-integer"], results[f"{name}-decimal"]
        assert observed(integer) == observed(decimal), name
        assert integer["criterionStates"] == decimal["criterionStates"], name
        assert criteria <= set(observed(integer)["criteria"]), (name, observed(integer))
        numbers = [
            (f["value"]["value"], g["value"]["value"])
            for f, g in zip(integer["facts"], decimal["facts"], strict=True)
            if f["property"]["iri"] in decimal_properties
        ]
        # The facts keep the datatype of the case (an integer stays an integer) and its value.
        assert numbers and all(isinstance(i, int) and i == d for i, d in numbers), numbers
    cauda_equina = results["cauda-equina-esr-integer"]["recommendation"]
    assert cauda_equina["urgency"]["iri"] == str(LBP.Emergent)
    assert kb.ontology.value(URIRef(cauda_equina["procedure"]["iri"]), LBP.modality) == LBP.MagneticResonance


# -- numbers a hair's breadth from a bound: HermiT sees them exactly ------------------------
FACET_BOUNDS = """
PREFIX owl: <http://www.w3.org/2002/07/owl#>
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
SELECT DISTINCT ?property ?bound WHERE {
  ?restriction owl:onProperty ?property ; owl:someValuesFrom ?range .
  ?range owl:withRestrictions/rdf:rest*/rdf:first ?facet .
  ?facet ?kind ?bound .
}
"""
NEAR_BOUND_BODY = (
    "lbp:ageInYears 60 ; lbp:symptomDurationWeeks 8 ; lbp:conservativeTreatmentWeeks 8 ;"
    " lbp:surgicalCandidate true ; lbp:esrMmPerHour 5 ; lbp:crpMgPerL 1 ;"
    " lbp:hasFinding lbp:NightOrRestPain , lbp:Fever , lbp:PainRadiatingBelowKnee , lbp:MyotomalWeakness"
)


@pytest.mark.hermit
def test_numbers_a_hairs_breadth_from_a_bound_classify_as_with_hermit(kb, decimal_properties, tmp_path):
    """owlready2 keeps an xsd:decimal as a float, so 5.99999999999999999999 weeks reached
    HermiT as 6.0 and met "at least 6 weeks" where the fast engine (exact, as OWL is) did
    not: each decimal property is set 1e-20 and 1e-16 below and above each bound the
    ontology's facets give it, and both engines meet the same criteria."""
    bounds = sorted({(str(p), Decimal(str(b))) for p, b in kb.ontology.query(FACET_BOUNDS)})
    bounds = [(p, b) for p, b in bounds if p in decimal_properties]
    assert {b for _, b in bounds} >= {Decimal("6.0"), Decimal("20.0")}
    name = {p: p.rsplit("/", 1)[1] for p, _ in bounds}
    for i, (prop, bound) in enumerate(bounds):
        for j, offset in enumerate(("-1e-20", "1e-20", "-1e-16", "1e-16")):
            value = format(bound + Decimal(offset), "f")
            body = re.sub(rf"lbp:{name[prop]} [0-9.]+", f"lbp:{name[prop]} {value}", NEAR_BOUND_BODY)
            case = f"<https://example.org/case/near-{i}-{j}> a lbp:PatientCase ; {body} .\n"
            (tmp_path / f"near-{i}-{j}.ttl").write_text(f"@prefix lbp: <{LBP}> .\n{case}", encoding="utf-8")
    runs = {engine: Assessor(kb, engine).assess([tmp_path]) for engine in ("fast", "hermit")}
    found = {
        engine: {r.case: (r.status, sorted(observed(r.to_dict())["criteria"])) for r in run.results}
        for engine, run in runs.items()
    }
    assert len(found["fast"]) == 4 * len(bounds)
    assert found["fast"] == found["hermit"]
