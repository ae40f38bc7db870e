"""A card's ``detail``: the explanation of one assessment in GitHub-flavoured Markdown.

The same explanation as the CLI's, shortened for a card: the criteria and rules the case
met with the patient facts that met them, the red-flag screening (unassessed flags listed:
unknown is not absent), the verbatim quotes of the source statements with their IRIs, the
warnings, and the disclaimer. Labels, quotes and definitions come from the knowledge base
through ``Vocabulary``; text from it is escaped so that it cannot change the Markdown.
"""

from __future__ import annotations

import re

from rdflib import URIRef
from rdflib.namespace import SKOS

from .. import DISCLAIMER
from ..explain import CaseResult, Vocabulary

MAX_NOTES = 10
_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def md(text: object) -> str:
    """Text from data, escaped for Markdown."""
    return _SPECIAL.sub(r"\\\1", str(text))


class DetailWriter:
    """Writes the Markdown sections of a card from a case result."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab

    def definition(self, iri: str) -> str:
        value = self.vocab.g.value(URIRef(iri), SKOS.definition)
        return md(value) if value is not None else ""

    def write(self, headline: str, result: CaseResult, statements: list[str]) -> str:
        """``headline`` (Markdown, already escaped), then the explanation of ``result`` with
        the verbatim quotes of ``statements``."""
        parts = [headline]
        if result.status == "assessed":
            parts += [self.criteria(result), self.red_flags(result), self.sources(statements)]
        else:
            parts.append(
                "**Errors in the patient data**\n\n" + "\n".join(f"- {md(e)}" for e in result.error_lines())
            )
        parts += [self.notes(result), f"*{md(DISCLAIMER)}*"]
        return "\n\n".join(p for p in parts if p)

    def criteria(self, result: CaseResult) -> str:
        if not result.criteria:
            return "**Criteria met**: none, by the facts recorded."
        lines = ["**Criteria met**", ""]
        for c in result.criteria:
            state = "selected" if c["selected"] else "outranked"
            outcome = ", ".join(md(c[k]["label"]) for k in ("indicates", "urgency") if c.get(k))
            lines.append(
                f"- **{md(c['label'])}** ({c['kind']}, {state})" + (f": {outcome}" if outcome else "")
            )
            lines += [
                f"  - because {md(f['property']['label'])}: {md(_value(f['value']))}" for f in c["facts"]
            ]
        return "\n".join(lines)

    @staticmethod
    def red_flags(result: CaseResult) -> str:
        flags = result.red_flags
        present = "; ".join(md(f["label"]) for f in flags.get("present", [])) or "none"
        lines = ["**Red-flag screening**", "", f"- present: {present}"]
        unassessed = flags.get("unassessed", [])
        if unassessed:
            names = "; ".join(md(f["label"]) for f in unassessed)
            lines.append(
                f"- not assessed ({len(unassessed)}; unknown is not absent, ask about them): {names}"
            )
        else:
            lines.append("- every red flag was assessed")
        return "\n".join(lines)

    def sources(self, statements: list[str]) -> str:
        lines = ["**Sources** (verbatim)", ""]
        for iri in statements:
            s = self.vocab.statement(iri)
            document = f"{md(s['document']['title'])}, " if s.get("document") else ""
            lines.append(f"- “{md(s['quote'])}” ({document}[{md(iri.rsplit('/', 1)[-1])}]({iri}))")
        return "\n".join(lines) if len(lines) > 2 else ""

    @staticmethod
    def notes(result: CaseResult) -> str:
        if not result.warnings:
            return ""
        shown = [f"- {md(w)}" for w in result.warnings[:MAX_NOTES]]
        if len(result.warnings) > MAX_NOTES:
            shown.append(f"- … and {len(result.warnings) - MAX_NOTES} more")
        return "**Notes**\n\n" + "\n".join(shown)


def _value(value: dict) -> object:
    """A fact's value as shown: a term's label, a number, or yes/no for a boolean."""
    shown = value.get("label", value.get("value"))
    return ("yes" if shown else "no") if isinstance(shown, bool) else shown
