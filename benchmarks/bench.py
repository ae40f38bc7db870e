"""Benchmark the engines on generated cases and print the figures (no assertions).

    .venv/bin/python benchmarks/bench.py                 # everything (about 10 minutes)
    .venv/bin/python benchmarks/bench.py --sizes 1000,10000 --skip-hermit

For each size N it generates N seeded synthetic cases (reasoner.synthetic) as N-Triples
and measures, in this one run so that the ratios are fair: the time just to parse the
input (the floor); the fast engine end to end, as a user runs it: ``lbp-imaging assess
FILE --format json --output OUT`` in its own process (start-up, loading the knowledge
base, reading, validation, classification, selection, explanation, JSON with provenance
written to a file), with one process and with worker processes; and, at N = 1,000, the
HermiT reference engine in one batch and per case, and whether the two engines agree.

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

from reasoner import cases as case_input
from reasoner import classify_fast, classify_hermit, stream
from reasoner.definitions import compile_definitions
from reasoner.knowledge import KnowledgeBase
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


def fast_run(path: Path, workers: int, out: Path) -> tuple[float, PeakMemory, str]:
    """``lbp-imaging assess`` end to end in its own process (start-up, knowledge base,
    reading, validation, classification, selection, explanation, JSON with provenance
    written to a file), timed from here; its memory is that process and its workers."""
    command = [*_cli(), "assess", str(path), "--format", "json", "--output", str(out), "--quiet"]
    command += ["--workers", str(workers)]
    start = time.perf_counter()
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    with PeakMemory(child.pid) as mem:
        _, stderr = child.communicate()
    seconds = time.perf_counter() - start
    if child.returncode:
        raise SystemExit(f"lbp-imaging assess failed ({child.returncode}): {stderr}")
    return seconds, mem, _run_summary(out)


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--workers", type=int, default=stream.default_workers())
    parser.add_argument("--skip-hermit", action="store_true")
    parser.add_argument("--per-case", type=int, default=20, help="cases for the per-case HermiT run")
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
            _, parse_s, parse_mem = timed(
                lambda p=path: list(ox.parse(path=p, format=ox.RdfFormat.N_TRIPLES))
            )
            rows.append((n, "parse only (floor)", parse_s, parse_mem, f"{triples / n:.1f} triples/case"))
            for workers in sorted({1, args.workers}):
                s, mem, summary = fast_run(path, workers, tmp_dir / f"out-{n}-{workers}.json")
                note = (
                    f"{summary.get('assessed')} assessed, {summary.get('invalid')} invalid; "
                    f"RSS summed over processes {mem.rss:.0f} MiB"
                )
                rows.append((n, f"{FAST_ROW}, {workers} process(es)", s, mem.pss, note))
                (tmp_dir / f"out-{n}-{workers}.json").unlink()
            for row in rows[printed:]:
                _print(row)
            printed = len(rows)
            if n == 1000 and not args.skip_hermit:
                fast_e2e = next(r[2] for r in rows if r[0] == n and r[1] == f"{FAST_ROW}, 1 process(es)")
                rows += hermit_rows(kb, text, n, args.workers, args.per_case, fast_e2e)
    for row in rows[printed:]:
        _print(row)


if __name__ == "__main__":
    main()
