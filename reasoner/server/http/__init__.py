"""What every HTTP surface of the server shares, in the order a request meets it.

``body_limit`` (request bodies capped), ``security_headers`` (headers on every answer),
``auth`` (the bearer token that allows updates), ``negotiation`` (``Accept``),
``rdf_output`` (RDF in the syntax asked for), ``audit_log`` (one line per case write and
CDS Hooks decision) and ``api_docs`` (the OpenAPI page, ``/docs``, with no CDN).
"""
