"""Benchmark the engines on generated cases and print the figures (no assertions).

    .venv/bin/python benchmarks/bench.py                 # everything (about 10 minutes)
    .venv/bin/python benchmarks/bench.py --sizes 1000,10000 --skip-hermit
    .venv/bin/python benchmarks/bench.py --sizes 10000,100000 --skip-hermit --inputs nt,ttl \
        --formats json,turtle,table --baseline ../baseline   # beside another commit's checkout

For each size N it generates N seeded synthetic cases (reasoner.synthetic) as N-Triples
and measures, in this one run so that the ratios are fair: the time just to parse the
input (the floor); the fast engine end to end, as a user runs it: ``lbp-imaging assess
FILE --format json --output OUT`` in its own process (start-up, loading the knowledge
base, reading, validation, classification, selection, explanation, JSON with provenance
written to a file), with one process and with worker processes; the time just to write
that output (the other floor: about 18 KB a case); and, at N = 1,000, the
HermiT reference engine in one batch and per case, and whether the two engines agree.
With ``--baseline DIR`` (a checkout of another commit, ``git worktree add DIR COMMIT``)
each fast-engine row also runs that commit's code, in the same run on the same input, and
a ratio row gives the throughput of this checkout over the baseline's and over the
parse-only floor; ``--inputs nt,ttl`` repeats it with the cases as Turtle, and
``--formats`` adds other output formats (the baseline's up to ``--baseline-max-n``).

Peak memory is sampled every 50 ms over the measured process tree (the assess command
and its workers; for the other rows this process and its children). It is given as the
sum of proportional set sizes (PSS: a page that forked workers share is divided among
them), the memory the run really holds; the sum of resident sets (RSS, which counts a
shared page once per process) is printed in the note of the fast-engine rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyoxigraph as ox
from rdflib import Graph, URIRef

from reasoner.knowledge import KnowledgeBase
from reasoner.pipeline import cases as case_input
from reasoner.pipeline import classify_fast, classify_hermit, stream
from reasoner.pipeline.definitions import compile_definitions
from reasoner.synthetic import CASE_NS, CaseGenerator


def _status_kib(pid: int, name: str, key: str) -> int:
    try:
        with open(f"/proc/{pid}/{name}") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key))
    except (OSError, StopIteration, ValueError):
        return 0


def _tree(root: int) -> list[int]:
    """A process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


class PeakMemory:
    """Samples, in a thread while the block runs, the memory of a process tree (this
    process, or the one given): the sum of resident sets (RSS), which counts a page
    that forked workers share once per process, and the sum of proportional sets (PSS,
    from /proc/PID/smaps_rollup), which divides each shared page among its sharers, so
    that the sum is the memory the tree really holds."""

    def __init__(self, root: int | None = None, every: float = 0.05):
        self.root, self.every = root or os.getpid(), every
        self.rss = self.pss = 0.0

    def sample(self) -> None:
        pids = _tree(self.root)
        self.rss = max(self.rss, sum(_status_kib(p, "status", "VmRSS:") for p in pids) / 1024)
        self.pss = max(self.pss, sum(_status_kib(p, "smaps_rollup", "Pss:") for p in pids) / 1024)

    def __enter__(self):
        self._stop = threading.Event()
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.every):
            self.sample()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed(fn):
    with PeakMemory() as mem:
        start = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - start
    return value, seconds, mem.pss


def _cli() -> list[str]:
    """The console script as a user runs it (the module when it is not installed)."""
    script = Path(sys.executable).with_name("lbp-imaging")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from reasoner.cli import app; app()"]


def _baseline_cli(checkout: Path) -> list[str]:
    """The command line of another checkout (the baseline commit), run by this interpreter
    with that checkout's package first on the path: the same dependencies, its own code."""
    return [
        sys.executable,
        "-c",
        f"import sys; sys.path.insert(0, {str(checkout)!r}); from reasoner.cli import app; app()",
    ]


def fast_run(
    path: Path, workers: int, out: Path, fmt: str = "json", cli: list[str] | None = None
) -> tuple[float, PeakMemory, dict]:
    """``lbp-imaging assess`` end to end in its own process (start-up, knowledge base,
    reading, validation, classification, selection, explanation, the output written to a
    file: JSON with provenance by default), timed from here; its memory is that process
    and its workers. ``cli`` runs another checkout's command (the baseline)."""
    command = [*(cli or _cli()), "assess", str(path), "--format", fmt, "--output", str(out), "--quiet"]
    command += ["--workers", str(workers)]
    start = time.perf_counter()
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    with PeakMemory(child.pid) as mem:
        _, stderr = child.communicate()
    seconds = time.perf_counter() - start
    if child.returncode not in (0, 1) or not out.exists():  # 1: some generated case is invalid
        raise SystemExit(f"lbp-imaging assess failed ({child.returncode}): {stderr[-2000:]}")
    return seconds, mem, _run_summary(out) if fmt == "json" else {}


