"""Start-up benchmark: how long a cold ``lbp-imaging`` takes for ``--help``, ``--version``,
one RDF case and one FHIR bundle, with the import profile (figures printed, nothing
asserted).

    .venv/bin/python benchmarks/startup.py
    .venv/bin/python benchmarks/startup.py --baseline /work/baseline17 --runs 7

Each row runs the command in a new process ``--runs`` times (``python -m reasoner.cli``,
what the ``lbp-imaging`` script runs, with this checkout's virtualenv) and gives the median
and the fastest run in seconds; a new process every time is what a user waiting on the
command sees, since nothing is kept between runs. ``--baseline DIR`` runs another
checkout of the project (``git worktree add DIR COMMIT``) on the same inputs, alternating
with this one run by run so that the machine's drift falls on both, and prints the ratio.
Then the import profile of the one-case run (``python -X importtime``): the modules that
take longest to import, cumulative, and the total.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ONE_CASE = sorted((EXAMPLES / "cases").glob("*.ttl"))[0]
ONE_BUNDLE = next(  # the first bundle with a quantity: its unit is read through the UCUM registry
    path
    for path in sorted((EXAMPLES / "fhir").glob("*.json"))
    if not path.name.endswith(".expected.json") and '"unit"' in path.read_text(encoding="utf-8")
)


def commands(out: Path) -> dict[str, list[str]]:
    """Each measured command's arguments after ``python -m reasoner.cli``."""
    one = ["--format", "json", "--output", str(out), "--as-of", "2026-12-01"]
    return {
        "--help": ["--help"],
        "--version": ["--version"],
        "assess one Turtle case": ["assess", str(ONE_CASE), *one],
        "assess one FHIR bundle (UCUM)": ["assess", str(ONE_BUNDLE), *one],
    }


def run(checkout: Path, args: list[str]) -> float:
    """Seconds for one cold run of the command in ``checkout`` (its ``reasoner`` first on
    the path, its own knowledge base), which must exit 0."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    env.pop("LBP_IMAGING_KB", None)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "reasoner.cli", *args], cwd=checkout, env=env, capture_output=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        said = done.stderr.decode()[-400:]
        raise SystemExit(f"{checkout}: {' '.join(args)} exited {done.returncode}: {said}")
    return seconds


def import_profile(checkout: Path, args: list[str], top: int) -> tuple[float, list[tuple[float, str]]]:
    """The total import time of the run and its ``top`` slowest top-level imports
    (cumulative seconds, module), from ``-X importtime``."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "reasoner.cli", *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if found and not found.group(3):  # imported by the program itself, not by another module
            rows.append((int(found.group(2)) / 1e6, found.group(4)))
    return sum(s for s, _ in rows), sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="cold runs per command and checkout (default 5)")
    parser.add_argument("--baseline", type=Path, help="another checkout of the project to compare with")
    parser.add_argument("--top", type=int, default=12, help="slowest imports to list (default 12)")
    options = parser.parse_args()
    checkouts = {"new": ROOT} | ({"baseline": options.baseline.resolve()} if options.baseline else {})
    with tempfile.TemporaryDirectory() as tmp:
        measured = commands(Path(tmp) / "out.json")
        times: dict[tuple[str, str], list[float]] = {}
        for name, args in measured.items():
            for _ in range(options.runs):
                for label, checkout in checkouts.items():  # alternating: drift falls on both
                    times.setdefault((name, label), []).append(run(checkout, args))
        header = "| command | " + " | ".join(f"{label}: median s (fastest)" for label in checkouts)
        print(header + (" | new / baseline |" if options.baseline else " |"))
        print("|---" * (len(checkouts) + 1 + bool(options.baseline)) + "|")
        for name in measured:
            cells = [
                f"{statistics.median(times[name, label]):.3f} ({min(times[name, label]):.3f})"
                for label in checkouts
            ]
            ratio = ""
            if options.baseline:
                new, old = (statistics.median(times[name, label]) for label in ("new", "baseline"))
                ratio = f" {new / old:.2f}x |"
            print(f"| {name} | " + " | ".join(cells) + " |" + ratio)
        for label, checkout in checkouts.items():
            total, slowest = import_profile(checkout, measured["assess one Turtle case"], options.top)
            print(f"\nImports of `assess` one Turtle case, {label}: {total:.3f} s; slowest, cumulative:")
            for seconds, module in slowest:
                print(f"  {seconds:.3f} s  {module}")


if __name__ == "__main__":
    main()
