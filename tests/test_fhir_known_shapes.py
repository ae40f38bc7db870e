"""FHIR validation by known shapes and reading through views (``reasoner.fhir.known_shapes``)
against the reference, fhir.resources' models: the fast path accepts nothing fhir.resources
refuses (the examples, generated bundles and derandomised mutations of them), its views hold
the models' values element by element, and every bundle reads as the same case, or fails
with the same message, both ways."""

from __future__ import annotations

import copy
import json
import random
from datetime import date
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_places import places
from pydantic import BaseModel

from reasoner.fhir import known_shapes
from reasoner.fhir.mapping import FhirMapping
from reasoner.fhir.read import bundle_to_case
from reasoner.fhir.validation import FhirInputError
from reasoner.synthetic_fhir import FhirCaseGenerator

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 12, 1)
EXAMPLES = sorted(
    p for p in (ROOT / "examples" / "fhir").glob("*.json") if not p.name.endswith(".expected.json")
)
REPLACEMENTS = [
    None, "", " ", "x", "final", "amended", "2026-13-45", "2026-02", "2026-02-03T04:05:06Z",
    "http://loinc.org", "Patient/other", 0, -1, 1.5, 2**40, True, False, [], {}, {"x": 1},
    [1], [{}], ["x"], "urn:x", "male", "unknown",
]  # fmt: skip


def reference(doc: dict) -> Bundle | None:
    try:
        return Bundle.model_validate(doc)
    except Exception:
        return None


@pytest.fixture(scope="module")
def mapping(kb) -> FhirMapping:
    return FhirMapping.for_knowledge_base(kb)


@pytest.fixture(scope="module")
def bundles(kb, mapping) -> list[dict]:
    generator = FhirCaseGenerator(kb, seed=11, as_of=AS_OF, mapping=mapping)
    examples = [json.loads(p.read_text(encoding="utf-8")) for p in EXAMPLES]
    return [d for d in examples if d.get("resourceType") == "Bundle"] + [
        generator.bundle(i) for i in range(60)
    ]


@pytest.fixture(scope="module")
def learnt(bundles) -> known_shapes.KnownShapes:
    """Shapes learnt from every valid bundle, as a run that read them would."""
    shapes = known_shapes.KnownShapes()
    for doc in bundles:
        if reference(doc) is not None:
            shapes.learn(doc, Bundle)
    return shapes


def same_values(model: object, view: object, where: str) -> None:
    """Every element of the model, read from the view: equal values of the same type,
    objects compared element by element."""
    for name in type(model).model_fields:
        expected, found = getattr(model, name), getattr(view, name)
        place = f"{where}.{name}"
        if isinstance(expected, list) and expected and isinstance(expected[0], BaseModel):
            assert isinstance(found, list) and len(found) == len(expected), place
            for i, (m, v) in enumerate(zip(expected, found, strict=True)):
                same_values(m, v, f"{place}[{i}]")
        elif isinstance(expected, BaseModel):
            assert isinstance(found, known_shapes.View), place
            assert found.get_resource_type() == expected.get_resource_type(), place
            same_values(expected, found, place)
        else:
            assert found == expected and type(found) is type(expected), (place, expected, found)


def read(doc: dict, mapping: FhirMapping) -> tuple:
    try:
        case = bundle_to_case(copy.deepcopy(doc), "bundle.json", AS_OF, mapping)
    except FhirInputError as exc:
        return ("error", str(exc))
    return (case.case_iri, case.ntriples, case.warnings, case.patient_full_url, case.patient)


def read_both(doc: dict, mapping: FhirMapping, shapes: known_shapes.KnownShapes, monkeypatch) -> tuple:
    """The case read with the shapes given, and by the reference alone."""
    with monkeypatch.context() as m:
        m.setattr(known_shapes, "SHAPES", shapes)
        m.setattr(known_shapes, "learn_bundle", lambda doc: None)  # keep the shapes as given
        fast = read(doc, mapping)
    with monkeypatch.context() as m:
        m.setattr(known_shapes, "bundle_view", lambda doc: None)
        m.setattr(known_shapes, "learn_bundle", lambda doc: None)
        slow = read(doc, mapping)
    return fast, slow


