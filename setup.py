"""Build hook: the wheel and the sdist carry the knowledge base.

Authors edit ``ontology/``, ``shapes/``, ``queries/`` and ``examples/cases/`` at the top of the
repository. A wheel copies every file under those folders into ``reasoner/_knowledge/`` of the
build tree only (no second copy in git), keeping their layout, so an installed package reads the
same files through ``reasoner.knowledge.default_kb_dir``. The folders are walked, not listed
file by file, so a new artefact (a FHIR ConceptMap, a shapes file) is carried without an edit
here. Editable installs copy nothing: they read the checkout's folders. The sdist takes the
folders as source files, so a wheel built from it carries them too.

Everything else about the package is declared in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
KNOWLEDGE_FOLDERS = ("ontology", "shapes", "queries", "examples/cases")
"""What the commands read from a knowledge-base root (``check`` and the server's case form
read ``examples/cases``)."""
PACKAGED = Path("reasoner", "_knowledge")


def knowledge_files() -> list[str]:
    """Every file under the knowledge folders, relative to the repository root, in POSIX form
    (what setuptools expects of source files); hidden files and caches are left out."""
    found = []
    for folder in KNOWLEDGE_FOLDERS:
        for path in sorted((HERE / folder).rglob("*")):
            relative = path.relative_to(HERE)
            skipped = any(part.startswith(".") or part == "__pycache__" for part in relative.parts)
            if path.is_file() and not skipped:
                found.append(relative.as_posix())
    return found


class BuildPyWithKnowledge(build_py):
    """``build_py`` that also copies the knowledge folders into ``reasoner/_knowledge``."""

    def _knowledge_mapping(self) -> dict[str, str]:
        """Build-tree file -> source file; empty for an editable install (which reads the
        checkout)."""
        if self.editable_mode:
            return {}
        target = Path(self.build_lib, PACKAGED)
        return {str(target / name): name for name in knowledge_files()}

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        # A build tree reused from an earlier build may hold files since deleted from the repository.
        shutil.rmtree(Path(self.build_lib, PACKAGED), ignore_errors=True)
        for built, source in self._knowledge_mapping().items():
            self.mkpath(str(Path(built).parent))
            self.copy_file(str(HERE / source), built, preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *self._knowledge_mapping()]

    def get_output_mapping(self) -> dict[str, str]:
        return {**super().get_output_mapping(), **self._knowledge_mapping()}

    def get_source_files(self) -> list[str]:
        return [*super().get_source_files(), *knowledge_files()]


setup(cmdclass={"build_py": BuildPyWithKnowledge})
