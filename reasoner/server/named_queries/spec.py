"""The web-API description of a named query: its grlc-style header and its parameters, and
binding parameter values into it.

**Header.** A file in ``queries/`` opens with ``#+`` lines in the YAML subset grlc's own
examples use: ``key: value``, or ``key:`` followed by ``- item`` lines. The decorators
read are ``summary`` (required), ``description``, ``method`` (``GET``, the default, or
``POST``) and ``tags``. grlc's other decorators (``endpoint``, ``pagination``,
``enumerate``, ``defaults``, ``mime``, ``transform``) are refused by name: this server is
the endpoint, and a decorator silently ignored would make the API differ from what its
file says.

**Parameters** follow grlc's (BASIL's) variable conventions: ``?_name`` is a required
parameter ``name``, ``?__name`` an optional one; a suffix after the name gives the type:
``_iri`` an IRI, ``_number`` a number, none (or ``_literal``, ``_string``) a plain
string, an XSD datatype name (``_integer``, ``_date``…) a literal of that datatype, a
two-letter code (``_en``) a string in that language. grlc's ``_prefix_datatype`` form is
refused (its prefix would have to be resolved from the query). Names contain no
underscore, as in grlc. ``limit`` and ``offset`` are reserved for paging (``paging``).

**Binding.** A value is written as a SPARQL term (an IRI checked for IRI syntax; a
literal with its quotes, backslashes and line breaks escaped) and put in place of every
occurrence of the variable outside strings, IRIs and comments. A value therefore can
never become query syntax. An optional parameter that is not given stays a variable, so
the query matches any value there. A parameter variable may stand only where a term can
(a triple pattern, an expression, ``(?_x AS ?y)``), which is checked when the server
starts by binding every parameter and parsing the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property

import pyoxigraph as ox

from ...knowledge import KnowledgeBaseError, NamedQuery
from ...pipeline.definitions import INTEGER_FAMILY
from ..sparql.text import Template, variables
from .paging import PAGING, Page

XSD = "http://www.w3.org/2001/XMLSchema#"
XSD_DATATYPES = frozenset(
    [
        "string",
        "boolean",
        "decimal",
        "integer",
        "double",
        "float",
        "date",
        "time",
        "dateTime",
        "dateTimeStamp",
        "duration",
        "yearMonthDuration",
        "dayTimeDuration",
        "gYear",
        "gMonth",
        "gDay",
        "gYearMonth",
        "gMonthDay",
        "byte",
        "short",
        "int",
        "long",
        "unsignedByte",
        "unsignedShort",
        "unsignedInt",
        "unsignedLong",
        "positiveInteger",
        "nonNegativeInteger",
        "negativeInteger",
        "nonPositiveInteger",
        "hexBinary",
        "base64Binary",
        "anyURI",
        "language",
        "normalizedString",
        "token",
        "NMTOKEN",
        "Name",
        "NCName",
    ]
)
INTEGER_TYPES = frozenset(str(t).rsplit("#", 1)[1] for t in INTEGER_FAMILY)
DECORATORS = ("summary", "description", "method", "tags")
GRLC_ONLY = ("endpoint", "pagination", "enumerate", "defaults", "mime", "transform", "endpoint_in_url")
METHODS = ("GET", "POST")

_PARAMETER = re.compile(r"^(?P<optional>_?)_(?P<name>[^_]+)(?:_(?P<type>[A-Za-z0-9]+))?(?P<rest>_.*)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?(\d+\.\d*|\.\d+)$")
_DOUBLE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
_NUMBER = re.compile(f"{_INTEGER.pattern}|{_DECIMAL.pattern}|{_DOUBLE.pattern}")
_LEXICAL = {"integer": _INTEGER, "number": _NUMBER, "boolean": re.compile(r"^(true|false|1|0)$")}
"""The lexical forms a value must have when the OpenAPI schema promises a JSON type."""


def _number_datatype(value: str) -> str:
    """The datatype SPARQL gives a number written as ``value`` (integer, decimal or double)."""
    local = "integer" if _INTEGER.match(value) else "decimal" if _DECIMAL.match(value) else "double"
    return XSD + local


@dataclass(frozen=True)
class Parameter:
    """One API parameter and the SPARQL variable it is bound to."""

    name: str
    variable: str
    required: bool
    kind: str
    """``iri``, ``number``, ``string`` (plain or language-tagged) or ``typed``."""
    datatype: str | None = None
    language: str | None = None

    @property
    def schema(self) -> dict:
        """The parameter's JSON Schema, for the OpenAPI document."""
        if self.kind == "iri":
            return {"type": "string", "format": "iri"}
        if self.kind == "number":
            return {"type": "number"}
        local = (self.datatype or "").removeprefix(XSD)
        if local in INTEGER_TYPES:
            return {"type": "integer"}
        if local in ("decimal", "double", "float"):
            return {"type": "number"}
        if local == "boolean":
            return {"type": "boolean"}
        formats = {"date": "date", "dateTime": "date-time", "anyURI": "uri"}
        return {"type": "string", **({"format": formats[local]} if local in formats else {})}

    @property
    def description(self) -> str:
        what = {
            "iri": "an absolute IRI",
            "number": "a number",
            "string": f"a string (language {self.language})" if self.language else "a string",
            "typed": f"a literal of datatype {self.datatype}",
        }[self.kind]
        return f"{what}; bound to ?{self.variable}" + ("" if self.required else " (optional)")

    def term(self, value: str) -> str:
        """``value`` as a SPARQL term; ``ValueError`` saying why when it is not one of this
        parameter's type."""
        if self.kind == "iri":
            try:
                return str(ox.NamedNode(value))
            except ValueError:
                raise ValueError(f"parameter {self.name!r} must be an absolute IRI, not {value!r}") from None
        if self.kind == "string":
            return str(ox.Literal(value, language=self.language))
        expected = self.schema["type"]
        lexical = _LEXICAL.get(expected)
        if lexical and not lexical.match(value):
            raise ValueError(f"parameter {self.name!r} must be of type {expected}, not {value!r}")
        return str(ox.Literal(value, datatype=ox.NamedNode(self.datatype or _number_datatype(value))))

    @property
    def example(self) -> str:
        """A value of the parameter's type, to check at start that binding keeps the query valid."""
        if self.kind == "iri":
            return "urn:example:value"
        return {"integer": "1", "number": "1", "boolean": "true"}.get(self.schema["type"], "x")


