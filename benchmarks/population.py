"""Population-scale benchmark: the same generated patients as FHIR Bulk Data, as FHIR
Bundles and as N-Triples, assessed side by side in one run (figures printed, nothing
asserted).

    .venv/bin/python benchmarks/population.py --sizes 10000
    .venv/bin/python benchmarks/population.py --sizes 10000,100000 --spark

For each size N it generates N seeded patients (``reasoner.synthetic_fhir``) and writes
them as a Bulk Data export (one NDJSON file per resource type), as one Bundle file per
patient (up to ``--bundles-max``) and as N-Triples: each bundle read by the product's FHIR
reader, so all three hold the same cases. Each row is ``lbp-imaging assess INPUT --format
ndjson --output OUT`` end to end in its own process (start-up, knowledge base, reading,
validation, classification, selection, explanation, output written), with ``--workers``
processes, timed from here, peak memory sampled over its process tree (PSS: shared pages
divided among the processes that share them). With ``--spark`` (the ``spark`` extra
installed), the Bulk export is also assessed by ``lbp-imaging spark-assess`` on
``local[2]``, start-up reported on its own row. Then the answers: every patient's decision
(status, outcome, recommendation, criteria, states, questions, red flags) compared
across the inputs, with the number that differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

from bench import PeakMemory, _cli

from reasoner.fhir.bulk_write import write_bulk
from reasoner.fhir.mapping import FhirMapping
from reasoner.fhir.read import bundle_to_case
from reasoner.knowledge import KnowledgeBase
from reasoner.pipeline.explain import DECISION_KEYS
from reasoner.synthetic_fhir import FhirCaseGenerator

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 12, 1)

_GENERATOR: FhirCaseGenerator | None = None


def _generator() -> FhirCaseGenerator:
    global _GENERATOR
    if _GENERATOR is None:
        kb = KnowledgeBase.load(ROOT)
        _GENERATOR = FhirCaseGenerator(kb, seed=16, as_of=AS_OF, mapping=FhirMapping.for_knowledge_base(kb))
    return _GENERATOR


def _chunk(start: int, stop: int, bundles_dir: str | None) -> tuple[str, dict[str, str]]:
    """Patients start..stop-1 as N-Triples (read by the product's reader), and each case
    IRI's patient id; each bundle also written as a file when ``bundles_dir`` is given."""
    gen = _generator()
    text, patients = [], {}
    for i in range(start, stop):
        bundle = gen.bundle(i)
        if bundles_dir:
            Path(bundles_dir, f"p{i}.json").write_bytes(json.dumps(bundle).encode())
        case = bundle_to_case(bundle, f"p{i}", AS_OF, gen.mapping)
        text.append(case.ntriples)
        patients[case.case_iri] = f"p{i}"
    return "".join(text), patients


def generate(n: int, out: Path, bundles: bool) -> tuple[Path, Path | None, Path, dict[str, str]]:
    """The Bulk export, the bundle folder (or None) and the N-Triples file of N patients,
    with each N-Triples/bundle case IRI's patient id."""
    export, nt = out / "export", out / "cases.nt"
    bundles_dir = out / "bundles" if bundles else None
    if bundles_dir:
        bundles_dir.mkdir()
    patients: dict[str, str] = {}
    step = 1000
    with ProcessPoolExecutor(2) as pool, nt.open("w", encoding="utf-8") as f:
        chunks = [(i, min(i + step, n), str(bundles_dir) if bundles_dir else None) for i in range(0, n, step)]
        for text, found in pool.map(_chunk, *zip(*chunks, strict=True)):
            f.write(text)
            patients.update(found)
    gen = _generator()
    write_bulk((gen.bundle(i) for i in range(n)), export)
    return export, bundles_dir, nt, patients


def run(command: list[str]) -> tuple[float, float, str]:
    """Seconds, peak PSS (MiB) and stderr of one command in its own process tree."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    with PeakMemory(child.pid) as mem:
        _, stderr = child.communicate()
    if child.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command[:3])} failed ({child.returncode}): {stderr[-2000:]}")
    return time.perf_counter() - start, mem.pss, stderr


def decisions(lines: Path, patients: dict[str, str]) -> dict[str, str]:
    """Each patient's decision, as a digest (the files hold 20 KB a case)."""
    found = {}
    for path in sorted(lines.parent.glob(lines.name)):
        with path.open("rb") as f:
            for line in f:
                result = json.loads(line)
                case = result["case"]
                pid = patients.get(case) or case.rsplit("/", 1)[-1]
                text = json.dumps([result.get(k) for k in DECISION_KEYS], sort_keys=True).encode()
                found[pid] = hashlib.sha1(text).hexdigest()
    return found


def _row(label: str, n: int, seconds: float, pss: float, note: str = "", rate: bool = True) -> dict:
    return {
        "row": label,
        "N": n,
        "s": seconds,
        "cases/s": n / seconds if seconds and rate else 0,
        "peak MiB": pss,
        "note": note,
    }


def _print(row: dict) -> None:
    rate = f"{row['cases/s']:>9,.0f}" if row["cases/s"] else " " * 9
    print(
        f"{row['row']:<44} {row['N']:>8,} {row['s']:>9.2f} {rate} {row['peak MiB']:>9,.0f}  {row['note']}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000", help="comma-separated numbers of patients")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--bundles-max", type=int, default=10000, help="largest N also written as bundle files"
    )
    parser.add_argument("--spark", action="store_true", help="also run spark-assess on local[2]")
    parser.add_argument("--keep", type=Path, help="keep the generated data and outputs in this folder")
    args = parser.parse_args()
    cli = [*_cli()]
    print(f"{'row':<44} {'N':>8} {'s':>9} {'cases/s':>9} {'peak MiB':>9}  note")
    for n in (int(x) for x in args.sizes.split(",")):
        work = Path(tempfile.mkdtemp(prefix=f"lbp-pop-{n}-", dir=args.keep))
        start = time.perf_counter()
        export, bundles, nt, patients = generate(n, work, n <= args.bundles_max)
        size = sum(f.stat().st_size for f in export.iterdir()) / (1 << 20)
        print(
            f"# N = {n:,}: generated in {time.perf_counter() - start:.0f} s; export {size:,.0f} MiB",
            flush=True,
        )
        inputs = {"RDF: N-Triples": nt, "FHIR: Bundle files": bundles, "FHIR: Bulk NDJSON export": export}
        rates, answers = {}, {}
        for label, path in inputs.items():
            if path is None:
                continue
            out = work / f"{label.split(':')[1].strip().split()[0].lower()}.ndjson"
            command = [*cli, "assess", str(path), "--format", "ndjson", "--output", str(out), "--quiet"]
            command += ["--workers", str(args.workers), "--as-of", AS_OF.isoformat()]
            seconds, pss, _ = run(command)
            row = _row(f"{label}, {args.workers} proc", n, seconds, pss)
            _print(row)
            rates[label] = row["cases/s"]
            answers[label] = decisions(out, patients)
        if args.spark:
            spark_out = work / "spark"
            command = [*cli, "spark-assess", str(export), str(spark_out), "--master", "local[2]"]
            command += ["--as-of", AS_OF.isoformat()]
            seconds, pss, stderr = run(command)
            startup = next(
                (float(x.split()[-1].rstrip("s")) for x in stderr.splitlines() if "start-up" in x), 0.0
            )
            _print(_row("Spark local[2]: start-up", n, startup, 0, "session and knowledge base", rate=False))
            _print(_row("Spark local[2]: Bulk NDJSON, end to end", n, seconds, pss, "driver + executors"))
            rates["Spark"] = n / max(seconds - startup, 1e-9)
            _print(_row("Spark local[2]: Bulk NDJSON, after start-up", n, seconds - startup, pss))
            answers["Spark"] = decisions(spark_out / "results" / "part-*", patients)
        base = rates["RDF: N-Triples"]
        for label, rate in rates.items():
            if label != "RDF: N-Triples":
                print(f"  {label} / N-Triples: {rate / base:.2f}x", flush=True)
        reference = answers["RDF: N-Triples"]
        for label, found in answers.items():
            differ = sum(found.get(p) != d for p, d in reference.items()) + len(
                found.keys() - reference.keys()
            )
            print(f"  answers, {label} vs N-Triples: {len(found):,} cases, {differ} differ", flush=True)
        if not args.keep:
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
