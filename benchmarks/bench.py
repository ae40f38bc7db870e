"""Benchmark the engines on generated cases and print the figures (no assertions).

    .venv/bin/python benchmarks/bench.py                 # everything (about 10 minutes)
    .venv/bin/python benchmarks/bench.py --sizes 1000,10000 --skip-hermit

For each size N it generates N seeded synthetic cases (reasoner.synthetic) as N-Triples
and measures, in this one run so that the ratios are fair: the time just to parse the
input (the floor); the fast engine end to end (parse, validate, classify, select, explain,
JSON with provenance written to a file) with one process and with worker processes; and,
at N = 1,000, the HermiT reference engine in one batch and per case, and whether the two
engines agree. Peak memory is the largest sum of the resident memory of this process and
its children, sampled every 20 ms.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import pyoxigraph as ox
from rdflib import Graph, URIRef

from reasoner import cases as case_input
from reasoner import classify_fast, classify_hermit, stream
from reasoner.assess import Assessor
from reasoner.definitions import compile_definitions
from reasoner.knowledge import KnowledgeBase
from reasoner.synthetic import CASE_NS, CaseGenerator


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def _tree_rss_mib() -> float:
    """Resident memory of this process and all its descendants."""
    me = os.getpid()
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, todo = 0, [me]
    while todo:
        pid = todo.pop()
        total += _rss_kib(pid)
        todo += children.get(pid, [])
    return total / 1024


class PeakMemory:
    """Samples the process tree's resident memory in a thread while the block runs."""

    def __enter__(self):
        self.peak, self._stop = _tree_rss_mib(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _tree_rss_mib())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed(fn):
    with PeakMemory() as mem:
        start = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - start
    return value, seconds, mem.peak


def fast_run(kb: KnowledgeBase, path: Path, workers: int, out_dir: Path):
    assessor = Assessor(kb, "fast")
    use_pool = stream.worth_workers([path], workers)  # as the CLI decides
    with stream.worker_pool(assessor, workers) if use_pool else nullcontext() as pool:
        grouped = case_input.load_grouped([path], assessor.inputs)
        with open(out_dir / f"out-{workers}.json", "wb") as out:
            return stream.assess_to(assessor, grouped, "json", out, {}, workers=workers, pool=pool)


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
    batch = case_input.group_by_subject(ox.parse(text, format=ox.RdfFormat.N_TRIPLES))
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
            _, parse_s, parse_mem = timed(
                lambda p=path: list(ox.parse(path=p, format=ox.RdfFormat.N_TRIPLES))
            )
            rows.append((n, "parse only (floor)", parse_s, parse_mem, f"{triples / n:.1f} triples/case"))
            for workers in sorted({1, args.workers}):
                summary, s, mem = timed(lambda w=workers, p=path: fast_run(kb, p, w, tmp_dir))
                note = f"{summary.cases} assessed, {summary.invalid} invalid"
                rows.append((n, f"fast engine, {workers} process(es)", s, mem, note))
            for row in rows[printed:]:
                _print(row)
            printed = len(rows)
            if n == 1000 and not args.skip_hermit:
                fast_e2e = next(r[2] for r in rows if r[0] == n and r[1].startswith("fast engine, 1 "))
                rows += hermit_rows(kb, text, n, args.workers, args.per_case, fast_e2e)
    for row in rows[printed:]:
        _print(row)


if __name__ == "__main__":
    main()