@dataclass(frozen=True)
class ApiQuery:
    """A named query as a web API operation."""

    name: str
    text: str
    summary: str
    description: str
    methods: tuple[str, ...]
    tags: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    columns: tuple[str, ...] | None = None
    """The answer's variables, in order, for a SELECT query (whose rows ``limit`` and
    ``offset`` page); None for a query of another form."""

    def bind(self, values: dict[str, str]) -> str:
        """The query text with ``values`` (API parameter name -> value) bound; ``ValueError``
        for an unknown or missing parameter or a value not of its type."""
        known = {p.name: p for p in self.parameters}
        unknown = sorted(set(values) - set(known))
        if unknown:
            allowed = ", ".join(known) or "none"
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)}: this query takes {allowed}")
        missing = [p.name for p in self.parameters if p.required and p.name not in values]
        if missing:
            raise ValueError(f"missing required parameter(s): {', '.join(missing)}")
        return self.template.fill({known[n].variable: known[n].term(v) for n, v in values.items()})

    @cached_property
    def template(self) -> Template:
        """The text with its variables found, once: it is bound on every request."""
        return Template.of(self.text)


def _fail(named: NamedQuery, problem: str) -> KnowledgeBaseError:
    return KnowledgeBaseError(f"{named.path}: {problem}")


