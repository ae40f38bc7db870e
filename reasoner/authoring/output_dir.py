"""An output directory that a command may write into again: new, empty, or written by the
same command before, as its marker file (the list of files it wrote) shows. Rewriting such
a directory removes that run's files first, so that nothing stale survives (a renamed page,
an artefact no longer generated); any other non-empty directory is refused, so that a
mistyped path never overwrites someone's files."""

from __future__ import annotations

from pathlib import Path


class OutputDirError(Exception):
    """A directory that is not one the command may write into."""


def prepare(out_dir: Path, marker: str, command: str, keep: tuple[str, ...] = ()) -> None:
    """Make ``out_dir`` ready for ``command`` (``lbp-imaging docs``, ...): the files the
    ``marker`` lists go, except those in ``keep`` (paths relative to ``out_dir``)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputDirError(f"{out_dir} is not a directory")
    listed = out_dir / marker
    if listed.is_file():
        root = out_dir.resolve()
        for name in listed.read_text(encoding="utf-8").splitlines():
            path = (out_dir / name).resolve()
            if name not in keep and path.is_relative_to(root) and path.is_file():
                path.unlink()
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise OutputDirError(
            f"{out_dir} is not empty and holds nothing written by {command}: give a new or an empty directory"
        )
    out_dir.mkdir(parents=True, exist_ok=True)


def record(out_dir: Path, marker: str, files: list[str]) -> None:
    """List the files written, for the next run's ``prepare``."""
    (out_dir / marker).write_text("\n".join(files) + "\n", encoding="utf-8")
