"""Fuzz the case readers: a batch must survive every input.

    .venv/bin/python scripts/fuzz_inputs.py --count 3000 --seed 13
    .venv/bin/python scripts/fuzz_inputs.py --index 1234 --seed 13 --keep /tmp/fuzz   # one input again

A seeded mutator changes the bundled example case files (Turtle and JSON-LD of
``examples/cases``, N-Triples made from the Turtle ones, FHIR Bundles of ``examples/fhir``):
byte flips, insertions, deletions, truncation, duplicated spans, shuffled lines, deep nesting,
literals over 16 MiB, numbers of 5,000 digits or out of range, JSON values swapped for
values of another type (``resourceType`` and ``entry`` among them), byte-order marks, other
encodings (UTF-16, UTF-32, Latin-1), empty and binary files, case IRIs of other schemes.
Input ``i`` of seed ``s`` is the same on every run (its own ``random.Random``), whatever
the number of workers.

Each mutated file is assessed in a batch with three known-good example files by the
command line itself, ``lbp-imaging assess --format json --as-of 2026-11-23 --workers 1
--quiet FILES`` (the typer application, in-process: each fuzzing process loads the
knowledge base once, instead of once per batch, which is what makes thousands of batches
take minutes; ``--subprocess`` runs the installed command per batch instead, to compare),
in ``--workers`` processes that are replaced if one dies. Each batch is checked:

- the command ends with exit code 0 or 1: no Python exception, no exit code 2 or more, no
  signal, no stall (``--timeout`` seconds);
- its output is the JSON document, and every case of every good file is in it with the
  outcome, procedure and urgency of a clean run of the good files;
- the mutated file is assessed or named in an input error or warning;
- nothing a user reads shows a library's internals (a traceback, Python's integer-digit
  hint, the JSON-LD loader's message, a parser's buffer size, pydantic's links).

It prints the figures (inputs, batches with an exception, signals, stalls, lost good
cases, unreported inputs, leaked internals, time) and exits 1 when any is not zero.
``--keep DIR`` keeps each failing input there to run again.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import multiprocessing.connection
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
AS_OF = "2026-11-23"
GOOD_PER_BATCH = 3
HUGE = 16 * 1024 * 1024 + 4096  # just over pyoxigraph's largest term
LEAKS = (
    "Traceback",
    "set_int_max_str_digits",
    "LoadDocumentCallback",
    "maximal size",
    "RecursionError",
    "errors.pydantic.dev",
    "pydantic_core",
    "fhir_core",
    "Parser error at",
    "codec can't decode",
    "<class '",
)
"""Text that shows a library's internals or a Python error: no message may contain it."""


# -- the corpus ---------------------------------------------------------------------------
def _ntriples_copy(turtle: Path, folder: Path) -> Path:
    """An N-Triples version of a Turtle example, its case IRIs moved under ``nt/`` so that
    it can share a batch with the Turtle file."""
    import pyoxigraph as ox

    def moved(term):
        if isinstance(term, ox.NamedNode) and term.value.startswith("https://example.org/case/"):
            return ox.NamedNode(term.value.replace("/case/", "/case/nt/", 1))
        return term

    quads = [
        ox.Quad(moved(q.subject), q.predicate, moved(q.object))
        for q in ox.parse(path=turtle, format=ox.RdfFormat.TURTLE)
    ]
    path = folder / f"{turtle.stem}.nt"
    path.write_bytes(ox.serialize(quads, format=ox.RdfFormat.N_TRIPLES))
    return path


def corpus(folder: Path) -> list[Path]:
    """The good files: the example cases and FHIR Bundles, and N-Triples copies of the
    Turtle examples (written to ``folder``)."""
    cases = sorted(
        p
        for p in (EXAMPLES / "cases").iterdir()
        if p.suffix in (".ttl", ".jsonld") and ".expected" not in p.name
    )
    bundles = sorted(p for p in (EXAMPLES / "fhir").glob("*.json") if ".expected" not in p.name)
    copies = [_ntriples_copy(p, folder) for p in cases if p.suffix == ".ttl"]
    return cases + bundles + copies