def header(named: NamedQuery) -> dict[str, str | list[str]]:
    """The decorators of the opening ``#+`` lines (see the module docstring)."""
    fields: dict[str, str | list[str]] = {}
    current: str | None = None
    for line in named.text.splitlines():
        if not line.startswith("#+"):
            break
        content = line[2:].strip()
        if not content:
            continue
        if content.startswith("- "):
            if current is None or not isinstance(fields[current], list):
                raise _fail(named, f"header line {line!r} is a list item outside a list")
            fields[current].append(content[2:].strip())
            continue
        key, colon, value = content.partition(":")
        key = key.strip()
        if not colon or not key:
            raise _fail(named, f"header line {line!r} is not 'key: value'")
        if key in fields:
            raise _fail(named, f"header decorator {key!r} is given twice")
        fields[key] = value.strip() or []
        current = key
    return fields


def _parameter(named: NamedQuery, variable: str) -> Parameter | None:
    match = _PARAMETER.match(variable)
    if not match:
        return None
    suffix = match["type"] or ""
    name, required = match["name"], not match["optional"]
    if match["rest"]:
        raise _fail(named, f"?{variable}: grlc's _prefix_datatype parameters are not supported")
    if suffix in ("", "literal", "string"):
        return Parameter(name, variable, required, "string")
    if suffix in ("iri", "number"):
        return Parameter(name, variable, required, suffix)
    if suffix in XSD_DATATYPES:
        return Parameter(name, variable, required, "typed", datatype=XSD + suffix)
    if len(suffix) == 2 and suffix.isalpha():
        return Parameter(name, variable, required, "string", language=suffix.lower())
    raise _fail(named, f"?{variable}: unknown parameter type {suffix!r}")


def api_query(named: NamedQuery) -> ApiQuery:
    """Read a named query's header and parameters; ``KnowledgeBaseError`` naming the file
    for a header or parameter the server cannot honour."""
    fields = header(named)
    for key in fields:
        if key in GRLC_ONLY:
            raise _fail(named, f"the grlc decorator {key!r} is not supported by this server")
        if key not in DECORATORS:
            raise _fail(named, f"unknown header decorator {key!r} (known: {', '.join(DECORATORS)})")
    summary, description = fields.get("summary"), fields.get("description", "")
    method, tags = fields.get("method", "GET"), fields.get("tags", [])
    if not isinstance(summary, str) or not summary:
        raise _fail(named, "the header needs '#+ summary: …'")
    if not isinstance(description, str) or not isinstance(method, str) or not isinstance(tags, list):
        raise _fail(named, "description and method take one value, tags a list of '- tag' lines")
    if method.upper() not in METHODS:
        raise _fail(named, f"method {method!r} is not one of {', '.join(METHODS)}")
    found = [p for v in sorted(variables(named.text)) if (p := _parameter(named, v))]
    names = [p.name for p in found]
    if len(set(names)) != len(names):
        raise _fail(named, f"two parameter variables share a name: {', '.join(sorted(names))}")
    if reserved := sorted(set(names) & set(PAGING)):
        raise _fail(named, f"parameter name(s) {', '.join(reserved)} are reserved for paging the rows")
    query = ApiQuery(
        name=named.name,
        text=named.text,
        summary=summary,
        description=description,
        methods=("GET",) if method.upper() == "GET" else ("GET", "POST"),
        tags=tuple(tags),
        parameters=tuple(found),
    )
    bound = query.bind({p.name: p.example for p in found})
    try:
        result = ox.Store().query(bound)
    except SyntaxError as exc:
        raise _fail(
            named,
            f"with its parameters bound the query is not valid SPARQL ({exc}): a parameter variable may "
            "only stand where a term can",
        ) from None
    if not isinstance(result, ox.QuerySolutions):
        return query
    columns = tuple(v.value for v in result.variables)
    try:
        ox.Store().query(Page(1, 0).text(bound, columns))
    except SyntaxError as exc:
        raise _fail(named, f"the query cannot be paged with limit and offset ({exc})") from None
    return replace(query, columns=columns)
