"""Property tests of the engine (hypothesis): monotonic classification, red flags reported
as recorded, most-urgent selection, explanations built from the case's own facts. The
three-valued properties (honest "no imaging", questions) are in test_partial_information."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rdflib import RDF, RDFS, URIRef

from reasoner.knowledge import LBP
from reasoner.pipeline import cases as case_input
from reasoner.pipeline.definitions import DECIMAL_FAMILY

XSD = "http://www.w3.org/2001/XMLSchema#"
CASE = "https://example.org/property/case"
DECIMALS = {str(d) for d in DECIMAL_FAMILY}
# The case's decimal-valued facts: the keys of a drawn case, and their properties.
NUMBERS = {
    "weeks": LBP.conservativeTreatmentWeeks,
    "esr": LBP.esrMmPerHour,
    "symptomWeeks": LBP.symptomDurationWeeks,
    "crp": LBP.crpMgPerL,
}


@pytest.fixture(scope="module")
def vocabulary(kb, findings):
    onto = kb.ontology
    red_flags = {
        str(i)
        for cls in onto.transitive_subjects(RDFS.subClassOf, LBP.RedFlag)
        for i in onto.subjects(RDF.type, cls)
    }
    ranks = {str(u): int(onto.value(u, LBP.urgencyRank)) for u in onto.subjects(LBP.urgencyRank, None)}
    return findings, red_flags, ranks


def cases(findings: list[str]):
    weeks = st.one_of(
        st.none(),
        st.sampled_from(["0.0", "5.9", "6.0", "6.1", "12.0"]),
        st.decimals(0, 60, places=1, allow_nan=False).map(str),
    )
    esr = st.one_of(
        st.none(),
        st.sampled_from(["19.9", "20.0", "20.1"]),
        st.decimals(0, 120, places=1, allow_nan=False).map(str),
    )
    status = st.lists(
        st.sampled_from(["present", "absent", None]), min_size=len(findings), max_size=len(findings)
    )
    return st.fixed_dictionaries(
        {
            "age": st.integers(0, 120),
            "weeks": weeks,
            "esr": esr,
            "surgical": st.one_of(st.none(), st.booleans()),
            "intervention": st.one_of(st.none(), st.booleans()),
            "prior": st.one_of(st.none(), st.booleans()),
            "findings": status,
        }
    )


def _ntriples(case: dict, findings: list[str], iri: str = CASE, integers: bool = False) -> str:
    """The case in N-Triples; its whole numbers written as xsd:integer (6) with ``integers``,
    otherwise as xsd:decimal (6.0)."""
    s = f"<{iri}>"
    lines = [
        f"{s} <{RDF.type}> <{LBP.PatientCase}> .",
        f'{s} <{LBP.ageInYears}> "{case["age"]}"^^<{XSD}integer> .',
    ]
    for key, prop in NUMBERS.items():
        if case.get(key) is None:
            continue
        if integers and "." not in case[key]:
            lines.append(f'{s} <{prop}> "{int(case[key])}"^^<{XSD}integer> .')
        else:
            text = case[key] if "." in case[key] else case[key] + ".0"
            lines.append(f'{s} <{prop}> "{Decimal(text)}"^^<{XSD}decimal> .')
    for key, prop in (
        ("surgical", LBP.surgicalCandidate),
        ("intervention", LBP.interventionCandidate),
        ("prior", LBP.priorLumbarSurgery),
    ):
        if case[key] is not None:
            lines.append(f'{s} <{prop}> "{str(case[key]).lower()}"^^<{XSD}boolean> .')
    for finding, state in zip(findings, case["findings"], strict=True):
        if state == "present":
            lines.append(f"{s} <{LBP.hasFinding}> <{finding}> .")
        elif state == "absent":
            lines.append(f"{s} <{LBP.hasAbsentFinding}> <{finding}> .")
    return "\n".join(lines) + "\n"


def _assess(assessor, text: str) -> dict:
    import pyoxigraph as ox

    loaded = case_input.LoadedInput(quads=list(ox.parse(text, format=ox.RdfFormat.N_TRIPLES)))
    run = assessor.assess_loaded(loaded)
    assert len(run.results) == 1 and run.results[0].status == "assessed", run.results[0].errors
    result = run.results[0]
    return {**result.to_dict(), "criteria": result.criteria}  # criteria with their outcomes


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(data=st.data())
def test_classification_is_monotonic_in_present_findings(assessor, vocabulary, data):
    findings, _, _ = vocabulary
    case = data.draw(cases(findings))
    # A finding not recorded becomes present: new information. (Turning a finding recorded
    # absent into present retracts a fact, which a definition that reads hasAbsentFinding,
    # such as a first-line test recorded normal, may rightly stop meeting.)
    unknown = [f for f, s in zip(findings, case["findings"], strict=True) if s != "absent"]
    assume(unknown)
    extra = data.draw(st.sampled_from(unknown))
    before = {
        c["iri"]
        for c in _assess(assessor, _ntriples(case, findings))["criteria"]
        if c["kind"] != "closed-world"
    }
    more = dict(
        case,
        findings=["present" if f == extra else s for f, s in zip(findings, case["findings"], strict=True)],
    )
    after = {
        c["iri"]
        for c in _assess(assessor, _ntriples(more, findings))["criteria"]
        if c["kind"] != "closed-world"
    }
    assert before <= after


@SETTINGS
@given(data=st.data())
def test_red_flags_are_reported_as_recorded_and_no_imaging_has_none_present(assessor, vocabulary, data):
    findings, red_flags, _ = vocabulary
    case = data.draw(cases(findings))
    result = _assess(assessor, _ntriples(case, findings))
    recorded = {f for f, s in zip(findings, case["findings"], strict=True) if s is not None}
    present = {f for f, s in zip(findings, case["findings"], strict=True) if s == "present"} & red_flags
    assert {f["iri"] for f in result["redFlags"]["unassessed"]} == red_flags - recorded
    assert {f["iri"] for f in result["redFlags"]["present"]} == present
    if result["outcome"]["iri"].endswith("OutcomeNoImaging"):
        assert not present and result["recommendation"]["procedure"] is None


@SETTINGS
@given(data=st.data())
def test_the_recommendation_has_the_highest_urgency_of_the_criteria_met(assessor, vocabulary, kb, data):
    findings, _, ranks = vocabulary
    result = _assess(assessor, _ntriples(data.draw(cases(findings)), findings))
    urgency = result["recommendation"]["urgency"]
    if result["outcome"]["iri"] == str(LBP.OutcomeOutOfScope):
        assert urgency is None and result["recommendation"]["procedure"] is None
        return
    # A criterion whose first-line pathway the case has completed orders nothing again.
    completed = {
        str(c)
        for rule in result["criteria"]
        for c in kb.ontology.objects(URIRef(rule["iri"]), LBP.completesPathwayOf)
    }
    met = [
        ranks[c["urgency"]["iri"]]
        for c in result["criteria"]
        if c["kind"] == "criterion" and c["urgency"] and c["iri"] not in completed
    ]
    if met:
        assert urgency is not None and ranks[urgency["iri"]] == max(met)
        assert result["outcome"]["iri"].endswith("OutcomeImagingIndicated")
    else:
        assert urgency is None and result["recommendation"]["procedure"] is None


@SETTINGS
@given(data=st.data())
def test_explanations_cite_only_the_cases_own_facts_and_mri_is_replaced_when_contraindicated(
    assessor, vocabulary, kb, data
):
    findings, _, _ = vocabulary
    case = data.draw(cases(findings))
    result = _assess(assessor, _ntriples(case, findings))
    own = {(f["property"]["iri"], f["value"].get("iri", f["value"].get("value"))) for f in result["facts"]}
    for criterion in result["criteria"]:
        for fact in criterion["facts"]:
            assert (fact["property"]["iri"], fact["value"].get("iri", fact["value"].get("value"))) in own
    procedure = result["recommendation"]["procedure"]
    contraindicated = any(c["iri"] == str(LBP.MRIContraindicatedCase) for c in result["criteria"])
    if contraindicated and procedure:
        assert kb.ontology.value(URIRef(procedure["iri"]), LBP.modality) != LBP.MagneticResonance


def _as_numbers(value):
    """The result with every number among the facts as its value, whatever its datatype."""
    if isinstance(value, dict):
        if set(value) == {"value", "datatype"} and value["datatype"] in DECIMALS:
            return Decimal(str(value["value"]))
        return {k: _as_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_numbers(v) for v in value]
    return value


@SETTINGS
@given(data=st.data())
def test_whole_numbers_written_as_integers_assess_as_the_equal_decimals(assessor, vocabulary, data):
    """In Turtle ``lbp:esrMmPerHour 20`` is an xsd:integer: valid, and the same value as 20.0."""
    findings, _, _ = vocabulary
    whole = st.one_of(
        st.none(), st.sampled_from(["5", "6", "7", "19", "20", "21"]), st.integers(0, 150).map(str)
    )
    case = data.draw(cases(findings)) | {key: data.draw(whole) for key in NUMBERS}
    as_integers = _assess(assessor, _ntriples(case, findings, integers=True))
    as_decimals = _assess(assessor, _ntriples(case, findings))
    assert _as_numbers(as_integers) == _as_numbers(as_decimals)
    written = {f["property"]["iri"]: f["value"] for f in as_integers["facts"] if "datatype" in f["value"]}
    for key, prop in NUMBERS.items():
        if case[key] is not None:
            assert written[str(prop)] == {"value": int(case[key]), "datatype": f"{XSD}integer"}
