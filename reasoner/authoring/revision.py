"""A knowledge base as it was at a git revision, exported to a temporary directory.

``git archive`` writes the revision's files without touching the working tree, the index
or any branch, so ``impact --base REV`` is safe to run in the middle of an edit.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KB_PARTS = ("ontology", "shapes", "queries")


class RevisionError(Exception):
    """The base is neither a directory nor a revision git can export."""


def _git(repo: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except OSError as exc:
        raise RevisionError(f"cannot run git: {exc}") from None
    if done.returncode != 0:
        raise RevisionError(done.stderr.decode("utf-8", "replace").strip() or f"git {args[0]} failed")
    return done.stdout


def export_revision(revision: str, repo: Path, dest: Path) -> None:
    """Write the knowledge-base parts of ``revision`` (the directory of ``repo`` within
    it) into ``dest``."""
    prefix = _git(repo, "rev-parse", "--show-prefix").decode().strip()
    data = _git(repo, "archive", "--format=tar", f"{revision}:{prefix}", "--", *KB_PARTS)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")


@contextmanager
def knowledge_base_at(base: str, repo: Path) -> Iterator[Path]:
    """The directory of the base knowledge base: ``base`` itself when it is a directory,
    else the revision ``base`` of the repository holding ``repo``, exported for the time
    of the ``with`` block."""
    path = Path(base)
    if path.is_dir():
        yield path.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="lbp-imaging-base-") as tmp:
        export_revision(base, repo, Path(tmp))
        yield Path(tmp)
