"""Write N generated patients as a FHIR Bulk Data export (and, optionally, as bundles).

    .venv/bin/python benchmarks/bulk_export.py 10000 /tmp/bulk
    .venv/bin/python benchmarks/bulk_export.py 100000 /tmp/bulk --seed 1 --split 4 --gzip \
        --bundles /tmp/bundles --as-of 2026-12-01

The patients are ``reasoner.synthetic_fhir``'s (``p0`` … ``p{N-1}``, seeded, each made
on its own from the seed, its index and the reference date), written by ``write_bulk``
as one NDJSON file per resource type (``--split K``: K files per type, by patient;
``--gzip``: ``.ndjson.gz``) with a ``manifest.json``. With ``--bundles DIR`` each patient
is also written as a Bundle file ``DIR/p{index}.json``, the same data for a side-by-side
run of the bundle input. Patients are made and written one at a time, so memory does not
grow with N. Read the export with the same reference date it was made for
(``lbp-imaging assess OUT_DIR --as-of DATE``): ages and durations are counted to it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import orjson

from reasoner.knowledge import KnowledgeBase
from reasoner.synthetic_fhir import FhirCaseGenerator, write_bulk


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, metavar="N", help="number of patients")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder of the export (created)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument(
        "--split", type=int, default=1, metavar="K", help="files per resource type (default 1)"
    )
    parser.add_argument("--gzip", action="store_true", help="write .ndjson.gz files")
    parser.add_argument(
        "--bundles", type=Path, metavar="DIR", help="also write each patient as DIR/p{index}.json"
    )
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=date.today(),
        metavar="YYYY-MM-DD",
        help="reference date the data is made for (default today)",
    )
    args = parser.parse_args(argv)
    if args.n < 0 or args.split < 1:
        parser.error("N must be 0 or more and --split 1 or more")
    return args


def _patients(generator: FhirCaseGenerator, n: int, bundles: Path | None) -> Iterator[dict]:
    """The N bundles, one at a time, each written to ``bundles`` first when asked."""
    for index in range(n):
        bundle = generator.bundle(index)
        if bundles is not None:
            (bundles / f"p{index}.json").write_bytes(orjson.dumps(bundle))
        yield bundle


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    started = time.perf_counter()
    generator = FhirCaseGenerator(KnowledgeBase.load(), seed=args.seed, as_of=args.as_of)
    if args.bundles is not None:
        args.bundles.mkdir(parents=True, exist_ok=True)
    counts = write_bulk(_patients(generator, args.n, args.bundles), args.out_dir, args.split, args.gzip)
    seconds = time.perf_counter() - started
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in counts.items())
    print(f"{args.n:,} patients, {sum(counts.values()):,} resources ({kinds}) in {seconds:.1f} s")
    print(f"export: {args.out_dir}" + (f"; bundles: {args.bundles}" if args.bundles else ""))
    print(f"reference date {args.as_of}: lbp-imaging assess {args.out_dir} --as-of {args.as_of}")


if __name__ == "__main__":
    sys.exit(main())
