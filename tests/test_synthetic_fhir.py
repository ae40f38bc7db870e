"""Synthetic FHIR data and the Bulk Data writer: generated bundles are deterministic, read
without errors or warnings, cover every coded fact on both sides of every threshold; a
Bulk Data export of any patient bundles is well-formed (one type per file, relative
references that resolve, unique ids, a manifest listing every file) and holds the same
cases as the bundles, split or compressed."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from reasoner.fhir.bulk_write import BulkWriteError, write_bulk
from reasoner.fhir.mapping import FhirMapping
from reasoner.fhir.read import XSD, FhirCase, bundle_to_case
from reasoner.knowledge import LBP
from reasoner.synthetic_fhir import FhirCaseGenerator

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "fhir"
AS_OF = date(2026, 11, 23)  # the examples' reference date
PATIENTS = 500
RELATIVE = r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$"


@pytest.fixture(scope="module")
def mapping(kb) -> FhirMapping:
    return FhirMapping.for_knowledge_base(kb)


@pytest.fixture(scope="module")
def generator(kb, mapping) -> FhirCaseGenerator:
    return FhirCaseGenerator(kb, seed=0, as_of=AS_OF, mapping=mapping)


@pytest.fixture(scope="module")
def generated(generator, mapping) -> list[tuple[dict, FhirCase]]:
    """The first patients, each with the case the FHIR input reads from it."""
    bundles = [generator.bundle(i) for i in range(PATIENTS)]
    return [(b, bundle_to_case(b, f"p{i}", AS_OF, mapping)) for i, b in enumerate(bundles)]


def _examples() -> list[dict]:
    return [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(EXAMPLES.glob("*.json"))
        if not p.name.endswith(".expected.json")
    ]


def _facts(case: FhirCase) -> set[tuple[str, str]]:
    """(property, value) of every triple about the case, whatever the case is named."""
    return {(q.predicate.value, str(q.object)) for q in case.quads()}


# -- the generator ------------------------------------------------------------------------
def test_a_bundle_depends_only_on_seed_and_index(kb, mapping, generator):
    fresh = FhirCaseGenerator(kb, seed=0, as_of=AS_OF, mapping=mapping)
    assert fresh.bundle(7) == generator.bundle(7)  # without making bundles 0..6 first
    assert [generator.bundle(i) for i in range(3)] == [fresh.bundle(i) for i in range(3)]
    other = FhirCaseGenerator(kb, seed=1, as_of=AS_OF, mapping=mapping)
    assert other.bundle(7) != generator.bundle(7)
    assert other.bundle(7)["entry"][0]["resource"]["id"] == "p7"


def test_generated_bundles_read_without_errors_or_warnings(generated):
    warnings = [w for _, case in generated for w in case.warnings]
    assert warnings == []
    assert [c.case_iri.rsplit("/", 1)[-1] for _, c in generated[:3]] == ["p0", "p1", "p2"]


def test_ids_are_unique_and_references_relative(generated):
    for i, (bundle, _) in enumerate(generated[:100]):
        resources = [e["resource"] for e in bundle["entry"]]
        ids = [r["id"] for r in resources]
        assert len(set(ids)) == len(ids)
        assert all(rid == f"p{i}" or rid.startswith(f"p{i}-") for rid in ids)
        keys = {f"{r['resourceType']}/{r['id']}" for r in resources}
        assert _references(bundle) <= keys  # relative, and each resolves inside the bundle


def test_every_coded_finding_is_recorded_present_and_absent(generated, mapping):
    present = {o for _, c in generated for p, o in _facts(c) if p == str(LBP.hasFinding)}
    absent = {o for _, c in generated for p, o in _facts(c) if p == str(LBP.hasAbsentFinding)}
    coded = {f"<{t}>" for t in mapping.findings if mapping.read_codings(t)}
    assert coded == {f"<{t}>" for t in mapping.findings}  # every finding has a coding today
    assert coded <= present
    assert coded <= absent


def test_every_coded_property_takes_values_on_both_sides_of_each_threshold(generated, generator, mapping):
    values: dict[str, set[str]] = defaultdict(set)
    for _, case in generated:
        for q in case.quads():
            values[q.predicate.value].add(q.object.value)
    coded = [p for p in mapping.properties.values() if mapping.read_codings(p.iri)]
    assert coded
    for prop in coded:
        if prop.datatype == XSD + "boolean":
            assert values[prop.iri] == {"true", "false"}, prop.iri
    for prop in [*(p.iri for p in coded if p.datatype == XSD + "decimal"), str(LBP.ageInYears)]:
        numbers = {Decimal(v) for v in values[prop]}
        thresholds = generator.thresholds[prop]
        assert thresholds, prop
        for threshold in thresholds:
            assert min(numbers) < threshold < max(numbers), prop
            assert threshold in numbers, prop


def test_the_resource_mix(generated, generator, mapping):
    """Every resource type the input reads, every carrier of each kind of fact, and values
    in another unit than the property's."""
    resources = [e["resource"] for b, _ in generated for e in b["entry"]]
    kinds = Counter(r["resourceType"] for r in resources)
    assert set(kinds) == {
        "Patient",
        "Condition",
        "Observation",
        "Procedure",
        "MedicationStatement",
        "Medication",
        "Device",
    }
    assert kinds["Observation"] > kinds["Condition"] > kinds["MedicationStatement"] > kinds["Device"]
    has = Counter(key for r in resources for key in r if key.startswith(("value", "performed", "effective")))
    for element in ("valueBoolean", "valueQuantity", "valuePeriod", "valueDateTime", "performedPeriod"):
        assert has[element], element
    assert has["performedDateTime"] and has["effectivePeriod"]
    assert any("medicationReference" in r for r in resources)
    onset_codes = {c["code"] for n in generator.numbers for t in n.onset_terms for c in t.codings}
    assert any(
        r["resourceType"] == "Condition" and r["code"]["coding"][0]["code"] in onset_codes for r in resources
    )
    units = {p.unit for p in mapping.properties.values() if p.unit}
    written = {r["valueQuantity"]["code"] for r in resources if "valueQuantity" in r}
    assert written - units  # some values in a unit the ontology does not give


