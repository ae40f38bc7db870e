"""The report of ``lbp-imaging check``: results at three levels, and the steps that ran.

Levels follow ROBOT's report: ERROR blocks a release (the command exits 1), WARN should be
looked at, INFO is for information. Every result names its rule, so that an author can
look the rule up in ``docs/authoring.md`` and a test can assert exactly which rule fired.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Level(StrEnum):
    ERROR = "ERROR"
    WARN = "WARN"
    INFO = "INFO"


LEVEL_ORDER = {Level.ERROR: 0, Level.WARN: 1, Level.INFO: 2}
ROBOT_COLUMNS = ("Level", "Rule Name", "Subject", "Property", "Value")
"""The header of ROBOT's report table, which ``to_tsv`` writes."""


@dataclass(frozen=True)
class Result:
    """One problem: its level, rule id, the term or file it is about, and what is wrong.

    ``details`` carries supporting lines, such as the axioms that explain an
    unsatisfiable class.
    """

    level: Level
    rule: str
    subject: str
    message: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One step of the check, how long it took and what it found or why it was skipped."""

    name: str
    seconds: float
    summary: str


@dataclass
class Report:
    root: str
    results: list[Result] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    def add(self, results: list[Result]) -> None:
        self.results.extend(results)

    def count(self, level: Level) -> int:
        return sum(r.level is level for r in self.results)

    @property
    def passed(self) -> bool:
        return self.count(Level.ERROR) == 0

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def ordered(self) -> list[Result]:
        return sorted(self.results, key=lambda r: (LEVEL_ORDER[r.level], r.rule, r.subject, r.message))

    def verdict(self) -> str:
        counts = ", ".join(
            plural(self.count(level), name, names)
            for level, name, names in (
                (Level.ERROR, "error", None),
                (Level.WARN, "warning", None),
                (Level.INFO, "info", "info"),
            )
        )
        return f"{'PASS' if self.passed else 'FAIL'}: {counts}"

    # -- renderings -------------------------------------------------------------------
    def to_text(self) -> str:
        width = max((len(s.name) for s in self.steps), default=0)
        lines = [f"lbp-imaging check: {self.root}"]
        lines += [f"  {s.name:<{width}}  {s.seconds:5.1f} s  {s.summary}" for s in self.steps]
        for r in self.ordered():
            lines.append(f"{r.level:<5} {r.rule}  {r.subject}: {r.message}")
            lines += [f"        {d}" for d in r.details]
        lines.append(self.verdict())
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        lines = [
            f"# Knowledge-base check: {self.verdict()}",
            "",
            "| step | seconds | result |",
            "|---|---:|---|",
        ]
        lines += [f"| {s.name} | {s.seconds:.1f} | {_cell(s.summary)} |" for s in self.steps]
        if self.results:
            lines += ["", "| level | rule | subject | message |", "|---|---|---|---|"]
            for r in self.ordered():
                message = "<br>".join([_cell(r.message), *(f"`{_cell(d)}`" for d in r.details)])
                lines.append(f"| {r.level} | `{r.rule}` | {_cell(r.subject)} | {message} |")
        return "\n".join(lines) + "\n"

    def to_tsv(self) -> str:
        """ROBOT's ``report`` table (``robot report --output report.tsv``), so that tools and
        habits built on ROBOT read this check too: ``Level``, ``Rule Name``, ``Subject``,
        ``Property``, ``Value``, a row per finding, ERROR rows first. Subjects are CURIEs
        (or file paths, for findings about a file), as the other formats write them. A
        finding names no property apart: it says what is wrong in words, which go in
        ``Value`` (its supporting lines after it, each after ``" | "``), and ``Property``
        stays empty. As in ROBOT, no cell is quoted, and a tab or line break inside a
        value becomes four spaces, so a row is always one line of five cells."""
        rows = [ROBOT_COLUMNS]
        for r in self.ordered():
            rows.append((r.level.value, r.rule, r.subject, "", " | ".join((r.message, *r.details))))
        return "".join("\t".join(_tsv_cell(c) for c in row) + "\n" for row in rows)

    def to_json(self) -> str:
        data = {
            "root": self.root,
            "passed": self.passed,
            "counts": {level.value: self.count(level) for level in Level},
            "steps": [asdict(s) for s in self.steps],
            "results": [asdict(r) for r in self.ordered()],
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 error``, ``2 errors``; ``words`` for an irregular plural."""
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def _tsv_cell(text: str) -> str:
    return re.sub(r"\r\n|[\t\n\r]", "    ", text)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