def test_known_shapes_accept_every_valid_bundle_with_the_models_values(bundles, learnt) -> None:
    assert len(bundles) > 70
    for doc in bundles:
        model = reference(doc)
        assert model is not None
        view = learnt.view(doc, Bundle)
        assert view is not None
        same_values(model, view, "Bundle")


def test_every_bundle_reads_as_the_same_case_both_ways(bundles, learnt, mapping, monkeypatch) -> None:
    for doc in bundles:
        fast, slow = read_both(doc, mapping, learnt, monkeypatch)
        assert fast == slow


def test_a_new_shape_is_validated_by_the_reference_and_then_known(bundles) -> None:
    shapes = known_shapes.KnownShapes()
    doc = bundles[-1]
    assert shapes.view(doc, Bundle) is None
    shapes.learn(doc, Bundle)
    assert shapes.view(doc, Bundle) is not None
    changed = copy.deepcopy(doc)
    changed["entry"][0]["resource"]["unknownElement"] = "x"  # a shape never accepted
    assert shapes.view(changed, Bundle) is None


def test_nesting_deeper_than_the_walk_goes_is_left_to_the_reference(bundles) -> None:
    """An extension nested in an extension is a shape fhir.resources accepts; nested
    thousands deep the walk hands it on (to the reference, which refuses it) instead of
    failing."""
    shapes = known_shapes.KnownShapes()
    doc = copy.deepcopy(bundles[-1])
    resource = doc["entry"][-1]["resource"]
    resource["extension"] = [{"url": "urn:x:a", "extension": [{"url": "urn:x:b", "valueString": "x"}]}]
    shapes.learn(doc, Bundle)
    assert shapes.view(doc, Bundle) is not None
    deep: dict = {"url": "urn:x:b", "valueString": "x"}
    for _ in range(3000):
        deep = {"url": "urn:x:a", "extension": [deep]}
    resource["extension"] = [deep]
    assert shapes.view(doc, Bundle) is None
    shapes.learn(doc, Bundle)  # no error either


@pytest.mark.parametrize("resource", [{}, {"resourceType": 7}, {"resourceType": "NoSuchType"}])
def test_a_resource_of_no_known_type_is_left_to_the_reference(
    bundles, mapping, monkeypatch, resource
) -> None:
    """An entry's resource that names no type the walk can dispatch (none, not a string, not
    a resource type) has no view and teaches no shape, even in a bundle the reference is
    given to learn (the fuzzer found the walk failing on an empty resource), and the bundle
    reads as the reference reads it."""
    shapes = known_shapes.KnownShapes()
    doc = copy.deepcopy(bundles[-1])
    doc["entry"].insert(1, {"fullUrl": "urn:x:entry", "resource": resource})
    shapes.learn(doc, Bundle)
    assert shapes.view(doc, Bundle) is None
    fast, slow = read_both(doc, mapping, shapes, monkeypatch)
    assert fast == slow


def test_learning_stops_at_the_bound(bundles, monkeypatch) -> None:
    monkeypatch.setattr(known_shapes, "MAX_SHAPES", 5)
    shapes = known_shapes.KnownShapes()
    for doc in bundles[:10]:
        shapes.learn(doc, Bundle)
    assert len(shapes.known) == 5


