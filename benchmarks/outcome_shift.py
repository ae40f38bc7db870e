"""How outcomes move between two versions of the engine on the same generated cases.

    .venv/bin/python benchmarks/outcome_shift.py --old 9452ceb            # 10,000 cases
    .venv/bin/python benchmarks/outcome_shift.py --old 9452ceb --p-absent 0.85  # fuller records

Generates N seeded synthetic cases (``reasoner.synthetic``, with this checkout's knowledge
base) once, then runs ``lbp-imaging assess FILE --format json`` on them with this
checkout and with the revision ``--old`` (checked out into a temporary git worktree and
run from there with this virtualenv, so only the code and knowledge base differ). It
prints the transition table (old outcome -> new outcome, counted per case), and for the
cases whose new outcome is "more information needed" the median number of questions
asked against the median number of red flags the old version listed as not assessed for
the same cases. Figures, not assertions: a reviewer reads them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from reasoner.knowledge import KnowledgeBase
from reasoner.synthetic import CaseGenerator

ROOT = Path(__file__).resolve().parent.parent


def _assess(checkout: Path, cases: Path, out: Path) -> dict[str, dict]:
    """Each case's result, assessed by the code and knowledge base of ``checkout``."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    code = "from reasoner.cli import app; app()"
    command = [sys.executable, "-c", code, "assess", str(cases), "--format", "json", "--output", str(out)]
    subprocess.run(command, cwd=checkout, env=env, check=False, capture_output=True)
    return {r["case"]: r for r in json.loads(out.read_text())["results"] if r["status"] == "assessed"}


def _name(iri: str) -> str:
    return iri.rsplit("/", 1)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", required=True, help="git revision of the earlier version")
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--p-absent",
        type=float,
        default=0.45,
        help="chance that a finding is recorded absent (the generator's)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = work / "cases.nt"
        cases.write_text(
            CaseGenerator(KnowledgeBase.load(), seed=args.seed, p_absent=args.p_absent).ntriples(args.cases)
        )
        old_tree = work / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(old_tree), args.old],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            old = _assess(old_tree, cases, work / "old.json")
            new = _assess(ROOT, cases, work / "new.json")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, check=False)
    both = sorted(set(old) & set(new))
    moves = Counter((_name(old[c]["outcome"]["iri"]), _name(new[c]["outcome"]["iri"])) for c in both)
    print(
        f"{len(both)} generated cases (seed {args.seed}, findings recorded absent with p = {args.p_absent})"
        f" assessed by both versions; old = {args.old}\n"
    )
    print("| old outcome | new outcome | cases |\n|---|---|---:|")
    for (before, after), n in sorted(moves.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"| {before} | {after} | {n:,} |")
    more = [c for c in both if new[c]["outcome"]["iri"].endswith("OutcomeMoreInformationNeeded")]
    if more:
        asked = [len(new[c]["questions"]) for c in more]
        unassessed = [len(old[c]["redFlags"]["unassessed"]) for c in more]
        print(f"\nmore information needed: {len(more):,} cases")
        print(f"  questions asked: median {statistics.median(asked)} (min {min(asked)}, max {max(asked)})")
        flags = [
            len(
                {q["about"]["iri"] for q in new[c]["questions"]}
                & {f["iri"] for f in new[c]["redFlags"]["unassessed"]}
            )
            for c in more
        ]
        low, high = min(flags), max(flags)
        print(f"    of which about red flags: median {statistics.median(flags)} (min {low}, max {high})")
        print(
            "  red flags the old version listed as not assessed for the same cases: median "
            f"{statistics.median(unassessed)} (min {min(unassessed)}, max {max(unassessed)})"
        )
    negative = [
        c for c in both if new[c]["outcome"]["iri"].endswith(("OutcomeNoImaging", "RedFlagWithoutCriterion"))
    ]
    open_facts = [len(old[c]["redFlags"]["unassessed"]) for c in negative]
    if negative:
        still_open = sum(1 for n in open_facts if n)
        print(
            f"determined without imaging: {len(negative):,} cases, of which {still_open:,} have red flags"
            " not assessed (none of which can change any criterion)"
        )


if __name__ == "__main__":
    main()