@pytest.mark.parametrize("as_of", [date(2028, 2, 29), date(2028, 2, 28), date(2027, 3, 1)])
def test_ages_are_exact_whatever_the_reference_date(kb, mapping, as_of):
    """Birthdays on and next to the reference date, leap days included, give the age the
    generator meant: the thresholds are hit exactly."""
    generator = FhirCaseGenerator(kb, seed=3, as_of=as_of, mapping=mapping)
    ages = Counter()
    for i in range(120):
        case = bundle_to_case(generator.bundle(i), f"p{i}", as_of, mapping)
        assert case.warnings == []
        ages.update(q.object.value for q in case.quads() if q.predicate.value == str(LBP.ageInYears))
    assert {"17", "18", "19", "49", "50", "51"} <= set(ages)


# -- the Bulk Data writer ---------------------------------------------------------------------
def _lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    text = gzip.decompress(data) if path.name.endswith(".gz") else data
    return [json.loads(line) for line in text.decode("utf-8").splitlines()]


def _export(folder: Path) -> dict[Path, list[dict]]:
    return {p: _lines(p) for p in sorted(folder.iterdir()) if p.name != "manifest.json"}


def _references(value: object) -> set[str]:
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    found = {value["reference"]} if isinstance(value.get("reference"), str) else set()
    return found.union(*(_references(v) for v in value.values()))


def _by_patient(resources: list[dict]) -> dict[str, dict]:
    """The export regrouped as one collection Bundle per patient (the Medications a
    patient's statements refer to included), as a Bulk Data reader would."""
    shared = {f"Medication/{r['id']}": r for r in resources if r["resourceType"] == "Medication"}
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in resources:
        if r["resourceType"] == "Patient":
            groups[r["id"]].insert(0, r)
        elif r["resourceType"] != "Medication":
            reference = (r.get("subject") or r.get("patient"))["reference"]
            groups[reference.removeprefix("Patient/")].append(r)
            groups[reference.removeprefix("Patient/")] += [shared[m] for m in _references(r) if m in shared]
    return {
        pid: {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in rs]}
        for pid, rs in groups.items()
    }


