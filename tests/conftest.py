"""Shared fixtures: the knowledge base is parsed once per test session."""

from __future__ import annotations

import pytest
from rdflib import Graph

from reasoner.knowledge import KnowledgeBase


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


@pytest.fixture(scope="session")
def onto(kb: KnowledgeBase) -> Graph:
    return kb.ontology
