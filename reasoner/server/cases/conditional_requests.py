"""Conditional writes (RFC 9110 §13): ``If-Match`` and ``If-None-Match`` on a request
that changes a stored case, tested against the case's current entity tag.

Only what the case endpoints need is here: the two fields that make a write safe against
a lost update (``If-Match: "<etag>"``: replace only the version I read) and against a
second creation (``If-None-Match: *``: create only if there is none). The date-based
fields (``If-Unmodified-Since``, ``If-Modified-Since``) are not read: HTTP dates have a
resolution of one second, so two writes within a second would look alike; entity tags
tell every write apart.

The field syntax is RFC 9110's (§8.8.3, §13.1.1, §13.1.2): ``*``, or a comma-separated
list of entity tags, each ``"opaque"`` or weak ``W/"opaque"``. It is parsed here, in a few
lines, because the libraries that parse it belong to other web frameworks. A field that
does not follow it is a 400: ignoring a precondition the client meant would risk the very
overwrite it asked to prevent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import Headers

from ..sparql.protocol import ProtocolError

ANY = "*"
_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
"""One entity tag: optional weakness indicator, then the opaque tag in double quotes
(``etagc``: visible characters but the double quote, and obs-text)."""
_SEPARATORS = " \t,"

EntityTags = tuple[tuple[bool, str], ...] | str
"""``ANY``, or the listed tags as (weak, opaque tag) pairs."""


def entity_tag(version: str) -> str:
    """The strong entity tag of a version, as the ``ETag`` field carries it."""
    return f'"{version}"'


def _entity_tags(field: str, value: str) -> EntityTags:
    if value.strip() == ANY:
        return ANY
    tags: list[tuple[bool, str]] = []
    position = 0
    while position < len(value):
        if value[position] in _SEPARATORS:
            position += 1
            continue
        match = _TAG.match(value, position)
        rest = value[match.end() :].lstrip(" \t") if match else ""
        if match is None or not (rest == "" or rest.startswith(",")):
            raise ProtocolError(
                400, f'{field}: {value!r} is not * nor a list of entity tags such as "abc" (RFC 9110)'
            )
        tags.append((match.group(1) is not None, match.group(2)))
        position = match.end()
    if not tags:
        raise ProtocolError(400, f"{field} is empty: send * or the entity tags (ETag) to test")
    return tuple(tags)


def _field(headers: Headers, name: str) -> EntityTags | None:
    values = headers.getlist(name)
    return _entity_tags(name, ",".join(values)) if values else None


@dataclass(frozen=True)
class Preconditions:
    """The conditions a write request carries; ``None`` where the field is absent."""

    if_match: EntityTags | None = None
    if_none_match: EntityTags | None = None

    @classmethod
    def of(cls, headers: Headers) -> Preconditions:
        """The request's conditions; 400 when a field does not follow RFC 9110."""
        return cls(_field(headers, "If-Match"), _field(headers, "If-None-Match"))

    def check(self, case: str, current: str | None) -> None:
        """Raise 412 unless the conditions hold for the case ``case`` whose stored version
        is ``current`` (``None``: no case is stored). RFC 9110 §13.2.2 order: ``If-Match``
        by strong comparison (a weak tag never matches), then ``If-None-Match`` by weak
        comparison. Run after any refusal that would answer the request without its
        conditions (401, 403, 404): §13.2.1 says those come first."""
        if self.if_match is not None:
            if current is None:
                raise ProtocolError(412, f"If-Match: no case is stored under {case}")
            if self.if_match != ANY and (False, current) not in self.if_match:
                raise ProtocolError(
                    412,
                    f"If-Match: the stored case {case} is at version {entity_tag(current)}, which the "
                    "request does not name: read the case again (GET gives its ETag) and send that",
                )
        if self.if_none_match is not None and current is not None:
            if self.if_none_match == ANY:
                raise ProtocolError(412, f"If-None-Match: *: a case is already stored under {case}")
            if current in (tag for _, tag in self.if_none_match):
                raise ProtocolError(
                    412, f"If-None-Match: the stored case {case} is at version {entity_tag(current)}"
                )
