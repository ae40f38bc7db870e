"""The authoring guide's worked example, performed from the guide itself.

The Turtle (and example-case) edits are the fenced blocks of ``docs/authoring.md``'s
"Worked example", applied literally to a copy of the knowledge base: ```` ```turtle
append FILE ```` blocks are appended to FILE, ```` ```diff FILE ```` blocks replace their
``-`` lines with their ``+`` lines (once, exactly), in FILE or, when FILE is a pattern, in
every file matching it that has those lines. The documented ``impact`` output must
be what ``impact`` prints against the unedited copy, and ``check`` must pass on the
result, showing the documented lines. No Python of the project is changed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from reasoner.authoring.check import run_check
from reasoner.authoring.versions import version_results
from reasoner.knowledge import KnowledgeBase

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "authoring.md"
RELEASE = ROOT / "docs" / "release.md"
FENCE = re.compile(r"^([ \t]*)```(\S+)[ \t]*([^\n]*)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    lang: str
    info: str
    body: str


def blocks(markdown: str) -> list[Block]:
    """Fenced blocks, also those indented in a list item (their indent removed)."""
    return [Block(m[2], m[3].strip(), textwrap.dedent(m[4])) for m in FENCE.finditer(markdown)]


def section(markdown: str, title: str) -> str:
    start = markdown.index(f"## {title}")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end > 0 else None]


def copy_kb(dest: Path) -> Path:
    for part in ("ontology", "shapes", "queries", "examples/cases"):
        shutil.copytree(ROOT / part, dest / part)
    return dest


def apply(block: Block, root: Path) -> bool:
    """Apply an edit block to the copy at ``root``; False for blocks that are not edits."""
    words = block.info.split()
    if block.lang == "turtle" and words[:1] == ["append"]:
        path = root / words[1]
        path.write_text(path.read_text(encoding="utf-8") + "\n" + block.body, encoding="utf-8")
        return True
    if block.lang == "diff" and len(words) == 1:
        lines = block.body.splitlines(keepends=True)
        old = "".join(line[1:] for line in lines if line[:1] in "- ")
        new = "".join(line[1:] for line in lines if line[:1] in "+ ")
        paths = sorted(root.glob(words[0]))
        texts = {p: p.read_text(encoding="utf-8") for p in paths}
        edited = [p for p, text in texts.items() if old in text]
        assert edited and all(texts[p].count(old) == 1 for p in edited), (
            f"{words[0]}: '-' lines must occur once"
        )
        if "*" not in words[0]:
            assert edited == paths
        for path in edited:
            path.write_text(texts[path].replace(old, new), encoding="utf-8")
        return True
    return False


@dataclass(frozen=True)
class Rehearsal:
    base: Path
    work: Path
    impact: subprocess.CompletedProcess
    documented_impact: str
    documented_check: str


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, cli) -> Rehearsal:
    """The worked example, block by block: edits, then impact where the guide shows it."""
    tmp = tmp_path_factory.mktemp("authoring")
    base, work = copy_kb(tmp / "base"), copy_kb(tmp / "work")
    impact = documented_impact = documented_check = None
    for block in blocks(section(GUIDE.read_text(encoding="utf-8"), "Worked example")):
        if apply(block, work):
            continue
        if block.info == "impact-output":
            impact = cli("impact", "--kb", work, "--base", base)
            documented_impact = block.body
        elif block.info == "check-output":
            documented_check = block.body
    assert impact is not None and documented_check is not None, "the guide lost its output blocks"
    return Rehearsal(base, work, impact, documented_impact, documented_check)


def test_impact_reports_exactly_the_documented_change(rehearsal):
    assert rehearsal.impact.stderr == ""
    assert rehearsal.impact.returncode == 1  # something changed
    assert rehearsal.impact.stdout == rehearsal.documented_impact


def test_check_passes_on_the_edited_copy_with_the_documented_lines(rehearsal):
    report = run_check(rehearsal.work, hermit=False)
    assert report.passed, report.to_text()
    text = report.to_text().splitlines()
    for line in rehearsal.documented_check.splitlines():
        if line.strip() != "…":
            assert line in text, f"documented check line not printed: {line}"


@pytest.mark.hermit
def test_the_edited_copy_is_consistent_with_no_unsatisfiable_class(rehearsal):
    report = run_check(rehearsal.work, hermit=True)
    assert report.passed, report.to_text()
    hermit = next(s for s in report.steps if s.name == "hermit")
    assert hermit.summary.startswith("consistent, 0 unsatisfiable classes")


def test_impact_against_the_unedited_copy_itself_reports_nothing(rehearsal, cli):
    done = cli("impact", "--kb", rehearsal.base, "--base", rehearsal.base)
    assert (done.returncode, done.stdout) == (0, "0 of 56 cases change decision; 0 axioms added, 0 removed\n")


def test_the_documented_version_bump_leaves_every_module_and_the_package_agreeing(tmp_path):
    root = copy_kb(tmp_path)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    (bump,) = [b for b in blocks(RELEASE.read_text(encoding="utf-8")) if b.info == "version-bump"]
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", bump.body],
        cwd=root,
        check=True,
        env={"OLD": "0.1.0", "NEW": "0.2.0", "PATH": "/usr/bin:/bin"},
    )
    kb = KnowledgeBase.load(root)
    problems, version = version_results(kb.ontology, root)
    assert (problems, version) == ([], "0.2.0")
    prior = "https://w3id.org/lbp-imaging/ontology/0.1.0"
    assert f"owl:priorVersion <{prior}>" in (root / "ontology" / "lbp-imaging.ttl").read_text(
        encoding="utf-8"
    )
