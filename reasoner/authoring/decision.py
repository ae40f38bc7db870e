"""What a case's result decides, in the terms the example expectations record.

The example files (``examples/cases/*.expected.json``) record, per case, the outcome, the
procedure, the urgency, the criteria met and the alternatives offered (the *decision*),
plus details: the criteria and rules left undetermined and what the questions ask about.
``check`` compares them with the engine, and ``impact`` compares two versions of the
knowledge base, in these same terms, so that both speak of a change the same way. (The
test suite keeps its own copy of this view, ``tests/outcomes.py``: the tools do not
import the tests.)
"""

from __future__ import annotations

from rdflib import URIRef

from ..knowledge import LBP
from ..pipeline.explain import CaseResult
from ..pipeline.three_valued import UNDETERMINED

DECISION_KEYS = ("outcome", "procedure", "urgency", "criteria", "alternatives")


def local(iri: str | None) -> str | None:
    """A project IRI as its local name, as the expectation files write it."""
    return iri[len(str(LBP)) :] if iri and iri.startswith(str(LBP)) else iri


def iri(name: str) -> URIRef:
    """The inverse of ``local``."""
    return URIRef(name if ":" in name else f"{LBP}{name}")


def view(result: CaseResult) -> dict:
    """The decision and details of one assessed case, with local names and sorted lists."""
    d = result.to_dict()
    rec = d["recommendation"]
    return {
        "outcome": local(d["outcome"]["iri"]),
        "procedure": local((rec["procedure"] or {}).get("iri")),
        "urgency": local((rec["urgency"] or {}).get("iri")),
        "criteria": sorted(local(c["iri"]) for c in d["criteria"] if c["kind"] != "closed-world"),
        "alternatives": sorted(local(a["iri"]) for a in rec["alternatives"]),
        "undetermined": sorted(local(c) for c, s in d["criterionStates"].items() if s == UNDETERMINED),
        "questions": sorted(local(q["about"]["iri"]) for q in d["questions"]),
    }


def differences(before: dict, after: dict, keys: tuple[str, ...] | list[str]) -> list[str]:
    """``key: old -> new`` for each key that differs (lists as added and removed items)."""
    changes = []
    for key in keys:
        old, new = before.get(key), after.get(key)
        if isinstance(old, list) and isinstance(new, list):
            old, new = sorted(old), sorted(new)
            if old != new:
                gained = [f"+{x}" for x in new if x not in old]
                lost = [f"-{x}" for x in old if x not in new]
                changes.append(f"{key}: {' '.join(lost + gained)}")
        elif old != new:
            changes.append(f"{key}: {'none' if old is None else old} -> {'none' if new is None else new}")
    return changes


def short(case: str) -> str:
    """A case IRI's last segment, enough to name it in a report line."""
    return case.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
