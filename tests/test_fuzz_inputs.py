"""A batch survives every input: a bounded run of the input fuzzer, property tests of the
readers on arbitrary bytes and of the FHIR reader on values of any JSON type anywhere, and
the server answering hostile bodies with 4xx and a message.

The fuzzer (``scripts/fuzz_inputs.py``) runs here on a few hundred inputs in-process with
the session's assessor: each mutated example file is assessed by the ``assess`` command in
a batch with three good files, and the batch must end with exit code 0 or 1, every good
case with its clean outcome, the mutated file assessed or named, and no library internals
in any message. ``python scripts/fuzz_inputs.py --count 3000`` is the full run (README,
Tests).
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import json
import sys

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sparql_server import ROOT, running

from reasoner.fhir.read import FhirInputError, bundle_to_case
from reasoner.pipeline import cases as case_input
from reasoner.pipeline import input_text
from reasoner.pipeline.input_text import MAX_NESTING, TextError, json_text

FUZZ_INPUTS = 200
SEED = 2026
LEAKS_ON_THE_WIRE = (
    "Traceback",
    "set_int_max_str_digits",
    "LoadDocumentCallback",
    "lbp-imaging-case-",  # the server's temporary folders
    "lbp-case-",
    "<class '",
)
BUNDLE = ROOT / "examples" / "fhir" / "01-cauda-equina-urinary-saddle.json"
AS_OF = dt.date(2026, 11, 23)


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_inputs", ROOT / "scripts" / "fuzz_inputs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


fuzz = _fuzz_module()


@pytest.fixture(scope="module")
def fuzzer(kb, assessor, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    runner = fuzz.InProcess(kb, assessor)
    goods = fuzz.corpus(folder)
    return fuzz.Fuzzer(goods, fuzz.clean_baseline(goods, runner), SEED, folder, runner)


def test_the_clean_run_assesses_every_good_file(fuzzer):
    assert {view[0] for view in fuzzer.baseline.values()} == {str(g) for g in fuzzer.goods}
    assert all(view[1] == "assessed" for view in fuzzer.baseline.values())


def test_a_bounded_fuzz_run_loses_nothing_and_shows_no_internals(fuzzer):
    verdicts = [fuzzer(i) for i in range(FUZZ_INPUTS)]
    failed = [v for v in verdicts if v.failed]
    assert not failed, [
        (v.index, v.source, v.mutations, v.exception, v.lost, v.unreported, v.leaks) for v in failed
    ]
    # the run exercised the readers' refusals, not only files that survived mutation intact
    assert sum(v.exit_code == 1 for v in verdicts) > FUZZ_INPUTS // 2
    assert {m for v in verdicts for m in v.mutations} == set(fuzz.MUTATIONS)


def test_a_fuzz_input_is_the_same_on_every_run(fuzzer):
    first = fuzzer.input(7)
    data = first[0].read_bytes()
    again = fuzzer.input(7)
    assert again[0].read_bytes() == data and again[1:] == first[1:]


# -- properties of the readers -------------------------------------------------------------
TRICKY = (
    "1E999999999",
    "-1E-999999999",
    "NaN",
    "0001-01-01",
    "2026-02-30",
    "javascript:alert(1)",
    "Condtion",
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(TRICKY),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.one_of(st.text(max_size=200), JSON.map(json.dumps), st.integers(0, 400).map(lambda n: "[" * n)))
def test_json_text_reads_or_says_why_it_cannot(text):
    try:
        json_text(text)
    except TextError as exc:
        assert not any(leak in str(exc) for leak in ("set_int_max_str_digits", "Traceback"))


def _pythons(text: str) -> object:
    """What Python's parser reads, with ``json_text``'s hooks (its refusals raise)."""
    return json.loads(
        text,
        parse_int=input_text._integer,
        parse_float=input_text._finite,
        parse_constant=input_text._constant,
    )


# Numbers at the edges of what orjson reads as Python does: past 64 bits, both signs, the
# largest and smallest floats, and texts orjson refuses (infinite, NaN, lone surrogates).
EDGE_NUMBERS = st.sampled_from(
    [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, -(2**64), 10**19, -(10**19) + 1]
) | st.integers(-(10**25), 10**25)
EDGE_TEXTS = st.sampled_from(
    [
        *("1e400", "-1e400", "1e-400", "NaN", "-Infinity", '"\\ud800"', '"\\udc00x"', "-0", "-0.0", "1E5"),
        *("1.7976931348623157e308", "1.7976931348623159e308", "4.9e-324", "2.2250738585072011e-308"),
    ]
)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(
    st.one_of(
        JSON.map(json.dumps),
        st.recursive(
            EDGE_NUMBERS | st.floats(allow_nan=False, allow_infinity=False),
            lambda inner: st.lists(inner, max_size=3),
            max_leaves=6,
        ).map(json.dumps),
        st.lists(EDGE_TEXTS, min_size=1, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=3).map(
            lambda d: "{" + ", ".join(f'"{k}": {v}' for k, v in [*d.items(), *d.items()]) + "}"
        ),
    )
)
def test_json_text_reads_what_pythons_parser_reads_and_alike(text):
    """orjson reads most texts: every text gives the values Python's parser gives (the same
    types, keys in the same order, the last of a repeated key), and a text Python's parser
    refuses is refused."""
    try:
        expected = repr(_pythons(text))
    except (ValueError, RecursionError):
        expected = None
    try:
        found = repr(json_text(text))
    except TextError:
        found = None
    assert found == expected


def _scan_depth(text: str) -> int:
    """The deepest nesting the token scan of ``_check_json_nesting`` reaches."""
    depth = deepest = 0
    for match in input_text._JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth = max(depth - 1, 0)
    return deepest


def _quick_check(text: str) -> bool:
    """``_nested_within_limit`` as ``json_text`` calls it."""
    return input_text._nested_within_limit(text, input_text._marks(text.encode("utf-8", "surrogatepass")))


NESTING_TEXT = st.lists(
    st.sampled_from(["[", "]", "{", "}", '"', "a", " ", "é", "\\", ":", ","])
    | st.integers(0, 130).map(lambda n: "[" * n)
    | st.integers(0, 130).map(lambda n: "]" * n),
    max_size=60,
).map("".join)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.one_of(NESTING_TEXT, JSON.map(json.dumps)))
def test_the_quick_nesting_check_passes_only_text_the_scan_passes(text):
    if _quick_check(text):
        assert _scan_depth(text) <= MAX_NESTING


@settings(max_examples=100, derandomize=True, deadline=None)
@given(JSON, st.integers(0, MAX_NESTING))
def test_the_quick_nesting_check_passes_valid_json_within_the_limit(value, depth):
    for _ in range(depth):
        value = [value]
    text = json.dumps(value)
    assert _quick_check(text) == (_scan_depth(text) <= MAX_NESTING)


def test_json_nesting_is_refused_past_the_limit_at_its_line_and_column():
    json_text("[" * MAX_NESTING + "]" * MAX_NESTING)
    with pytest.raises(TextError) as refused:
        json_text('{"a":\n  ' + "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1) + "}")
    assert (refused.value.line, refused.value.column) == (2, 2 + MAX_NESTING)


@pytest.fixture(scope="module")
def bundle() -> dict:
    return json.loads(BUNDLE.read_text(encoding="utf-8"))


def _places(node: object, at: tuple = ()) -> list[tuple]:
    found = [at]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _places(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _places(value, (*at, i))
    return found


@settings(max_examples=120, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_fhir_value_of_any_json_type_anywhere_is_read_or_refused_with_a_fhir_input_error(
    bundle, assessor, data
):
    """Any element of a valid bundle replaced by any JSON value: the bundle is read as a
    case, or refused naming the problem, never with another exception."""
    doc = copy.deepcopy(bundle)
    place = data.draw(st.sampled_from(_places(doc)[1:]))
    parent = doc
    for step in place[:-1]:
        parent = parent[step]
    parent[place[-1]] = data.draw(JSON)
    try:
        bundle_to_case(doc, "bundle.json", AS_OF, assessor.inputs.fhir)
    except FhirInputError as exc:
        assert "<class '" not in str(exc) and "Traceback" not in str(exc)


SUFFIXES = (".ttl", ".nt", ".jsonld", ".json")


@settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.sampled_from(SUFFIXES), st.binary(max_size=300))
def test_any_bytes_in_a_case_file_are_read_or_reported_naming_the_file(assessor, tmp_path, suffix, data):
    path = tmp_path / f"any{suffix}"
    path.write_bytes(data)
    loaded = case_input.load([path], assessor.inputs)
    named = {e.path for e in loaded.errors} | {w.path for w in loaded.notes} | set(loaded.source_of.values())
    assert str(path) in named or any(str(path) in w for w in loaded.warnings())


# -- the server --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running([], tmp_path_factory.mktemp("logs")) as server:
        yield server


def _fhir(change) -> bytes:
    doc = json.loads(BUNDLE.read_text(encoding="utf-8"))
    change(doc)
    return json.dumps(doc).encode()


HOSTILE_BODIES = {
    "JSON-LD nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "application/ld+json", "100 levels"),
    "a misspelt resourceType": (
        _fhir(lambda d: d["entry"][1]["resource"].update(resourceType="Condtion")),
        "application/fhir+json",
        "did you mean Condition?",
    ),
    "a resourceType that is a number": (
        _fhir(lambda d: d["entry"][1]["resource"].update(resourceType=5)),
        "application/fhir+json",
        "resourceType: must be a string",
    ),
    "an entry that is not an object": (
        _fhir(lambda d: d["entry"].__setitem__(1, 7)),
        "application/fhir+json",
        "Bundle.entry[1]: must be a JSON object",
    ),
    "entry that is not a list": (
        _fhir(lambda d: d.update(entry={"resource": {}})),
        "application/fhir+json",
        "Bundle.entry: must be a JSON array",
    ),
    "a number of 5,000 digits": (
        _fhir(lambda d: d["entry"][0]["resource"].update(multipleBirthInteger=123456789)).replace(
            b"123456789", b"9" * 5000
        ),
        "application/fhir+json",
        "5,000 digits",
    ),
    "invalid UTF-8": (b'<https://example.org/case/u> a <x:y> ; <x:p> "\xff" .', "text/turtle", "not UTF-8"),
    "UTF-16": ("<https://example.org/case/u> a <x:y> .".encode("utf-16"), "text/turtle", "UTF-16"),
    "a syntax error on the last line": (
        (ROOT / "examples/cases/05-known-cancer.ttl").read_bytes() + b"\n<https://example.org/x> a ;;\n",
        "text/turtle",
        "line ",
    ),
    "a remote @context": (
        b'{"@context": "https://example.org/ctx.jsonld", "@id": "https://example.org/case/r"}',
        "application/ld+json",
        "contexts are not fetched",
    ),
    "a javascript: case IRI": (
        b"<javascript:alert(1)> a <https://w3id.org/lbp-imaging/PatientCase> .",
        "text/turtle",
        "javascript:",
    ),
    "a relative case IRI": (
        b'{"@context": "https://w3id.org/lbp-imaging/context.jsonld", "id": "c1", "type": "PatientCase"}',
        "application/ld+json",
        "case <c1> is a relative IRI",
    ),
}


def test_a_relative_iri_in_a_posted_case_never_shows_the_servers_temporary_folder(server):
    body = (
        b'{"@context": "https://w3id.org/lbp-imaging/context.jsonld", "id": "https://example.org/case/rel", '
        b'"type": "PatientCase", "age": 40, "present": [{"@id": "not-a-finding"}]}'
    )
    response = httpx.post(
        server.url + "/cases", content=body, headers={"content-type": "application/ld+json"}, timeout=60
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["results"][0]["errors"]
    assert error["value"] == "<file:///not-a-finding>"
    assert not any(leak in response.text for leak in LEAKS_ON_THE_WIRE), response.text


@pytest.mark.parametrize("kind", list(HOSTILE_BODIES))
def test_a_hostile_case_body_is_a_4xx_with_a_message_and_the_server_goes_on(server, kind):
    body, media, said = HOSTILE_BODIES[kind]
    response = httpx.post(server.url + "/cases", content=body, headers={"content-type": media}, timeout=60)
    assert 400 <= response.status_code < 500, response.text
    assert said in response.text
    assert not any(leak in response.text for leak in LEAKS_ON_THE_WIRE), response.text
    good = (ROOT / "examples/cases/05-known-cancer.ttl").read_bytes()
    good = good.replace(b"/case/05-known-cancer", f"/case/after-{kind.replace(' ', '-')}".encode())
    again = httpx.post(
        server.url + "/cases", content=good, headers={"content-type": "text/turtle"}, timeout=60
    )
    assert again.status_code == 201, again.text


def _hook_request() -> dict:
    return json.loads((ROOT / "examples/cds-hooks/01-matching-order-radiculopathy.request.json").read_text())


def _hook(change) -> bytes:
    doc = _hook_request()
    change(doc)
    return json.dumps(doc).encode()


HOSTILE_HOOKS = {
    "nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "100 levels"),
    "a misspelt resourceType in a prefetch search": (
        _hook(lambda d: d["prefetch"]["conditions"]["entry"][0]["resource"].update(resourceType="Condtion")),
        "prefetch.conditions.entry[0].resource.resourceType",
    ),
    "a prefetch entry that is not an object": (
        _hook(lambda d: d["prefetch"]["conditions"]["entry"].__setitem__(0, 5)),
        "prefetch.conditions.entry[0]",
    ),
    "a contained resource of no type in a draft order": (
        _hook(
            lambda d: d["context"]["draftOrders"]["entry"][0]["resource"].update(
                contained=[{"resourceType": 7}]
            )
        ),
        "contained[0].resourceType",
    ),
    "an id that is a list": (
        _hook(lambda d: d["prefetch"]["conditions"]["entry"][0]["resource"].update(id=["x"])),
        "id: must be a string",
    ),
}


@pytest.mark.parametrize("kind", list(HOSTILE_HOOKS))
def test_a_hostile_hook_request_is_400_naming_the_field(server, kind):
    body, said = HOSTILE_HOOKS[kind]
    service = f"lbp-imaging-{_hook_request()['hook']}"
    response = httpx.post(
        f"{server.url}/cds-services/{service}",
        content=body,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 400, response.text
    assert said in response.text
    assert not any(leak in response.text for leak in LEAKS_ON_THE_WIRE), response.text


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[" * 100_000 + "]" * 100_000, "100 levels"),
        (
            '{"@context": "https://w3id.org/lbp-imaging/context.jsonld", "id": "c1", "type": "PatientCase"}',
            "c1",
        ),
        (
            '{"@context": "https://w3id.org/lbp-imaging/context.jsonld", "id": "https://example.org/case/f", '
            '"type": "PatientCase", "age": 40, "present": [{"@id": "not-a-finding"}]}',
            "not-a-finding",
        ),
    ],
    ids=["deep", "relative case IRI", "relative finding IRI"],
)
def test_the_case_form_reports_a_hostile_text_on_its_page(server, text, said):
    response = httpx.post(server.url + "/case", data={"format": "json-ld", "text": text}, timeout=60)
    assert response.status_code == 200 and said in response.text
    assert not any(leak in response.text for leak in LEAKS_ON_THE_WIRE), response.text


def test_a_file_of_the_fuzzer_is_kept_with_its_mutations(fuzzer):
    """What ``--keep`` and ``--index`` rely on: the input file is named by its index."""
    path, goods, names, source = fuzzer.input(3)
    assert path.name.startswith("input-3-") and path.suffix == source.suffix
    assert names and all(n in fuzz.MUTATIONS for n in names) and source not in goods


def test_the_fuzzer_reports_its_figures_and_fails_on_a_failure(fuzzer, capsys):
    good = fuzz.Verdict(1, "a.ttl", ["flip"], 10, exit_code=1)
    lost = fuzz.Verdict(2, "b.ttl", ["nest"], 10, exit_code=1, lost=["https://example.org/case/x"])
    assert fuzz.report([good], 1.0, None, fuzzer.folder) == 0
    assert fuzz.report([good, lost], 1.0, None, fuzzer.folder) == 1
    out = capsys.readouterr().out
    for figure in ("inputs", "exceptions (tracebacks)", "signals", "stalls", "lost good cases", "time"):
        assert figure in out
    assert "FAILED input 2 (b.ttl, nest)" in out and "lost https://example.org/case/x" in out


def test_paths_of_the_readers_do_not_leak_into_messages(tmp_path, assessor):
    """A relative case IRI is named as written, not by the folder it was resolved against."""
    path = tmp_path / "relative.ttl"
    path.write_text("<c1> a <https://w3id.org/lbp-imaging/PatientCase> .\n", encoding="utf-8")
    (error,) = case_input.load([path], assessor.inputs).errors
    assert "case <c1> is a relative IRI" in error.message and str(tmp_path) not in error.message
