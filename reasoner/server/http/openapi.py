"""The OpenAPI document, ``/openapi.json``: FastAPI's, with one operationId per operation
and the schemas of bodies FastAPI does not see.

FastAPI gives a route one operationId, however many methods it serves, so the two
operations of ``/sparql`` (one route: the SPARQL Protocol's GET and POST are one
endpoint, and a method it does not serve gets one 405 naming both) would share it, and
code generators that make one function per operationId break. Here an operationId that
several operations share becomes ``{id}_{method}`` for each of them.

The CDS Hooks endpoints read their bodies as bytes (they answer a malformed one with a
FHIR OperationOutcome, not FastAPI's 422), so the models of those bodies
(``cds_hooks.schemas``) are added to the components here, where the operations refer to
them.
"""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

REF_TEMPLATE = "#/components/schemas/{model}"


def unique_operation_ids(document: dict) -> dict:
    """``document`` with each shared operationId suffixed with its operation's method."""
    operations = [op for item in document.get("paths", {}).values() for op in item.values()]
    shared = Counter(op.get("operationId") for op in operations)
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if shared[operation.get("operationId")] > 1:
                operation["operationId"] = f"{operation['operationId']}_{method}"
    return document


def with_models(document: dict, models: tuple[type[BaseModel], ...]) -> dict:
    """``document`` with the JSON Schemas of ``models`` (and the models they use) among its
    components; a schema FastAPI already put there is kept."""
    _, schemas = models_json_schema([(m, "validation") for m in models], ref_template=REF_TEMPLATE)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in schemas.get("$defs", {}).items():
        components.setdefault(name, schema)
    return document


def install_openapi(app: FastAPI, models: tuple[type[BaseModel], ...]) -> None:
    """Make ``app`` serve its OpenAPI document with unique operationIds and the schemas of
    ``models`` (built once, as FastAPI's own)."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
                separate_input_output_schemas=app.separate_input_output_schemas,
            )
            app.openapi_schema = unique_operation_ids(with_models(document, models))
        return app.openapi_schema

    app.openapi = openapi