def mutate(doc: dict, pick) -> dict:
    """``doc`` (a copy) changed one to three times anywhere: a value replaced, deleted or
    added, or a number changed; ``pick(options)`` chooses."""
    doc = copy.deepcopy(doc)
    for _ in range(pick([1, 2, 3])):
        container_path, key = pick(places(doc))
        container = doc
        for step in container_path:
            container = container[step]
        how = pick(["replace", "delete", "add", "number"])
        if how == "replace":
            container[key] = copy.deepcopy(pick(REPLACEMENTS))
        elif how == "delete":
            del container[key]
        elif how == "number":  # the same JSON kind, another value
            old = container[key]
            if type(old) in (int, float):
                container[key] = pick([old + 1, -old, float(old) / 3, -0.0, 0.0, 1e300])
        elif isinstance(container, dict):
            extra = pick(["extra", "id", "text", "_status", "valueString", "resourceType"])
            container[extra] = copy.deepcopy(pick([*REPLACEMENTS, "Patient", "Coding"]))
        else:
            container.append(copy.deepcopy(pick(REPLACEMENTS)))
    return doc


@pytest.fixture(scope="module")
def learnt_wider(bundles, learnt) -> known_shapes.KnownShapes:
    """Also the shapes of 300 seeded mutations that fhir.resources accepts: shapes other
    than the generator's, for other values to be checked against."""
    shapes = known_shapes.KnownShapes()
    shapes.known = dict(learnt.known)
    rng = random.Random(16)
    for _ in range(300):
        doc = mutate(rng.choice(bundles), rng.choice)
        if reference(doc) is not None:
            shapes.learn(doc, Bundle)
    assert len(shapes.known) > len(learnt.known)
    return shapes


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_bundles_are_accepted_only_when_the_reference_accepts_and_read_alike(
    bundles, learnt_wider, mapping, monkeypatch, data
) -> None:
    doc = mutate(
        bundles[data.draw(st.integers(0, len(bundles) - 1))], lambda o: data.draw(st.sampled_from(o))
    )
    learnt = learnt_wider
    view = learnt.view(doc, Bundle)
    if view is not None:
        model = reference(doc)
        assert model is not None, "the known shapes accepted a bundle fhir.resources refuses"
        same_values(model, view, "Bundle")
    fast, slow = read_both(doc, mapping, learnt, monkeypatch)
    assert fast == slow


def test_a_wrong_answer_type_is_shown_alike_both_ways(bundles, mapping, monkeypatch) -> None:
    """A questionnaire answer of a data type the item does not take is shown in the error
    as its JSON, read through a view as through the model."""
    response_bundles = [
        d
        for d in bundles
        if any(e["resource"]["resourceType"] == "QuestionnaireResponse" for e in d["entry"])
    ]
    assert response_bundles
    doc = copy.deepcopy(response_bundles[0])
    response = next(
        e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"
    )
    first = response["item"][0]["item"][0]
    first["answer"] = [{"valueQuantity": {"value": 3, "unit": "wk"}}]
    shapes = known_shapes.KnownShapes()
    assert reference(doc) is not None
    shapes.learn(doc, Bundle)
    assert shapes.view(doc, Bundle) is not None
    fast, slow = read_both(doc, mapping, shapes, monkeypatch)
    assert fast == slow and fast[0] == "error", (fast, slow)
    assert "not valueQuantity" in fast[1] and "View" not in fast[1], fast


def test_responses_without_a_patient_read_alike_both_ways(bundles, mapping, monkeypatch) -> None:
    """A bundle of questionnaire responses alone (their subject becomes the Patient, a
    reference the reader sets on the response) and a response given bare read alike."""
    for doc in bundles:
        responses = [e for e in doc["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"]
        if not responses:
            continue
        alone = {**doc, "entry": copy.deepcopy(responses)}
        bare = copy.deepcopy(responses[0]["resource"])
        without_subject = copy.deepcopy(alone)
        del without_subject["entry"][0]["resource"]["subject"]
        for case in (alone, without_subject):
            shapes = known_shapes.KnownShapes()
            shapes.learn(case, Bundle)
            assert shapes.view(case, Bundle) is not None
            fast, slow = read_both(case, mapping, shapes, monkeypatch)
            assert fast == slow and fast[0] != "error", fast
        shapes = known_shapes.KnownShapes()
        shapes.learn({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": bare}]}, Bundle)
        fast, slow = read_both(bare, mapping, shapes, monkeypatch)
        assert fast == slow and fast[0] != "error", fast
