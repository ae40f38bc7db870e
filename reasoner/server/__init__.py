"""The knowledge-graph server: a SPARQL 1.1 endpoint over the knowledge base and cases.

One module per job: ``settings`` (what is allowed, limits), ``graphs`` (which named
graph holds what; loading the knowledge base), ``case_graphs`` (a case and its
recommendation in its graph), ``protocol`` (reading a SPARQL Protocol request),
``sparql_text`` (keywords found before running), ``auth`` and ``policy`` (who may
update, what may run), ``negotiation`` (Accept), ``query`` (running a query under the
limits), ``executor`` (worker threads), ``service_description``, ``sparql_router`` (the
``/sparql`` endpoint), ``state`` (what routers share), ``app`` (``create_app``) and
``serve`` (uvicorn). Importing this package loads none of them.
"""
