"""The knowledge-graph server: a SPARQL 1.1 endpoint over the knowledge base and cases,
with cases, named queries, pages and CDS Hooks over HTTP.

The shared core is here: ``settings`` (what is allowed, limits), ``graphs`` (which named
graph holds what; loading the knowledge base), ``store_log`` (the store, its changes
written down for the query processes), ``executor`` (threads for store reads and
writes), ``state`` (what routers share), ``health_router`` (``/health``), ``app``
(``create_app``) and ``serve`` (uvicorn). Each surface is a subpackage: ``http/`` (what
every surface shares: body limit, security headers, bearer token, ``Accept``, RDF
output, the audit log, the API page), ``sparql/`` (the ``/sparql`` endpoint, queries in
killable query processes), ``cases/`` (``/cases``: versioned, audited), ``named_queries/``
(``/api/{name}``), ``pages/`` (the web pages, dereferenceable IRIs, FHIR artefacts,
``templates/`` and ``static/``) and ``cds_hooks/`` (``/cds-services`` and the form link of
an undetermined order). Importing this package loads none of them.
"""
