"""Names for things on the web pages: property labels, URL names and HTML ids.

Properties from other vocabularies (PROV, Dublin Core, OWL) have no ``rdfs:label`` in the
knowledge base; their local names are spelled out (``wasDerivedFrom`` -> ``was derived
from``) rather than shown in camel case.
"""

from __future__ import annotations

import re

from ...pipeline.explain import Vocabulary


def local_name(iri: str) -> str:
    """The last path or fragment segment of an IRI."""
    return re.split(r"[/#]", iri.rstrip("/#"))[-1]


def anchor(iri: str) -> str:
    """An HTML id for a resource, from its IRI (``…/statement/art-14`` -> ``art-14``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", local_name(iri))


def property_label(vocab: Vocabulary, iri: str) -> str:
    """The property's label, or its local name as words."""
    label = vocab.label(iri)
    if label != local_name(iri):
        return label
    words = re.findall(r"[A-Z]{2,}(?![a-z])|[A-Z]?[a-z]+|\d+", label)
    return " ".join(w if w.isupper() else w.lower() for w in words) or label
