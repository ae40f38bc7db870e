"""The knowledge-graph server: a SPARQL 1.1 endpoint over the knowledge base and cases.

One module per job: ``settings`` (what is allowed, limits), ``graphs`` (which named
graph holds what; loading the knowledge base), ``case_graphs`` (a case and its
recommendation in its graph), ``protocol`` (reading a SPARQL Protocol request),
``sparql_text`` (keywords found before running), ``auth`` and ``policy`` (who may
update, what may run), ``negotiation`` (Accept), ``query`` (running a query under the
limits), ``store_log``, ``query_pool``, ``query_process`` and ``worker_wire`` (queries
evaluated in processes the server can kill, over replicas that follow every write),
``body_limit`` (request bodies capped), ``answer_cache`` (answers kept until the next
write), ``executor`` (threads for store reads and writes), ``case_workers`` (posted cases
assessed in worker processes), ``case_versions``, ``conditional_requests`` and
``audit_log`` (versioned case writes, ``If-Match``, the audit log), ``cds_trust``,
``cds_jwks``, ``cds_auth``, ``cds_feedback`` and ``cds_audit`` (CDS Hooks client JWTs,
feedback, decisions audited), ``security_headers``, ``api_docs``, ``assets`` and
``health_router`` (headers on every answer, the OpenAPI page without a CDN, ``/health``),
``service_description``, ``sparql_router`` (the ``/sparql`` endpoint), ``state`` (what
routers share), ``app`` (``create_app``) and ``serve`` (uvicorn). The web pages:
``pages_router`` (routes), ``site`` (what the pages need, built once),
``criteria_catalogue``, ``codings`` and ``ontology_header`` (what the criteria browser and
the landing page show, shared with ``lbp-imaging docs``), ``case_form`` (assessing a case
from the case page), ``labels`` (names and ids on the pages) and ``templates/``.
Importing this package loads none of them.
"""
