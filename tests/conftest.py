"""Shared fixtures: the knowledge base is parsed once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from rdflib import Graph

from reasoner.knowledge import KnowledgeBase

ROOT = Path(__file__).resolve().parent.parent

SHORT_RUN_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData"
"""JVM options for HermiT's runs in the tests (every test process and the commands and
servers they start inherit them). Each HermiT run is a JVM of a few seconds, which the
JVM's defaults (the optimising C2 compiler and the parallel G1 collector, each with its
own threads) spend mostly compiling and collecting: on the 2-core machine they took about
2.5 times the CPU of the client compiler alone with the serial collector (four batches of
50 generated cases: 38 s of CPU against 13-17 s), and the two HermiT workers of a
classification compete for the same two cores. The options change how fast the JVM runs,
never what HermiT concludes. A ``JAVA_TOOL_OPTIONS`` already set is left as it is."""
os.environ.setdefault("JAVA_TOOL_OPTIONS", SHORT_RUN_JVM)


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


@pytest.fixture(scope="session")
def onto(kb: KnowledgeBase) -> Graph:
    return kb.ontology


@pytest.fixture(scope="session")
def assessor(kb: KnowledgeBase):
    """The default (fast) engine, compiled once per session."""
    from reasoner.pipeline.assess import Assessor

    return Assessor(kb)


@pytest.fixture(scope="session")
def findings(kb: KnowledgeBase) -> list[str]:
    """Every finding of the ontology (an individual of lbp:ClinicalFinding or a subclass)."""
    from rdflib import RDF, RDFS, URIRef

    from reasoner.knowledge import LBP

    onto = kb.ontology
    return sorted(
        str(i)
        for cls in onto.transitive_subjects(RDFS.subClassOf, LBP.ClinicalFinding)
        for i in onto.subjects(RDF.type, cls)
        if isinstance(i, URIRef)
    )


def _cli_executable() -> Path:
    beside = Path(sys.executable).parent / "lbp-imaging"
    return beside if beside.is_file() else ROOT / ".venv" / "bin" / "lbp-imaging"


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess]:
    """Run the installed ``lbp-imaging`` command from the repository root.

    The terminal is made wide and colourless, so that rich neither wraps nor styles the
    text a test looks for.
    """
    exe = _cli_executable()
    env = {**os.environ, "COLUMNS": "400", "TERMINAL_WIDTH": "400", "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)

    def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(exe), *map(str, args)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for the page tests (skipped where it is not installed)."""
    from headless_browser import chromium  # playwright only for the tests that use it

    with chromium() as browser:
        yield browser


HOSTILE_BODY_CAP_MB = 2
"""The body cap of ``hostile_server``: small, so that bodies over it are quick to send."""


@pytest.fixture(scope="session")
def hostile_server(tmp_path_factory):
    """One server for the hostile-input tests (the nasty-query corpus, the HTTP fuzzing):
    the example cases, a 1 s query timeout, bodies of at most ``HOSTILE_BODY_CAP_MB``."""
    from sparql_server import EXAMPLES, running

    args = ["--timeout", "1", "--max-body-mb", str(HOSTILE_BODY_CAP_MB), "--cases", str(EXAMPLES)]
    with running(args, tmp_path_factory.mktemp("hostile-logs")) as server:
        yield server
