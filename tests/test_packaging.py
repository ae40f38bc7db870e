"""The built package works away from the checkout.

One module fixture does what a user does: ``python -m build`` writes the sdist and then the
wheel from that sdist (so a source file the sdist misses fails here too), ``pip install`` puts
the wheel into a new virtualenv in a temporary directory, and every command then runs from
another temporary directory with ``LBP_IMAGING_KB`` unset: the only knowledge base within
reach is the copy the wheel carries. Deselect with ``-m 'not packaging'``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sparql_server import EXAMPLES, ROOT, free_port

from reasoner import __version__
from reasoner.knowledge import KB_ENV, default_kb_dir

KNOWLEDGE_FOLDERS = ("ontology", "shapes", "queries", "examples/cases")
PACKAGED = "reasoner/_knowledge/"
packaging = pytest.mark.packaging


@dataclass(frozen=True)
class Installed:
    wheel: Path
    sdist: Path
    venv: Path
    work: Path
    """The directory the commands run in (outside the checkout), with a copy of the examples."""

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "lbp-imaging"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in (KB_ENV, "PYTHONPATH", "VIRTUAL_ENV")}
        return {**env, "PATH": f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.command), *args], cwd=self.work, env=self.env(), capture_output=True, text=True
        )


def knowledge_files() -> set[str]:
    """What the wheel must carry: every file under the knowledge folders (not hidden ones)."""
    return {
        path.relative_to(ROOT).as_posix()
        for folder in KNOWLEDGE_FOLDERS
        for path in (ROOT / folder).rglob("*")
        if path.is_file()
        and not any(p.startswith(".") or p == "__pycache__" for p in path.relative_to(ROOT).parts)
    }


def declared_distributions(wheel: Path) -> set[str]:
    """The distributions the wheel's ``Requires-Dist`` needs, with theirs, transitively (the
    extras asked for included, markers evaluated here): what ``pip install WHEEL`` installs."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode("utf-8").splitlines()
    pending = [
        (Requirement(line.split(":", 1)[1].strip()), ("",))
        for line in lines
        if line.startswith("Requires-Dist:")
    ]
    found: set[tuple[str, tuple[str, ...]]] = set()
    while pending:
        requirement, extras = pending.pop()
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({"extra": e}) for e in extras
        ):
            continue
        name = canonicalize_name(requirement.name)
        wanted = ("", *sorted(requirement.extras))
        if (name, wanted) in found:
            continue
        found.add((name, wanted))
        pending += [(Requirement(line), wanted) for line in distribution(name).requires or []]
    return {name for name, _ in found}


