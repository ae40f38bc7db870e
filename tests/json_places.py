"""Where a JSON document can be changed: for tests that mutate documents anywhere."""

from __future__ import annotations


def places(node: object, path: tuple = ()) -> list[tuple]:
    """Every (path to a container, key or index) in a JSON document."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((path, key))
            found += places(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.append((path, i))
            found += places(value, (*path, i))
    return found
