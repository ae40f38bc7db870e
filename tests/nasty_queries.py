"""A corpus of hostile requests to the SPARQL endpoint: each must be refused (4xx) or cut off
(503), never crash or stall the server. Used by ``test_nasty_queries`` and by
``benchmarks/nasty_queries.py`` (which also measures the server's memory and the latency of a
simple query while the corpus runs).

Each entry is what a careless or hostile client could send without a token: nesting that
overflows a recursive parser, cross products whose count, sort or aggregate must be
computed before the first answer, closures over every node, strings that double in size
at each step, more rows than the cap, bodies over the cap (declared or chunked), refused
features, and broken encodings. They are built here rather than stored, since some are
megabytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

REFUSED_OR_CUT_OFF = frozenset({400, 401, 403, 406, 413, 415, 503})
SPARQL_QUERY = "application/sparql-query"
SPARQL_UPDATE = "application/sparql-update"


@dataclass(frozen=True)
class Nasty:
    name: str
    body: bytes
    content_type: str = SPARQL_QUERY
    chunked: bool = False

    def content(self) -> bytes | Iterator[bytes]:
        """The body, in 1 MiB chunks with no declared length when ``chunked``."""
        if not self.chunked:
            return self.body
        return (self.body[i : i + (1 << 20)] for i in range(0, len(self.body), 1 << 20))


def _q(name: str, text: str, content_type: str = SPARQL_QUERY) -> Nasty:
    return Nasty(name, text.encode("utf-8"), content_type)


def _doubling(steps: int) -> str:
    binds = " ".join(f"BIND(CONCAT(?v{i}, ?v{i}) AS ?v{i + 1})" for i in range(steps))
    return f'SELECT (STRLEN(?v{steps}) AS ?n) WHERE {{ BIND("abcdefgh" AS ?v0) {binds} }}'


def corpus(body_cap: int = 16 * 1024 * 1024) -> list[Nasty]:
    """The corpus for a server whose body cap is ``body_cap`` bytes."""
    deep = 5000
    return [
        _q("deep-braces", "SELECT * WHERE " + "{" * deep + "}" * deep),
        _q("deep-parentheses", "ASK { FILTER(" + "(" * deep + "1" + ")" * deep + ") }"),
        _q("deep-subselects", "SELECT * WHERE { " * deep + "}" * deep),
        _q("deep-blank-node-lists", "ASK { ?s ?p " + "[ ?p " * deep + "1" + " ]" * deep + " }"),
        _q("deep-collections", "ASK { ?s ?p " + "(" * deep + "1" + ")" * deep + " }"),
        _q("deep-update", "INSERT DATA { " + "{" * deep + "}" * deep + " }", SPARQL_UPDATE),
        _q("cross-product-count", "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"),
        _q("cross-product-order-by", "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f } ORDER BY ?c ?f LIMIT 1"),
        _q(
            "cross-product-group-concat",
            "SELECT (GROUP_CONCAT(STR(?c)) AS ?all) WHERE { ?a ?b ?c . ?d ?e ?f }",
        ),
        _q(
            "closures-over-everything",
            "SELECT (COUNT(*) AS ?n) WHERE { ?s (<urn:p>|!<urn:p>)* ?o . ?o (<urn:p>|!<urn:p>)* ?x }",
        ),
        _q("string-doubling", _doubling(40)),
        _q(
            "regex-over-cross-product",
            'SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f FILTER(REGEX(STR(?c), "(a|b|ab)*c")) }',
        ),
        _q("more-rows-than-the-cap", "SELECT * WHERE { ?s ?p ?o }"),
        _q("construct-everything", "CONSTRUCT WHERE { ?s ?p ?o }"),
        _q("describe-everything", "DESCRIBE ?s WHERE { ?s ?p ?o }"),
        _q("service-call", "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }"),
        _q("load-a-file", "LOAD <file:///etc/passwd>", SPARQL_UPDATE),
        _q("update-without-a-token", "DROP ALL", SPARQL_UPDATE),
        Nasty("invalid-utf-8", b"SELECT * WHERE { ?s ?p \xff\xfe }"),
        Nasty("unknown-content-type", b"SELECT * WHERE { ?s ?p ?o }", "application/x-evil"),
        Nasty("body-over-the-cap", b"#" * (body_cap + 1)),
        Nasty("chunked-body-over-the-cap", b"#" * (body_cap + 1), chunked=True),
    ]