def lend_dependencies(python: Path, wheel: Path, lent: Path) -> None:
    """Give the new virtualenv the wheel's declared dependencies, and only those: a folder of
    links to each one's files in this virtualenv (from its ``RECORD``), put on the new
    virtualenv's path by a ``.pth`` line (appended to ``sys.path``, so its own ``reasoner``
    comes first). A dependency the wheel does not declare is then missing there, as after
    ``pip install WHEEL`` (which takes about 20 s from the pip cache, 190 MB, most of it disk
    writes: this takes a second)."""
    site = Path(sysconfig.get_paths()["purelib"])
    lent.mkdir()
    for name in declared_distributions(wheel):
        for file in distribution(name).files or []:
            top = file.parts[0]
            if top != ".." and not (lent / top).exists():
                (lent / top).symlink_to(site / top)
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    new_site = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    (Path(new_site.stdout.strip()) / "lbp_imaging_test_dependencies.pth").write_text(f"{lent}\n")


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    with tempfile.TemporaryDirectory(prefix="lbp-imaging-packaging-") as tmp:
        base = Path(tmp)
        assert not base.resolve().is_relative_to(ROOT)
        dist = base / "dist"
        built = subprocess.run(
            [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
            capture_output=True,
            text=True,
        )
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        (wheel,) = dist.glob("*.whl")
        (sdist,) = dist.glob("*.tar.gz")
        venv = base / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        python = venv / "bin" / "python"
        pip = [sys.executable, "-m", "pip", "--python", str(python)]
        done = subprocess.run(
            [*pip, "install", "-q", "--no-deps", str(wheel)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        lend_dependencies(python, wheel, base / "dependencies")
        lent = {p.name for p in (base / "dependencies").iterdir()}
        assert {"rdflib", "pyoxigraph", "fhir", "pint"} <= lent  # declared, and theirs
        assert not {"pytest", "hypothesis", "playwright", "pyspark"} & lent  # the extras' only
        work = base / "work"
        work.mkdir()
        shutil.copytree(EXAMPLES, work / "cases")
        yield Installed(wheel, sdist, venv, work)


@packaging
def test_the_wheel_and_the_sdist_carry_every_knowledge_file(installed):
    expected = knowledge_files()
    assert {"ontology/catalog-v001.xml", "ontology/context.jsonld"} <= expected
    assert any(name.startswith("ontology/fhir/") for name in expected)
    assert any(name.startswith("ontology/sources/") for name in expected)
    with zipfile.ZipFile(installed.wheel) as wheel:
        carried = {n.removeprefix(PACKAGED) for n in wheel.namelist() if n.startswith(PACKAGED)}
    assert carried == expected
    with tarfile.open(installed.sdist) as sdist:
        top = f"lbp_imaging-{__version__}/"
        in_sdist = {n.removeprefix(top) for n in sdist.getnames()}
    assert expected <= in_sdist


@packaging
def test_the_package_and_its_knowledge_base_come_from_the_virtualenv(installed):
    code = "import reasoner, reasoner.knowledge as k; print(reasoner.__file__); print(k.default_kb_dir())"
    proc = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", code],
        cwd=installed.work,
        env=installed.env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    module, kb_dir = (Path(line) for line in proc.stdout.splitlines())
    site = installed.venv.resolve()
    assert module.is_relative_to(site)
    assert kb_dir.is_relative_to(site) and kb_dir.name == "_knowledge"


@packaging
def test_version_names_the_package_and_the_packaged_ontology(installed, kb):
    proc = installed.run("--version")
    assert proc.returncode == 0, proc.stderr
    identity = kb.identity
    assert proc.stdout.splitlines() == [
        f"lbp-imaging {__version__}",
        f"ontology {identity['ontology']} (version IRI {identity['versionIRI']})",
    ]


@packaging
def test_assess_and_validate_the_examples(installed):
    validated = installed.run("validate", "cases")
    assert validated.returncode == 0, validated.stderr
    said = validated.stdout + validated.stderr
    found = re.search(r"(\d+) case\(s\), 0 problem\(s\), 0 input error\(s\)", said)
    assert found, said
    cases = int(found.group(1))
    assert cases > 0
    assessed = installed.run("assess", "cases")
    assert assessed.returncode == 0, assessed.stderr
    assert f"{cases} cases: {cases} assessed, 0 invalid, 0 input errors" in assessed.stdout + assessed.stderr
    assert "Decision support, not diagnosis" in assessed.stdout


@packaging
def test_explain_query_and_questionnaire(installed):
    explained = installed.run("explain", "cases/01-cauda-equina-urinary-saddle.ttl")
    assert explained.returncode == 0, explained.stderr
    assert "facts" in explained.stdout
    queried = installed.run("query", "procedures")
    assert queried.returncode == 0, queried.stderr
    assert json.loads(queried.stdout)["results"]["bindings"]
    written = installed.run("questionnaire")
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout)["resourceType"] == "Questionnaire"


@packaging
def test_check_and_docs_run_on_the_packaged_copy(installed):
    """``check`` reads the packaged ``examples/cases``: each example still gets its recorded
    decision from the packaged ontology (HermiT left out: it needs Java, not the package)."""
    checked = installed.run("check", "--no-hermit", "--format", "json")
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr
    report = json.loads(checked.stdout)
    assert Path(report["root"]).is_relative_to(installed.venv.resolve())
    assert report["passed"] and report["counts"]["ERROR"] == 0
    docs = installed.run("docs", "site")
    assert docs.returncode == 0, docs.stderr
    assert (installed.work / "site" / "index.html").is_file()


@packaging
def test_serve_starts_and_serves_the_packaged_files(installed):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = installed.work / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(installed.command), "serve", "--port", str(port)],
            cwd=installed.work,
            env=installed.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(url + "/sparql", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert server.poll() is None, log.read_text()
        assert httpx.get(url + "/lbp-imaging/context.jsonld").status_code == 200
        assert httpx.get(url + "/lbp-imaging/fhir/Questionnaire/lbp-PatientCase").status_code == 200
        example = httpx.get(url + "/case", params={"example": "01-cauda-equina-urinary-saddle.ttl"})
        assert example.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_checkout_reads_its_own_folders(monkeypatch):
    """An editable install (``scripts/setup.sh``) reads the repository's folders, so an
    author's edit takes effect without a rebuild; ``$LBP_IMAGING_KB`` still wins."""
    monkeypatch.delenv(KB_ENV, raising=False)
    assert default_kb_dir() == ROOT
    monkeypatch.setenv(KB_ENV, str(EXAMPLES))
    assert default_kb_dir() == EXAMPLES.resolve()