@pytest.fixture(scope="module")
def example_export(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("bulk") / "export"
    return folder, write_bulk(iter(_examples()), folder)


def test_an_export_of_the_examples_is_well_formed(example_export):
    folder, counts = example_export
    files = _export(folder)
    assert sorted(p.name for p in files) == sorted(f"{kind}.ndjson" for kind in counts)
    resources = []
    for path, lines in files.items():
        assert lines, path
        assert {r["resourceType"] for r in lines} == {path.name.split(".")[0]}
        resources += lines
    expected = Counter(e["resource"]["resourceType"] for b in _examples() for e in b["entry"])
    assert counts == dict(sorted(expected.items()))
    keys = [f"{r['resourceType']}/{r['id']}" for r in resources]
    assert len(set(keys)) == len(keys) == sum(counts.values())
    references = _references(resources)
    assert references and all(re.match(RELATIVE, ref) for ref in references)
    assert references <= set(keys)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["requiresAccessToken"] is False and manifest["error"] == []
    assert manifest["transactionTime"] and manifest["request"].endswith("$export")
    listed = {
        Path(url2pathname(urlparse(o["url"]).path)): (o["type"], o["count"]) for o in manifest["output"]
    }
    assert listed == {p.resolve(): (lines[0]["resourceType"], len(lines)) for p, lines in files.items()}


def test_an_export_holds_the_same_cases_as_the_bundles(example_export, mapping):
    folder, _ = example_export
    regrouped = _by_patient([r for lines in _export(folder).values() for r in lines])
    examples = _examples()
    assert len(regrouped) == len(examples)
    for bundle in examples:
        patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        original = bundle_to_case(bundle, bundle["id"], AS_OF, mapping)
        exported = bundle_to_case(regrouped[patient["id"]], patient["id"], AS_OF, mapping)
        assert _facts(exported) == _facts(original), bundle["id"]


def test_split_and_compressed_exports_hold_the_same_resources(example_export, tmp_path):
    folder, counts = example_export
    plain = sorted(json.dumps(r, sort_keys=True) for lines in _export(folder).values() for r in lines)
    assert write_bulk(_examples(), tmp_path / "split", files_per_type=3, compress=True) == counts
    files = _export(tmp_path / "split")
    assert all(p.name.endswith(".ndjson.gz") and p.name.split(".")[1] in ("001", "002", "003") for p in files)
    assert sorted(json.dumps(r, sort_keys=True) for lines in files.values() for r in lines) == plain
    # by patient: the n-th bundle's resources are all in file n mod 3 of their types
    slot = {b["entry"][0]["resource"]["id"]: i % 3 + 1 for i, b in enumerate(_examples())}
    for path, lines in files.items():
        for r in lines:
            owner = (
                r["id"] if r["resourceType"] == "Patient" else (r.get("subject") or r["patient"])["reference"]
            )
            assert int(path.name.split(".")[1]) == slot[owner.removeprefix("Patient/")]
    manifest = json.loads((tmp_path / "split" / "manifest.json").read_text(encoding="utf-8"))
    assert len(manifest["output"]) == len(files)


def test_generated_patients_exported_are_the_same_cases(generator, mapping, tmp_path):
    """Streamed from the generator, and read back as the same cases, named the same."""
    n = 60
    counts = write_bulk((generator.bundle(i) for i in range(n)), tmp_path / "gen", files_per_type=2)
    regrouped = _by_patient([r for lines in _export(tmp_path / "gen").values() for r in lines])
    assert counts["Patient"] == n == len(regrouped)
    for i in range(n):
        original = bundle_to_case(generator.bundle(i), f"p{i}", AS_OF, mapping)
        exported = bundle_to_case(regrouped[f"p{i}"], f"p{i}", AS_OF, mapping)
        assert (exported.case_iri, exported.ntriples, exported.warnings) == (
            original.case_iri,
            original.ntriples,
            [],
        )
        as_written = sorted(json.dumps(e["resource"], sort_keys=True) for e in generator.bundle(i)["entry"])
        assert (
            sorted(json.dumps(e["resource"], sort_keys=True) for e in regrouped[f"p{i}"]["entry"])
            == as_written
        )


def _patient_bundle(pid: str | None, *others: dict, full_url: str | None = None) -> dict:
    patient = {"resourceType": "Patient"} | ({"id": pid} if pid else {})
    entries = [{"resource": patient} | ({"fullUrl": full_url} if full_url else {})]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": entries + [{"resource": r} for r in others],
    }