def _run_summary(out: Path) -> dict:
    """The run summary from the end of a JSON output (the run-level tables after it are
    a few tens of KB), without reading the whole file."""
    with open(out, "rb") as f:
        f.seek(max(0, out.stat().st_size - (1 << 20)))
        tail = f.read().decode("utf-8", "replace")
    at = tail.rfind('"summary":')
    return json.JSONDecoder().raw_decode(tail, at + len('"summary":'))[0] if at >= 0 else {}


def hermit_classes(kb: KnowledgeBase, ntriples: str, n: int, batch_size: int, workers: int) -> dict:
    graph = Graph().parse(data=ntriples, format="nt")
    per_case = {URIRef(f"{CASE_NS}{i}"): Graph() for i in range(n)}
    for triple in graph:
        per_case[triple[0]].add(triple)
    result = classify_hermit.classify(kb.ontology, per_case, batch_size=batch_size, workers=workers)
    return {str(c): {str(x) for x in r.classes} for c, r in result.classified.items()}


def hermit_rows(kb: KnowledgeBase, text: str, n: int, workers: int, per_case: int, fast_e2e: float) -> list:
    """HermiT in one batch, as shipped (small batches in parallel), and one JVM per case;
    the fast engine's classification of the same cases, and whether the answers agree."""
    rows = []
    batch = case_input.CaseBatch.from_quads(
        case_input.group_by_subject(ox.parse(text, format=ox.RdfFormat.N_TRIPLES))
    ).facts
    formulas = compile_definitions(kb.ontology)
    defined = {str(c) for c in formulas}
    cases = [f"{CASE_NS}{i}" for i in range(n)]
    classifier = classify_fast.FastClassifier(formulas, kb.ontology)
    fast, fast_s, _ = timed(lambda: classifier.classify(batch, cases))
    ref, ref_s, ref_mem = timed(lambda: hermit_classes(kb, text, n, batch_size=n, workers=1))
    same = all(set(fast[c].classes) == ref[c] & defined for c in cases)
    rows.append(
        (
            n,
            "HermiT reference, one batch",
            ref_s,
            ref_mem,
            f"identical memberships: {'yes' if same else 'NO'}",
        )
    )
    shipped, shipped_s, shipped_mem = timed(
        lambda: hermit_classes(kb, text, n, batch_size=150, workers=workers)
    )
    same2 = all(shipped[c] & defined == ref[c] & defined for c in cases)
    rows.append(
        (
            n,
            f"HermiT reference, batches of 150 x {workers} workers",
            shipped_s,
            shipped_mem,
            f"same as one batch: {'yes' if same2 else 'NO'}",
        )
    )
    prefixes = tuple(f"<{CASE_NS}{i}> " for i in range(per_case))
    sub = "".join(line + "\n" for line in text.splitlines() if line.startswith(prefixes))
    _, per_s, per_mem = timed(lambda: hermit_classes(kb, sub, per_case, batch_size=1, workers=1))
    rows.append(
        (per_case, "HermiT reference, one JVM per case", per_s, per_mem, f"{per_s / per_case:.2f} s per case")
    )
    rows.append(
        (
            n,
            "ratio: HermiT one batch / fast end to end",
            None,
            None,
            f"fast is {ref_s / fast_e2e:.0f}x faster (classification alone: {ref_s / fast_s:.0f}x)",
        )
    )
    return rows


FAST_ROW = "fast engine: lbp-imaging assess"
HEADER = f"{'N':>7}  {'measurement':<52} {'seconds':>8} {'cases/s':>9} {'peak MiB':>9}  note"


def _print(row) -> None:
    n, what, s, mem, note = row
    rate = f"{n / s:9.0f}" if s else " " * 9
    secs = f"{s:8.2f}" if s is not None else " " * 8
    peak = f"{mem:9.0f}" if mem is not None else " " * 9
    print(f"{n:>7}  {what:<52} {secs} {rate} {peak}  {note}", flush=True)


INPUTS = {"nt": ox.RdfFormat.N_TRIPLES, "ttl": ox.RdfFormat.TURTLE}


def _turtle(ntriples: Path, out: Path) -> None:
    """The same cases as Turtle (prefixed names, one subject block per case)."""
    quads = ox.parse(path=ntriples, format=ox.RdfFormat.N_TRIPLES)
    prefixes = {"lbp": "https://w3id.org/lbp-imaging/", "xsd": "http://www.w3.org/2001/XMLSchema#"}
    ox.serialize(quads, output=out, format=ox.RdfFormat.TURTLE, prefixes=prefixes)