# -- mutations ----------------------------------------------------------------------------
Mutation = Callable[[bytes, str, random.Random], bytes]
SYNTAX = b'<>"{}[](),;.:@#\\^_ \n\t\x00\xff\xc3'


def _span(data: bytes, rng: random.Random, most: int = 200) -> tuple[int, int]:
    start = rng.randrange(len(data) + 1)
    return start, min(len(data), start + rng.randint(1, most))


def flip(data: bytes, suffix: str, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def insert(data: bytes, suffix: str, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    junk = bytes(rng.choice(SYNTAX) for _ in range(rng.randint(1, 6)))
    return data[:at] + junk + data[at:]


def delete(data: bytes, suffix: str, rng: random.Random) -> bytes:
    start, end = _span(data, rng, 60)
    return data[:start] + data[end:]


def truncate(data: bytes, suffix: str, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def duplicate(data: bytes, suffix: str, rng: random.Random) -> bytes:
    start, end = _span(data, rng)
    at = rng.randrange(len(data) + 1)
    return data[:at] + data[start:end] * rng.choice((1, 2, 50)) + data[at:]


def shuffle_lines(data: bytes, suffix: str, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    rng.shuffle(lines)
    return b"\n".join(lines)


def nest(data: bytes, suffix: str, rng: random.Random) -> bytes:
    """Nesting around the edge of what is read (100) and far past what the parsers survive."""
    depth = rng.choice((99, 101, 1_000, 20_000, 100_000))
    if suffix in (".json", ".jsonld"):
        inner = rng.choice((b"[" * depth + b"1" + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth))
        at = data.find(b":", rng.randrange(len(data) + 1)) + 1
        end = data.find(b",", at)
        if at <= 0 or end < 0:
            return data + inner
        return data[:at] + inner + data[end:]
    case = b"<https://example.org/case/nested>"
    if rng.random() < 0.5:
        value = b"<< " * depth + case + b" <https://example.org/p> 1" + b" >>" * depth
        triple = value + b" <https://example.org/p> 1 .\n"
    else:
        value = b"[ <https://example.org/p> " * depth + b"1" + b" ]" * depth
        triple = case + b" <https://example.org/p> " + value + b" .\n"
    return data + b"\n" + triple


def huge(data: bytes, suffix: str, rng: random.Random) -> bytes:
    """A literal just over 16 MiB: in place of a string of a JSON file, or as a new
    statement of an RDF file."""
    filler = rng.choice((b"x", b"9", b"\xc3\xa9"))
    body = filler * (HUGE // len(filler))
    if suffix in (".json", ".jsonld"):
        quotes = [i for i in range(len(data)) if data[i : i + 1] == b'"']
        if len(quotes) >= 2:
            at = rng.randrange(len(quotes) // 2) * 2
            start, end = quotes[at] + 1, quotes[at + 1]
            return data[:start] + body + data[end:]
        return data + body
    line = b'<https://example.org/case/huge> <https://w3id.org/lbp-imaging/ageInYears> "' + body + b'" .\n'
    return data + b"\n" + line


def number(data: bytes, suffix: str, rng: random.Random) -> bytes:
    digits = [i for i in range(len(data)) if data[i : i + 1].isdigit()]
    if not digits:
        return data
    at = rng.choice(digits)
    end = at
    while end < len(data) and data[end : end + 1].isdigit():
        end += 1
    big = rng.choice(
        (b"9" * 5000, b"1e999", b"-1e999", b"1e-999", b"NaN", b"-0", b"0.0000000001", b"1" * 4301)
    )
    return data[:at] + big + data[end:]


def bom(data: bytes, suffix: str, rng: random.Random) -> bytes:
    mark = rng.choice((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00", b"\xef\xbb\xbf" * 2))
    return mark + data


def encode(data: bytes, suffix: str, rng: random.Random) -> bytes:
    text = data.decode("utf-8", errors="replace").replace("a", "\u00e4", 1)
    encoding = rng.choice(("utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"))
    return text.encode(encoding, errors="replace")


def blank(data: bytes, suffix: str, rng: random.Random) -> bytes:
    return rng.choice(
        (b"", b" \n\t \n", b"\xef\xbb\xbf", b"\n" * 1000, b"# only a comment\n", b"{}", b"[]", b"null")
    )


def binary(data: bytes, suffix: str, rng: random.Random) -> bytes:
    noise = rng.randbytes(rng.choice((1, 64, 4096)))
    return rng.choice((noise, data + noise, noise + data))


def case_iri(data: bytes, suffix: str, rng: random.Random) -> bytes:
    scheme = rng.choice(
        (b"javascript:alert(1)//", b"data:text/html,", b"file:///", b"", b"urn:x:", b"ftp://h/")
    )
    return data.replace(b"https://example.org/", scheme, rng.choice((1, -1)))


TYPE_SWAPS: tuple[object, ...] = (
    None,
    True,
    0,
    -1,
    1.5,
    10**30,
    "",
    "text",
    "9" * 50,
    [],
    {},
    [{}],
    [None],
    {"resourceType": "Condtion"},
    {"resourceType": 7},
    {"resourceType": "Patient"},
    "Bundle",
    1e308,
    "1E999999999",
    "-1E-999999999",
    "NaN",
    "0001-01-01",
    "9999-12-31T23:59:59Z",
    "2026-02-30",
    "javascript:alert(1)",
    "urn:uuid:00000000-0000-0000-0000-000000000000",
)


def _paths(node: object, at: tuple = ()) -> Iterator[tuple]:
    yield at
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*at, i))


def type_swap(data: bytes, suffix: str, rng: random.Random) -> bytes:
    """A JSON value anywhere (the keys the FHIR reader leans on more often) replaced by a
    value of another type."""
    try:
        doc = json.loads(data)
        paths = list(_paths(doc))
    except (ValueError, RecursionError):  # not JSON (any more), or nested too deep to walk
        return flip(data, suffix, rng)
    favoured = [
        p for p in paths if p and p[-1] in ("resourceType", "entry", "resource", "fullUrl", "id", "reference")
    ]
    path = rng.choice(favoured) if favoured and rng.random() < 0.5 else rng.choice(paths)
    replacement = json.loads(json.dumps(rng.choice(TYPE_SWAPS)))
    if not path:
        return json.dumps(replacement).encode()
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = replacement
    return json.dumps(doc).encode()


MUTATIONS: dict[str, tuple[Mutation, int]] = {
    # name: (mutation, weight)
    "flip": (flip, 6),
    "insert": (insert, 5),
    "delete": (delete, 4),
    "truncate": (truncate, 4),
    "duplicate": (duplicate, 4),
    "shuffle": (shuffle_lines, 2),
    "nest": (nest, 3),
    "huge": (huge, 1),
    "number": (number, 3),
    "bom": (bom, 2),
    "encode": (encode, 2),
    "blank": (blank, 1),
    "binary": (binary, 1),
    "case-iri": (case_iri, 2),
    "type-swap": (type_swap, 16),
}


def mutate(data: bytes, suffix: str, rng: random.Random) -> tuple[bytes, list[str]]:
    """One to three mutations of ``data`` (type swaps only for JSON)."""
    names = [n for n in MUTATIONS if n != "type-swap" or suffix in (".json", ".jsonld")]
    weights = [MUTATIONS[n][1] for n in names]
    chosen = rng.choices(names, weights, k=rng.choice((1, 1, 1, 2, 3)))
    for name in chosen:
        data = MUTATIONS[name][0](data, suffix, rng)
    return data, chosen


# -- one batch ----------------------------------------------------------------------------
@dataclass
class Run:
    """What one ``assess`` command gave: its exit code (None when it raised), its output,
    and the exception it raised, as a traceback."""

    exit_code: int | None
    stdout: bytes
    stderr: str
    error: str | None = None


def command(files: list[Path]) -> list[str]:
    return ["assess", "--format", "json", "--as-of", AS_OF, "--workers", "1", "--quiet", *map(str, files)]


class InProcess:
    """Runs the ``lbp-imaging`` command in this process, with the knowledge base and the
    assessor made once (the command would load and compile them on every call), and the
    click command typer builds from the application built once too."""

    def __init__(self, kb=None, assessor=None) -> None:
        import typer

        from reasoner import cli
        from reasoner.knowledge import KnowledgeBase
        from reasoner.pipeline import assess

        self.kb = kb or KnowledgeBase.load()
        self.assessor = assessor or assess.Assessor(self.kb)
        self.cli, self.assess_module = cli, assess
        self.command = typer.main.get_command(cli.app)  # the click command ``lbp-imaging`` runs

    @contextlib.contextmanager
    def _loaded(self) -> Iterator[None]:
        """``_load_kb`` and ``Assessor`` of the command answered from what is loaded; the
        options the command sets on the assessor are put back afterwards."""
        saved = self.cli._load_kb, self.assess_module.Assessor
        options = self.assessor.inputs.as_of, self.assessor.inputs.merge_duplicates
        self.cli._load_kb = lambda *_: self.kb
        self.assess_module.Assessor = lambda *_args, **_kw: self.assessor
        try:
            yield
        finally:
            self.cli._load_kb, self.assess_module.Assessor = saved
            self.assessor.inputs.as_of, self.assessor.inputs.merge_duplicates = options

    def __call__(self, files: list[Path]) -> Run:
        out, err = io.BytesIO(), io.StringIO()
        stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
        code, error = None, None
        with self._loaded(), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(err):
            try:
                code = self.command.main(command(files), standalone_mode=False, prog_name="lbp-imaging")
                code = 0 if code is None else code
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # what a user would see as a traceback
                error = traceback.format_exc(limit=-6)
        return Run(code, out.getvalue(), err.getvalue(), error)


def subprocess_run(files: list[Path], timeout: float) -> Run:
    """The installed command, one process per batch."""
    exe = Path(sys.executable).parent / "lbp-imaging"
    proc = subprocess.run([str(exe), *command(files)], capture_output=True, timeout=timeout, cwd=ROOT)
    stderr = proc.stderr.decode("utf-8", errors="replace")
    if proc.returncode < 0:
        return Run(None, proc.stdout, stderr, f"killed by signal {-proc.returncode}")
    return Run(proc.returncode, proc.stdout, stderr, "Traceback" if "Traceback" in stderr else None)


Baseline = dict[str, tuple[str, str, str | None, str | None, str | None]]
"""Case IRI -> (file, status, outcome, procedure, urgency), from a clean run."""


def _views(doc: dict) -> Baseline:
    def iri(obj):
        return (obj or {}).get("iri")

    return {
        r["case"]: (
            r["source"],
            r["status"],
            iri(r.get("outcome")),
            iri((r.get("recommendation") or {}).get("procedure")),
            iri((r.get("recommendation") or {}).get("urgency")),
        )
        for r in doc["results"]
    }


@dataclass
class Verdict:
    """What was wrong with one input's batch (nothing, for a good one)."""

    index: int
    source: str
    mutations: list[str]
    size: int
    seconds: float = 0.0
    exception: str | None = None
    signal: str | None = None
    stall: bool = False
    exit_code: int | None = None
    lost: list[str] = field(default_factory=list)
    unreported: bool = False
    leaks: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        bad_exit = self.exit_code not in (0, 1)
        return bool(
            self.exception
            or self.signal
            or self.stall
            or bad_exit
            or self.lost
            or self.unreported
            or self.leaks
        )


def judge(verdict: Verdict, run: Run, mutated: Path, goods: list[Path], baseline: Baseline) -> Verdict:
    verdict.exception, verdict.exit_code = run.error, run.exit_code
    if run.error:
        return verdict
    shown = run.stderr + run.stdout.decode("utf-8", errors="replace")
    verdict.leaks = [leak for leak in LEAKS if leak in shown]
    try:
        doc = json.loads(run.stdout)
    except ValueError:
        verdict.lost = [f"{g}: no JSON output" for g in goods]
        return verdict
    found = _views(doc)
    wanted = {case: view for case, view in baseline.items() if view[0] in {str(g) for g in goods}}
    verdict.lost = [case for case, view in wanted.items() if found.get(case) != view]
    named = {r["source"] for r in doc["results"]}
    named |= {e["path"] for e in doc.get("inputErrors", [])} | {
        w["path"] for w in doc.get("inputWarnings", [])
    }
    named_on_stderr = str(mutated) in run.stderr
    verdict.unreported = str(mutated) not in named and not named_on_stderr
    return verdict


# -- the fuzzer -----------------------------------------------------------------------------
@dataclass
class Fuzzer:
    """Inputs ``index`` of ``seed`` over ``goods``, judged against ``baseline``; files are
    written to ``folder``."""

    goods: list[Path]
    baseline: Baseline
    seed: int
    folder: Path
    runner: Callable[[list[Path]], Run]

    def input(self, index: int) -> tuple[Path, list[Path], list[str], Path]:
        """The mutated file of input ``index``, the good files of its batch, the mutations
        and the file it was made from."""
        rng = random.Random(f"{self.seed}:{index}")
        source = rng.choice(self.goods)
        data, names = mutate(source.read_bytes(), source.suffix, rng)
        others = [g for g in self.goods if g != source]
        goods = rng.sample(others, GOOD_PER_BATCH)
        path = self.folder / f"input-{index}-{source.name}"
        path.write_bytes(data)
        return path, goods, names, source

    def __call__(self, index: int) -> Verdict:
        path, goods, names, source = self.input(index)
        started = time.perf_counter()
        batch = [path, *goods]
        random.Random(index).shuffle(batch)  # the mutated file is not always first
        run = self.runner(batch)
        verdict = Verdict(index, source.name, names, path.stat().st_size)
        verdict = judge(verdict, run, path, goods, self.baseline)
        verdict.seconds = time.perf_counter() - started
        if not verdict.failed:
            path.unlink()
        return verdict


def clean_baseline(goods: list[Path], runner: Callable[[list[Path]], Run]) -> Baseline:
    """Each good file's cases as a clean run of all of them assesses them; exits if that
    run is not clean."""
    run = runner(goods)
    if run.error or run.exit_code != 0:
        sys.exit(
            f"fuzz: the clean run of the good files failed ({run.exit_code}):\n{run.error or run.stderr}"
        )
    baseline = _views(json.loads(run.stdout))
    files = {view[0] for view in baseline.values()}
    if missing := [str(g) for g in goods if str(g) not in files]:
        sys.exit(f"fuzz: good files with no case in the clean run: {missing}")
    return baseline


# -- worker processes -------------------------------------------------------------------------
_FUZZER: Fuzzer | None = None


def _work(connection) -> None:
    """A worker: judge each input index received, send the verdict back."""
    assert _FUZZER is not None
    while (index := connection.recv()) is not None:
        connection.send(asdict(_FUZZER(index)))


def in_workers(fuzzer: Fuzzer, indices: list[int], workers: int, timeout: float) -> Iterator[Verdict]:
    """Verdicts for ``indices`` from ``workers`` forked processes; a worker that dies or
    takes longer than ``timeout`` on an input gives that input's verdict and is replaced."""
    global _FUZZER
    _FUZZER = fuzzer
    context = multiprocessing.get_context("fork")
    pending = list(reversed(indices))
    running: dict = {}  # connection -> (process, index, started)

    def start() -> None:
        parent, child = context.Pipe()
        process = context.Process(target=_work, args=(child,), daemon=True)
        process.start()
        child.close()
        running[parent] = [process, None, 0.0]

    def feed(connection) -> None:
        if pending:
            index = pending.pop()
            connection.send(index)
            running[connection][1:] = [index, time.monotonic()]
        else:
            connection.send(None)
            running[connection][0].join()
            del running[connection]

    for _ in range(min(workers, len(indices))):
        start()
    for connection in list(running):
        feed(connection)
    while running:
        ready = multiprocessing.connection.wait(list(running), timeout=1.0)
        for connection in ready:
            process, index, _ = running[connection]
            try:
                yield Verdict(**connection.recv())
            except EOFError:  # the worker died on this input
                process.join()
                yield Verdict(index, "?", [], 0, signal=f"worker ended with {process.exitcode}")
                del running[connection]
                start()
                connection = list(running)[-1]
            feed(connection)
        for connection, (process, index, started) in list(running.items()):
            if index is not None and time.monotonic() - started > timeout:
                process.kill()
                process.join()
                yield Verdict(index, "?", [], 0, stall=True)
                del running[connection]
                start()
                feed(list(running)[-1])
    _FUZZER = None


# -- the command ------------------------------------------------------------------------------
def report(verdicts: list[Verdict], seconds: float, keep: Path | None, folder: Path) -> int:
    failed = [v for v in verdicts if v.failed]
    figures = {
        "inputs": len(verdicts),
        "exceptions (tracebacks)": sum(bool(v.exception) for v in verdicts),
        "signals": sum(bool(v.signal) for v in verdicts),
        "stalls": sum(v.stall for v in verdicts),
        "exit codes other than 0 or 1": sum(
            v.exit_code not in (0, 1) and not (v.exception or v.signal or v.stall) for v in verdicts
        ),
        "lost good cases": sum(len(v.lost) for v in verdicts),
        "unreported inputs": sum(v.unreported for v in verdicts),
        "leaked internals": sum(bool(v.leaks) for v in verdicts),
        "exit code 0 / 1": " / ".join(str(sum(v.exit_code == code for v in verdicts)) for code in (0, 1)),
        "mutations": ", ".join(
            f"{n} {c}" for n, c in Counter(m for v in verdicts for m in v.mutations).most_common()
        ),
        "time": f"{seconds:.1f} s ({len(verdicts) / seconds:.1f} inputs/s)" if seconds else "-",
    }
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    for v in failed[:20]:
        what = v.exception or v.signal or ("stall" if v.stall else "") or ""
        print(f"\nFAILED input {v.index} ({v.source}, {'+'.join(v.mutations)}): exit {v.exit_code}")
        for line in filter(None, [what.strip(), *(f"lost {c}" for c in v.lost)]):
            print(f"  {line}")
        if v.unreported:
            print("  the mutated file is neither assessed nor named in an error or warning")
        if v.leaks:
            print(f"  leaked: {', '.join(v.leaks)}")
    if keep is not None and failed:
        keep.mkdir(parents=True, exist_ok=True)
        for v in failed:
            for path in folder.glob(f"input-{v.index}-*"):
                shutil.copy(path, keep / path.name)
        print(f"\nfailing inputs kept in {keep}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=3000, help="mutated inputs (default 3000)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--index", type=int, help="run this one input only, and show its batch's messages")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one batch may take")
    parser.add_argument("--subprocess", action="store_true", help="run the installed command per batch")
    parser.add_argument("--keep", type=Path, help="keep the failing inputs in this directory")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lbp-imaging-fuzz-") as tmp:
        folder = Path(tmp)
        goods = corpus(folder)
        runner = (lambda files: subprocess_run(files, args.timeout)) if args.subprocess else InProcess()
        baseline = clean_baseline(goods, runner)
        fuzzer = Fuzzer(goods, baseline, args.seed, folder, runner)
        if args.index is not None:
            path, batch_goods, names, source = fuzzer.input(args.index)
            run = runner([path, *batch_goods])
            print(f"input {args.index}: {source.name} {'+'.join(names)} ({path.stat().st_size:,} bytes)")
            print(f"exit code {run.exit_code}\n{run.error or ''}{run.stderr[:5000]}")
            verdict = judge(Verdict(args.index, source.name, names, 0), run, path, batch_goods, baseline)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, args.keep / path.name)
            return report([verdict], 0.0, None, folder)
        print(
            f"fuzz: {args.count} inputs, seed {args.seed}, {len(goods)} good files, "
            f"{args.workers} worker(s), {'a subprocess' if args.subprocess else 'in-process'} per batch",
            flush=True,
        )
        started = time.perf_counter()
        indices = list(range(args.count))
        if args.workers > 1:
            verdicts = list(in_workers(fuzzer, indices, args.workers, args.timeout))
        else:
            verdicts = [fuzzer(i) for i in indices]
        return report(
            sorted(verdicts, key=lambda v: v.index), time.perf_counter() - started, args.keep, folder
        )


if __name__ == "__main__":
    sys.exit(main())