def _condition(rid: str | None, subject: str) -> dict:
    return {"resourceType": "Condition", "subject": {"reference": subject}} | ({"id": rid} if rid else {})


def test_ids_that_would_clash_are_made_unique(tmp_path):
    bundles = [
        _patient_bundle("x", _condition("b-c1", "Patient/x")),
        _patient_bundle("x-b", _condition("c1", "Patient/x-b")),  # x-b-c1 either way
        _patient_bundle("x", _condition("b-c1", "Patient/x")),  # the same ids again
        _patient_bundle(None, _condition(None, "urn:uuid:1"), full_url="urn:uuid:1"),
        _patient_bundle("y", _condition("c" * 64, "Patient/y"), _condition("y-c", "Patient/y")),
    ]
    write_bulk(bundles, tmp_path / "out")
    files = _export(tmp_path / "out")
    patients = [r["id"] for r in files[tmp_path / "out" / "Patient.ndjson"]]
    conditions = files[tmp_path / "out" / "Condition.ndjson"]
    assert patients[0] == "x" and patients[4] == "y" and len(set(patients)) == 5
    assert len({r["id"] for r in conditions}) == len(conditions)
    assert [r["subject"]["reference"] for r in conditions] == [f"Patient/{p}" for p in [*patients, "y"]]
    assert all(len(r["id"]) <= 64 for r in conditions)


def test_a_bundle_that_is_not_one_patient_is_refused_and_nothing_is_left(tmp_path):
    two = _patient_bundle("a") | {"id": "twins"}
    two["entry"].append({"resource": {"resourceType": "Patient", "id": "b"}})
    with pytest.raises(BulkWriteError, match=r"bundle 2 \(twins\): 2 Patients"):
        write_bulk([_patient_bundle("ok"), two], tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    write_bulk([_patient_bundle("ok")], tmp_path / "full")
    with pytest.raises(BulkWriteError, match="already holds an export"):
        write_bulk([_patient_bundle("ok")], tmp_path / "full")


def test_the_benchmark_command_writes_an_export_and_bundles(tmp_path):
    script = ROOT / "benchmarks" / "bulk_export.py"
    options = ["--seed", "5", "--split", "2", "--gzip", "--bundles", str(tmp_path / "bundles")]
    done = subprocess.run(
        [sys.executable, str(script), "12", str(tmp_path / "out"), *options, "--as-of", "2026-12-01"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("12 patients")
    assert sorted(p.name for p in (tmp_path / "bundles").iterdir()) == sorted(f"p{i}.json" for i in range(12))
    files = _export(tmp_path / "out")
    assert all(p.name.endswith(".ndjson.gz") for p in files)
    patients = [r["id"] for p, lines in files.items() if p.name.startswith("Patient.") for r in lines]
    assert sorted(patients) == sorted(f"p{i}" for i in range(12))
    bundle = json.loads((tmp_path / "bundles" / "p3.json").read_text(encoding="utf-8"))
    exported = {json.dumps(r, sort_keys=True) for lines in files.values() for r in lines}
    assert {json.dumps(e["resource"], sort_keys=True) for e in bundle["entry"]} <= exported