def _engine_rows(n: int, path: Path, kind: str, args, tmp_dir: Path, floor: float) -> list:
    """The fast engine on one input file: this checkout and, when given, the baseline
    checkout, JSON with provenance, for each worker count; then the ratios."""
    rows, by = [], {}
    sides = [("new", None)] + ([("baseline", _baseline_cli(args.baseline))] if args.baseline else [])
    for workers in sorted({1, args.workers}):
        for side, cli in sides:
            out = tmp_dir / f"out-{n}-{kind}-{workers}-{side}.json"
            s, mem, summary = fast_run(path, workers, out, cli=cli)
            note = (
                f"{summary.get('assessed')} assessed, {summary.get('invalid')} invalid; "
                f"RSS summed over processes {mem.rss:.0f} MiB"
            )
            label = f"{FAST_ROW} {kind}, {workers} proc"
            label += ", BASELINE" if side == "baseline" else ""
            rows.append((n, label, s, mem.pss, note))
            by[(side, workers)] = s
            if side == "new" and workers == args.workers:
                rows.append(_write_floor(n, out))
                written = rows[-1][2]
            out.unlink()
    top = max(by)[1]
    note = f"end to end / parse-only floor ({kind}): {by[('new', top)] / floor:.2f}x"
    note += f"; / parse + write floors: {by[('new', top)] / (floor + written):.2f}x"
    if ("baseline", top) in by:
        note += f"; new is {by[('baseline', top)] / by[('new', top)]:.2f}x the baseline's throughput"
    rows.append((n, f"ratios, {kind} input, {top} proc", None, None, note))
    return rows


def _write_floor(n: int, out: Path) -> tuple:
    """The time just to write the engine's output (its bytes, already in memory) to a new
    file: the other floor of a run, which the parse-only floor leaves out. A JSON result
    with its criteria's states and questions is about 18 KB, so at N = 100,000 the output
    is about 1.8 GB; how long writing it takes depends on whether the machine's page cache
    has those pages at hand (see the README's "Why the figures vary")."""
    data = out.read_bytes()
    copy = out.with_suffix(".floor")
    _, seconds, mem = timed(lambda: copy.write_bytes(data))
    copy.unlink()
    note = f"the JSON output's {len(data) / 2**20:.0f} MiB, from memory to a new file"
    return (n, "write only, the output (floor)", seconds, mem, note)


def _format_rows(n: int, path: Path, args, tmp_dir: Path) -> list:
    """Other output formats (streamed through the same pipeline), this checkout and,
    up to ``--baseline-max-n``, the baseline."""
    rows = []
    for fmt in [f for f in args.formats.split(",") if f and f != "json"]:
        sides = [("new", None)]
        if args.baseline and n <= args.baseline_max_n:
            sides.append(("baseline", _baseline_cli(args.baseline)))
        for side, cli in sides:
            out = tmp_dir / f"out-{n}-{fmt}-{side}"
            s, mem, _ = fast_run(path, args.workers, out, fmt=fmt, cli=cli)
            size = out.stat().st_size / 2**20
            label = f"--format {fmt} -o FILE, {args.workers} proc"
            label += ", BASELINE" if side == "baseline" else ""
            rows.append((n, label, s, mem.pss, f"{size:.0f} MiB written; RSS summed {mem.rss:.0f} MiB"))
            out.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--workers", type=int, default=stream.default_workers())
    parser.add_argument("--skip-hermit", action="store_true")
    parser.add_argument("--per-case", type=int, default=20, help="cases for the per-case HermiT run")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another commit (git worktree add DIR COMMIT): its rows run beside these",
    )
    parser.add_argument("--inputs", default="nt", help="input syntaxes, of: nt, ttl (comma-separated)")
    parser.add_argument(
        "--formats", default="json", help="output formats (json, and any of turtle, json-ld, fhir, table)"
    )
    parser.add_argument(
        "--baseline-max-n", type=int, default=10_000, help="largest N for the baseline's other formats"
    )
    args = parser.parse_args()
    kb = KnowledgeBase.load()
    rows: list = []
    printed = 0
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        for n in (int(x) for x in args.sizes.split(",")):
            text = CaseGenerator(kb, seed=1, p_absent=0.15).ntriples(n)
            path = tmp_dir / f"cases-{n}.nt"
            path.write_text(text, encoding="utf-8")
            triples = text.count("\n")
            if n != 1000 or args.skip_hermit:
                del text  # not needed again: keep this process out of the memory figures
            for kind in [k for k in args.inputs.split(",") if k]:
                source = path if kind == "nt" else tmp_dir / f"cases-{n}.{kind}"
                if kind != "nt":
                    _turtle(path, source)
                _, parse_s, parse_mem = timed(
                    lambda p=source, k=kind: list(ox.parse(path=p, format=INPUTS[k]))
                )
                note = f"{triples / n:.1f} triples/case; {source.stat().st_size / 2**20:.0f} MiB"
                rows.append((n, f"parse only, {kind} (floor)", parse_s, parse_mem, note))
                rows += _engine_rows(n, source, kind, args, tmp_dir, parse_s)
                for row in rows[printed:]:
                    _print(row)
                printed = len(rows)
            rows += _format_rows(n, path, args, tmp_dir)
            for row in rows[printed:]:
                _print(row)
            printed = len(rows)
            if n == 1000 and not args.skip_hermit:
                one_process = [r for r in rows if r[0] == n and r[1].startswith(FAST_ROW)]
                fast_e2e = next(r[2] for r in one_process if r[1].endswith(", 1 proc"))
                rows += hermit_rows(kb, text, n, args.workers, args.per_case, fast_e2e)
    for row in rows[printed:]:
        _print(row)


if __name__ == "__main__":
    main()
