"""Compare the example cases' recorded expectations with what the engine gives now.

Each ``examples/cases/NAME.expected.json`` holds one expectation (or a list) per case of
the case file beside it. A changed *decision* (outcome, procedure, urgency, criteria,
alternatives) is an ERROR: the examples document the guideline, and one that no longer
holds is either a regression or an expectation to update on purpose. A changed detail
(another recorded key: the criteria left undetermined, what the questions ask about,
which move whenever a finding joins a category a criterion names) is a WARN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .decision import DECISION_KEYS, differences, short, view
from .report import Level, Result

if TYPE_CHECKING:
    from ..pipeline.assess import Assessor

IGNORED_KEYS = {"case", "note", "file", "asOf"}


@dataclass
class ExampleCheck:
    results: list[Result] = field(default_factory=list)
    exercised: set[str] = field(default_factory=set)
    cases: int = 0


def _expectations(cases_dir: Path, results: list[Result]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for path in sorted(cases_dir.glob("*.expected.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            results.append(Result(Level.ERROR, "example_expectation_unreadable", str(path), str(exc)))
            continue
        for entry in data if isinstance(data, list) else [data]:
            found[entry["case"]] = entry
    return found


def check_examples(assessor: Assessor, cases_dir: Path) -> ExampleCheck:
    """Assess every case under ``cases_dir`` with ``assessor`` and compare."""
    out = ExampleCheck()
    expected = _expectations(cases_dir, out.results)
    run = assessor.assess([cases_dir])
    out.cases = len(run.results)
    for error in run.input_errors:
        out.results.append(Result(Level.ERROR, "example_invalid", str(error.path), error.message))
    seen = set()
    for result in run.results:
        seen.add(result.case)
        if result.status != "assessed":
            problems = "; ".join(line for line in result.error_lines())
            out.results.append(Result(Level.ERROR, "example_invalid", short(result.case), problems))
            continue
        observed = view(result)
        out.exercised.update(observed["criteria"])
        entry = expected.get(result.case)
        if entry is None:
            out.results.append(
                Result(
                    Level.WARN,
                    "example_without_expectation",
                    short(result.case),
                    "no *.expected.json records it",
                )
            )
            continue
        changed = differences(entry, observed, [k for k in DECISION_KEYS if k in entry])
        if changed:
            out.results.append(
                Result(
                    Level.ERROR,
                    "example_outcome_changed",
                    short(result.case),
                    "the engine no longer gives the recorded decision: " + "; ".join(changed),
                )
            )
        details = [k for k in entry if k not in IGNORED_KEYS and k not in DECISION_KEYS and k in observed]
        if changed_details := differences(entry, observed, details):
            out.results.append(
                Result(
                    Level.WARN,
                    "example_expectation_changed",
                    short(result.case),
                    "a recorded detail differs: " + "; ".join(changed_details),
                )
            )
    for case in sorted(set(expected) - seen):
        out.results.append(
            Result(
                Level.ERROR,
                "example_expectation_orphan",
                short(case),
                "an expectation for a case no example holds",
            )
        )
    return out
